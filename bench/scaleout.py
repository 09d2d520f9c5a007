"""Benchmark: the scale store (DuckLake on PostgreSQL + Parquet) against the embedded DuckDB
file, with several backfill processes writing at once.

Printed, in one run:

(1) candles/s stored by 1, 2 and 4 concurrent backfill processes (one series each, 1m
    candles from the simulator in its own process, a still clock) into a fresh DuckLake
    store and into a fresh DuckDB file (where the processes take turns on the file lock: the
    open-retry path). Each process imports, opens its exchange client, then waits at a
    barrier; the time runs from the barrier to the last process's end, so process start-up
    is left out;
(2) gap-scan time (``find_gaps``) over 1M stored 1m candles in each store, written in
    1,000-candle pages as backfill writes them: DuckLake before and after compaction;
(3) the load average before and after.

Needs the PostgreSQL at 127.0.0.1:5432 (a database is created and dropped) and the venv of
constraints.txt (duckdb 1.5.5 with the DuckLake extension packages).
Run: ``python bench/scaleout.py``
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from simulator.launch import launch  # noqa: E402
from tradeflow.market.gaps import find_gaps  # noqa: E402
from tradeflow.market.store import MarketStore, SeriesKey  # noqa: E402

START_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC, the simulator's still "now"
DAYS = 10  # of 1m candles per process: 14,400 candles, 15 pages
MIN = 60_000
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT")
PG = "host=127.0.0.1 port=5432 user=postgres"

WORKER = """
import sys, time
from pathlib import Path
from tradeflow.config import ExchangeSettings
from tradeflow.market.backfill import Window
from tradeflow.market.backfill_plan import SeriesJob
from tradeflow.market.backfill_run import run_job
from tradeflow.market.store import SeriesKey
base_url, symbol, path, catalog, go, now = sys.argv[1:7]
job = SeriesJob(SeriesKey("binance", symbol, "1m"), Window(int(now) - DAYS * 86_400_000,
                int(now)), int(now), ExchangeSettings(base_url=base_url, rate_limit=False),
                path, 100_000, 1000, catalog or None)
while not Path(go).exists():
    time.sleep(0.005)
report = run_job(job)
print(report.count, time.time())
""".replace("DAYS", str(DAYS))


def start_simulator() -> tuple[subprocess.Popen[str], str]:
    return launch("--days", str(DAYS + 1), "--symbols", ",".join(SYMBOLS),
                  "--start", str(START_MS), "--speed", "1e-9")


def psql(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"dbname=postgres {PG}", autocommit=True) as con:
        con.execute(sql)


def concurrent_backfill(base_url: str, n: int, path: str, catalog: str) -> tuple[int, float]:
    """(candles stored, seconds) of ``n`` processes, one series each, started at once."""
    go = Path(tempfile.mkdtemp()) / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, base_url, symbol, path, catalog,
                               str(go), str(START_MS)], cwd=ROOT, env=env, text=True,
                              stdout=subprocess.PIPE) for symbol in SYMBOLS[:n]]
    time.sleep(8.0)  # every worker has imported and is waiting at the barrier
    start = time.time()
    go.touch()
    outs = [p.communicate(timeout=900)[0].split() for p in procs]
    if any(p.returncode for p in procs):
        raise SystemExit(f"a backfill process failed: {[p.returncode for p in procs]}")
    return sum(int(o[0]) for o in outs), max(float(o[1]) for o in outs) - start


def fill_million(store: MarketStore, key: SeriesKey) -> None:
    rng = np.random.default_rng(7)
    t = START_MS - np.arange(1_000_000, 0, -1, dtype=np.int64) * MIN
    t = np.delete(t, rng.choice(t.size, 500, replace=False))  # a few interior gaps
    close = 100 + np.cumsum(rng.normal(0, 0.1, t.size))
    frame = pd.DataFrame({"open_time": t, "open": close, "high": close + 0.2,
                          "low": close - 0.2, "close": close, "volume": 1.0})
    for i in range(0, len(frame), 1000):  # as backfill writes: one page at a time
        store.upsert(frame.iloc[i:i + 1000], exchange=key.exchange, symbol=key.symbol,
                     timeframe=key.timeframe)


def scan_seconds(store: MarketStore, key: SeriesKey) -> float:
    find_gaps(store, key)  # warm caches
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        find_gaps(store, key)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    print(f"load average before: {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()})")
    sim, base_url = start_simulator()
    databases: list[str] = []
    try:
        print(f"\n(1) candles/s stored by concurrent backfill processes ({DAYS} days of 1m "
              "each)")
        print(f"{'processes':>9} {'DuckDB file':>12} {'DuckLake':>10} {'ratio':>6}")
        for n in (1, 2, 4):
            with tempfile.TemporaryDirectory() as tmp:
                name = f"tf_bench_{uuid.uuid4().hex[:8]}"
                psql(f'CREATE DATABASE "{name}"')
                databases.append(name)
                file_n, file_s = concurrent_backfill(base_url, n, f"{tmp}/m.duckdb", "")
                lake_n, lake_s = concurrent_backfill(base_url, n, f"{tmp}/lake",
                                                     f"dbname={name} {PG}")
                file_rate, lake_rate = file_n / file_s, lake_n / lake_s
                print(f"{n:>9} {file_rate:>12,.0f} {lake_rate:>10,.0f} "
                      f"{lake_rate / file_rate:>5.2f}x")
        print("\n(2) gap scan over 1M 1m candles (1,000 pages of 1,000)")
        key = SeriesKey("binance", "BTC/USDT", "1m")
        with tempfile.TemporaryDirectory() as tmp:
            duck = MarketStore(f"{tmp}/m.duckdb")
            fill_million(duck, key)
            base = scan_seconds(duck, key)
            print(f"  DuckDB file:                {base:7.3f} s")
            name = f"tf_bench_{uuid.uuid4().hex[:8]}"
            psql(f'CREATE DATABASE "{name}"')
            databases.append(name)
            lake = MarketStore(f"{tmp}/lake", catalog=f"dbname={name} {PG}")
            t0 = time.perf_counter()
            fill_million(lake, key)
            print(f"  (DuckLake write of the 1,000 pages: {time.perf_counter() - t0:.1f} s)")
            before = scan_seconds(lake, key)
            print(f"  DuckLake, 1,000 small files: {before:7.3f} s  {before / base:6.1f}x")
            t0 = time.perf_counter()
            counts = lake.compact(keep_hours=0)
            took = time.perf_counter() - t0
            after = scan_seconds(lake, key)
            print(f"  DuckLake, compacted:        {after:7.3f} s  {after / base:6.1f}x  "
                  f"(compact {took:.1f} s, files {counts['files_before']} -> "
                  f"{counts['files_after']})")
    finally:
        sim.terminate()
        sim.wait()
        for name in databases:
            psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
