"""Benchmark: order flow. Each section is a ``section_<name>()`` printing its figures against a
baseline measured in the same run; ``main()`` runs them in order (``--only NAME`` picks one).

trade_ingest
    Trades written through ``OrderFlowStore.write_trades`` (sort check, de-duplication, the
    trade contract, the typed Arrow batch, the id-bounded insert) into a fresh database file,
    as rows/s. Baseline: DuckDB's own insert of the same rows from an Arrow table into the
    same table of a fresh file. Goal: >= 1M trades/s.

recorder_cpu
    The recorder's share of one core (process CPU time / wall time) while it records 3 symbols
    from the simulator (its own process) at about 1,000 aggregated trades/s each, with book
    snapshots and tickers. Baseline: the same process idle for the same wall time. The
    achieved trade rate per symbol is printed. Goal: <= 10% of a core.

book
    Order-book diff application rate of tradeflow's LocalBook against ccxt.pro's own
    OrderBook fed the same Binance depth diffs (bench/orderflow_book.py; goal >= 1.0x).

vwap
    True VWAP over 10M trades through the feature path against plain numpy
    (bench/orderflow_vwap.py; goal <= 2x numpy's time).

    .venv/bin/python bench/orderflow.py [--only trade_ingest] [--only recorder_cpu]
                                        [--only book] [--only vwap]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from bench.orderflow_book import section_book  # noqa: E402
from bench.orderflow_vwap import section_vwap  # noqa: E402
from tradeflow.market.orderflow_store import OrderFlowStore  # noqa: E402
from tradeflow.market.orderflow_tables import SCHEMA  # noqa: E402

T0 = 1_767_225_600_000
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
TARGET_PER_S = 1000.0  # aggregated trades per second per symbol while recording


def trades_frame(n: int, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = np.arange(10_000_000, 10_000_000 + n, dtype=np.int64)
    ts = T0 + np.cumsum(rng.integers(0, 50, n)).astype(np.int64)
    price = np.round(60_000 + np.cumsum(rng.normal(0, 2, n)), 2)
    amount = np.round(rng.exponential(0.05, n) + 1e-5, 5)
    side = np.where(rng.random(n) < 0.5, "buy", "sell")
    return pd.DataFrame({"id": ids, "ts": ts, "price": price, "amount": amount,
                         "side": pd.array(side, dtype="str")})


def _best(fn: Callable[[], float], repeat: int) -> float:
    return min(fn() for _ in range(repeat))


def section_trade_ingest(rows: int = 2_000_000, repeat: int = 3) -> None:
    frame = trades_frame(rows)
    arrow = pa.table({"id": frame["id"].to_numpy(),
                      "ts": pa.array(frame["ts"].to_numpy().view("datetime64[ms]")),
                      "price": frame["price"].to_numpy(), "amount": frame["amount"].to_numpy(),
                      "side": pa.array(frame["side"].to_numpy(dtype=object), pa.string())})

    def ours() -> float:
        with tempfile.TemporaryDirectory() as tmp:
            store = OrderFlowStore(Path(tmp) / "m.duckdb")
            started = time.perf_counter()
            stored = store.write_trades(frame, exchange="binance", symbol="BTC/USDT")
            took = time.perf_counter() - started
            store.close()
            assert stored == rows
            return took

    def duckdb_own() -> float:
        with tempfile.TemporaryDirectory() as tmp:
            con = duckdb.connect(str(Path(tmp) / "m.duckdb"))
            con.execute(SCHEMA)
            con.register("batch", arrow)
            started = time.perf_counter()
            con.execute("INSERT INTO trades SELECT 'binance', 'BTC/USDT', id, ts, price, amount, "
                        "side FROM batch")
            took = time.perf_counter() - started
            con.close()
            return took

    base = _best(duckdb_own, repeat)
    mine = _best(ours, repeat)
    print(f"  {rows:,} trades, best of {repeat}")
    print(f"  DuckDB's own Arrow insert (baseline): {rows / base:12,.0f} rows/s  ({base:.3f}s)")
    print(f"  OrderFlowStore.write_trades:          {rows / mine:12,.0f} rows/s  ({mine:.3f}s)"
          f"  = {base / mine:.2f}x the baseline")
    print(f"  goal >= 1,000,000 rows/s: {'met' if rows / mine >= 1e6 else 'NOT met'}")


def _start_simulator(tmp: Path, speed: float, liquidity: dict[str, float]) -> tuple[
        subprocess.Popen, str]:
    profile = tmp / "sim.yaml"
    profile.write_text(yaml.safe_dump({"simulator": {
        # the market _agg_trades_per_minute measured: the same seeded path from T0 on
        "symbols": list(SYMBOLS), "history_days": 1.0, "ws_update_ms": 100, "start_time_ms": T0,
        "markets": {s: {"liquidity": v} for s, v in liquidity.items()}}}))
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "--config", str(profile), "sim",
                             "--port", "0", "--speed", str(speed)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if "http://" in line:
            url = "http://" + line.split("http://", 1)[1].split()[0].rstrip("/,.")
            return proc, url
        if proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError("the simulator did not start")


async def _record(base_url: str, tmp: Path, seconds: float,
                  **fields: object) -> tuple[float, float, dict]:
    from tradeflow.config import ExchangeSettings, RecorderSettings
    from tradeflow.exchange.ccxt_client import ExchangeClient
    from tradeflow.recorder.recorder import Recorder

    store = OrderFlowStore(tmp / f"market-{time.monotonic_ns()}.duckdb")
    settings = RecorderSettings(metrics_port=0, **fields)  # type: ignore[arg-type]
    async with ExchangeClient(ExchangeSettings(base_url=base_url, rate_limit=False)) as client:
        await client.load_markets()
        recorder = Recorder(client, store, settings, SYMBOLS)
        warm = asyncio.create_task(recorder.run(seconds=seconds + 5.0))
        await asyncio.sleep(5.0)  # connect, snapshots, first writes
        # trades the streams delivered in the window (stored counts lag by up to flush_s)
        before = sum(seq.received for seq in recorder.sequencers.values())
        cpu0, wall0 = time.process_time(), time.perf_counter()
        summary = await warm
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    rates = {}
    for symbol in SYMBOLS:
        bounds = store.trade_bounds("binance", symbol)
        rates[symbol] = 0 if bounds is None else bounds.count
    rates["_window_trades"] = sum(seq.received for seq in recorder.sequencers.values()) - before
    rates["_holes"] = sum(len(store.trade_holes("binance", s)) for s in SYMBOLS)
    rates["_summary"] = summary.line()
    store.close()
    return cpu, wall, rates


def _agg_trades_per_minute() -> dict[str, float]:
    """Aggregated trades per simulated minute of each market at liquidity 1 in the hour
    before T0, where the simulator the recorder reads starts."""
    from simulator.clock import SimClock
    from simulator.settings import SimulatorSettings
    from simulator.venue import Venue

    settings = SimulatorSettings(start_time_ms=T0, history_days=1.0, symbols=SYMBOLS)
    venue = Venue(settings, SimClock(T0, 1.0, wall=lambda: 0))
    out = {}
    for symbol in SYMBOLS:
        first = venue.agg_trades(symbol, start=T0 - 60 * 60_000, limit=1)
        last = venue.agg_trades(symbol, start=T0 - 60_000, limit=1)
        minutes = (int(last.times[0]) - int(first.times[0])) / 60_000
        out[symbol] = (int(last.ids[0]) - int(first.ids[0])) / minutes
    return out


# What the recorder keeps, from all of it (the default) down to the trades alone.
VARIANTS = {
    "trades + book (100 ms diffs) + tickers (default)": {},
    "trades + book (1000 ms diffs) + tickers": {"book_updates_ms": 1000},
    "trades only": {"order_book": False, "tickers": False},
}


def section_recorder_cpu(seconds: float = 15.0) -> None:
    speed = 60.0
    # liquidity scales each market's aggregated trades to the target rate at this speed
    per_min = _agg_trades_per_minute()
    liquidity = {s: min(100.0, TARGET_PER_S * 60 / speed / n) for s, n in per_min.items()}
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = _start_simulator(Path(tmp), speed, liquidity)
        try:
            idle0, wall0 = time.process_time(), time.perf_counter()
            time.sleep(2.0)
            idle = (time.process_time() - idle0) / (time.perf_counter() - wall0)
            for name, fields in VARIANTS.items():
                results.append((name, *asyncio.run(_record(url, Path(tmp), seconds, **fields))))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
    print(f"  simulator (own process): speed {speed:g}, liquidity " + ", ".join(
        f"{s} {v:.2f}" for s, v in liquidity.items()) + f"; {seconds:g}s measured per variant")
    print(f"  idle process (baseline): {idle * 100:5.1f}% of a core")
    for name, cpu, wall, rates in results:
        total, holes = rates["_window_trades"], rates["_holes"]
        print(f"  {name}:")
        print(f"    {total / wall / len(SYMBOLS):,.0f} trades/s per symbol (target "
              f"{TARGET_PER_S:,.0f}), stored ids with holes: {holes}; {rates['_summary']}")
        print(f"    recorder CPU {cpu / wall * 100:5.1f}% of a core ({cpu:.2f}s / {wall:.1f}s)"
              f"  goal <= 10%: {'met' if cpu / wall <= 0.10 else 'NOT met'}")


SECTIONS: dict[str, Callable[[], None]] = {
    "trade_ingest": section_trade_ingest,
    "recorder_cpu": section_recorder_cpu,
    "book": section_book,
    "vwap": section_vwap,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(SECTIONS), action="append",
                        help="run only this section (repeatable)")
    args = parser.parse_args(argv)
    for name, section in SECTIONS.items():
        if args.only and name not in args.only:
            continue
        print(f"== {name}")
        section()


if __name__ == "__main__":
    main()
