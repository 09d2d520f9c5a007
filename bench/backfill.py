"""Benchmark: backfill throughput, store ingest and gap scan.

Printed, in one run:

(1) backfill of 30 days of 1m candles x 3 symbols from the simulator (its own process) into
    a fresh DuckDB store, against the baseline: a bare ccxt ``fetch_ohlcv`` loop over the
    same ranges with no storage, both with ccxt's rate limiter as configured (on by
    default, as against real Binance) and with it off;
(2) store ingest rows/s from a 1M-row DataFrame (goal >= 1M rows/s);
(3) gap scan time over 1M stored candles (goal <= 0.2 s).

Run: ``.venv/bin/python bench/backfill.py``
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Running bench/x.py puts bench/ first on sys.path, where simulator.py would shadow the
# simulator package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from simulator.launch import launch  # noqa: E402
from tradeflow.config import ExchangeSettings  # noqa: E402
from tradeflow.exchange.ccxt_client import ExchangeClient  # noqa: E402
from tradeflow.market.backfill import Window, backfill_many  # noqa: E402
from tradeflow.market.gaps import find_gaps  # noqa: E402
from tradeflow.market.store import MarketStore, SeriesKey  # noqa: E402

START_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC, the simulator's frozen "now"
DAYS = 30
MIN = 60_000
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")


def start_server() -> tuple[subprocess.Popen[str], str]:
    return launch("--days", str(DAYS + 1), "--symbols", ",".join(SYMBOLS),
                  "--start", str(START_MS), "--speed", "1e-9")


async def bare_loop(base_url: str, rate_limit: bool, since: int, end: int) -> tuple[int, float]:
    """The baseline: ccxt fetch_ohlcv pages over the same ranges, nothing stored."""
    async with ExchangeClient(ExchangeSettings(base_url=base_url, rate_limit=rate_limit)) as ex:
        await ex.load_markets()
        exchange = ex._ex  # noqa: SLF001 - the baseline is ccxt itself, not our adapter
        started, candles = time.perf_counter(), 0
        for symbol in SYMBOLS:
            cursor = since
            while cursor <= end:
                rows = await exchange.fetch_ohlcv(symbol, "1m", cursor, 1000, {"until": end})
                if not rows:
                    break
                candles += len(rows)
                cursor = rows[-1][0] + MIN
        return candles, time.perf_counter() - started


async def ours(base_url: str, rate_limit: bool, since: int, now: int) -> tuple[int, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = MarketStore(Path(tmp) / "bench.duckdb")
        keys = [SeriesKey("binance", s, "1m") for s in SYMBOLS]
        async with ExchangeClient(ExchangeSettings(base_url=base_url,
                                                   rate_limit=rate_limit)) as ex:
            await ex.load_markets()
            started = time.perf_counter()
            reports = await backfill_many(ex, store, keys, Window(since), now, concurrency=3)
            elapsed = time.perf_counter() - started
        assert all(r.status == "ok" and r.missing == 0 for r in reports), reports
        return sum(r.count for r in reports), elapsed


def ingest_and_scan() -> tuple[float, float, float]:
    n = 1_000_000
    times = START_MS - n * MIN + np.arange(n, dtype=np.int64) * MIN
    rng = np.random.default_rng(1)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    frame = pd.DataFrame({"open_time": times, "open": close, "high": close * 1.001,
                          "low": close * 0.999, "close": close, "volume": rng.random(n),
                          "quote_volume": rng.random(n), "trades": np.arange(n)})
    holes = rng.choice(n, 500, replace=False)
    frame = frame.drop(index=holes).reset_index(drop=True)
    with tempfile.TemporaryDirectory() as tmp:
        store = MarketStore(Path(tmp) / "ingest.duckdb")
        started = time.perf_counter()
        store.upsert(frame, exchange="binance", symbol="BTC/USDT", timeframe="1m")
        first = time.perf_counter() - started
        started = time.perf_counter()
        store.upsert(frame, exchange="binance", symbol="BTC/USDT", timeframe="1m")
        again = time.perf_counter() - started
        key = SeriesKey("binance", "BTC/USDT", "1m")
        find_gaps(store, key)  # warm the file cache
        scans = []
        for _ in range(5):
            started = time.perf_counter()
            gaps = find_gaps(store, key)
            scans.append(time.perf_counter() - started)
        assert int(gaps["missing"].sum()) == 500 - int(((holes == 0) | (holes == n - 1)).sum())
        assert store.duplicate_count() == 0
        return len(frame) / first, len(frame) / again, min(scans)


def main() -> None:
    proc, base_url = start_server()
    try:
        now = START_MS
        since = now - DAYS * 86_400_000
        end = now - 2 * MIN  # the last closed candle's open time
        print(f"backfill: 30 days x 3 symbols of 1m from the simulator at {base_url}")
        for rate_limit in (True, False):
            label = "rate limiter on " if rate_limit else "rate limiter off"
            base_n, base_s = asyncio.run(bare_loop(base_url, rate_limit, since, end))
            our_n, our_s = asyncio.run(ours(base_url, rate_limit, since, now))
            print(f"  {label}: ours {our_n:,} candles in {our_s:.2f} s = "
                  f"{our_n / our_s:,.0f}/s | bare ccxt loop (no storage) {base_n:,} in "
                  f"{base_s:.2f} s = {base_n / base_s:,.0f}/s | ratio "
                  f"{(our_n / our_s) / (base_n / base_s):.2f} (goal >= 0.8)")
    finally:
        proc.terminate()
        proc.wait()
    first, again, scan = ingest_and_scan()
    print(f"store ingest, 1M-row DataFrame: {first:,.0f} rows/s into an empty series, "
          f"{again:,.0f} rows/s replacing all of them (goal >= 1,000,000)")
    print(f"gap scan over 1M stored candles: {scan * 1000:.1f} ms (goal <= 200 ms)")


if __name__ == "__main__":
    main()
