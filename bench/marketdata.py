"""Benchmark: the market-data API (tradeflow.marketdata). Each section prints its figures
against a baseline measured in the same run.

throughput
    Messages per second delivered through ``MarketDataStream`` (watch loop, de-duplication,
    the columnar buffer, one counting callback) for 20 symbols x 3 channels (trades, ticker,
    book) from the simulator running in its own process, and the process CPU time per
    message. Baseline: bare ccxt.pro ``binance`` watch loops (watch_trades / watch_ticker /
    watch_order_book, counting each return) on the same simulator for the same time.
    Goal: >= 0.8x the baseline's messages/s.

latest
    ``get_latest(symbol, 100)`` from a buffer of 10,000 ticker rows, p50 and p99 over 20,000
    calls, for each output (numpy, arrow, pandas). Baseline: copying the newest 100 rows of a
    plain (rows x 5) NumPy array. Goal: p99 <= 50 us.

memory
    Bytes per 10,000 ticker rows held in the buffer (its capacity, ``nbytes()``). Baseline: the
    same rows as a pandas DataFrame (``memory_usage(deep=True)``).

    .venv/bin/python bench/marketdata.py [--only throughput|latest|memory] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from tradeflow.config import ExchangeSettings  # noqa: E402
from tradeflow.marketdata import MarketBuffer, MarketDataStream  # noqa: E402

SYMBOLS = tuple(f"C{i:02d}/USDT" for i in range(20))
CHANNELS = ("trades", "ticker", "book")
SIM = """
import sys, time
from simulator.server import start_in_thread
from simulator.settings import SimulatorSettings
h = start_in_thread(SimulatorSettings(port=0, symbols=tuple(sys.argv[1].split(',')),
                    history_days=0.05, speed=120.0, ws_update_ms=50, book_levels=100))
print(h.base_url, flush=True)
while True:
    time.sleep(3600)
"""


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _bare(base_url: str, seconds: float, warmup: float) -> tuple[int, float]:
    import ccxt.pro as ccxt_pro

    from tradeflow.exchange.ccxt_client import rebase_urls

    ex = ccxt_pro.binance({"options": {"fetchMarkets": {"types": ["spot"]},
                                       "fetchCurrencies": False, "fetchMargins": False}})
    ex.urls["api"] = rebase_urls(ex.urls["api"], base_url)
    await ex.load_markets()
    counted = [0]
    counting = [False]

    async def loop(symbol: str, channel: str) -> None:
        while True:
            if channel == "trades":
                await ex.watch_trades(symbol, None, None, {"name": "aggTrade"})
            elif channel == "ticker":
                await ex.watch_ticker(symbol, {"name": "ticker"})
            else:
                await ex.watch_order_book(symbol, 1000)
            if counting[0]:
                counted[0] += 1

    tasks = [asyncio.create_task(loop(s, c)) for s in SYMBOLS for c in CHANNELS]
    try:
        await asyncio.sleep(warmup)
        counting[0], start = True, cpu_s()
        await asyncio.sleep(seconds)
        counting[0] = False
        used = cpu_s() - start
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await ex.close()
    return counted[0], used


async def _api(base_url: str, seconds: float, warmup: float) -> tuple[int, float]:
    counted = [0]
    counting = [False]

    def count(update: object) -> None:
        if counting[0]:
            counted[0] += 1

    stream = MarketDataStream("binance", settings=ExchangeSettings(base_url=base_url))
    stream.add_callback(count)
    await stream.subscribe(SYMBOLS, CHANNELS)
    async with stream:
        await asyncio.sleep(warmup)
        counting[0], start = True, cpu_s()
        await asyncio.sleep(seconds)
        counting[0] = False
        used = cpu_s() - start
    return counted[0], used


def section_throughput(seconds: float) -> None:
    sim = subprocess.Popen([sys.executable, "-c", SIM, ",".join(SYMBOLS)], cwd=ROOT,
                           stdout=subprocess.PIPE, text=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert sim.stdout is not None
        base_url = sim.stdout.readline().strip()
        results = {}
        for name, fn in (("bare ccxt.pro", _bare), ("MarketDataStream", _api),
                         ("bare ccxt.pro (again)", _bare)):
            n, used = asyncio.run(fn(base_url, seconds, 3.0))
            results[name] = (n / seconds, used / max(n, 1) * 1e6)
            print(f"  {name:<22} {n / seconds:9.0f} msg/s  {used / max(n, 1) * 1e6:7.1f} us "
                  f"CPU/msg  ({len(SYMBOLS)} symbols x {len(CHANNELS)} channels, {seconds:g}s)")
    finally:
        sim.terminate()
        sim.wait(10)
    base = (results["bare ccxt.pro"][0] + results["bare ccxt.pro (again)"][0]) / 2
    api = results["MarketDataStream"][0]
    print(f"  throughput: {api / base:.2f}x bare ccxt.pro msg/s (goal >= 0.8x); "
          f"CPU per message {results['MarketDataStream'][1] / results['bare ccxt.pro'][1]:.2f}x")


def _percentiles(fn: object, calls: int) -> tuple[float, float]:
    times = np.empty(calls)
    clock = time.perf_counter_ns
    for i in range(calls):
        t0 = clock()
        fn()  # type: ignore[operator]
        times[i] = clock() - t0
    return float(np.percentile(times, 50)) / 1e3, float(np.percentile(times, 99)) / 1e3


def section_latest(calls: int = 20_000) -> None:
    buffer = MarketBuffer(max_rows=10_000)
    rng = np.random.default_rng(3)
    for i in range(12_000):  # the ring has wrapped
        p = 100 + rng.random()
        buffer.add("BTC/USDT", "ticker", i * 100, (p, p - 0.01, p + 0.01, 1.0), received=0.0)
    plain = np.ascontiguousarray(rng.random((10_000, 5)))
    b50, b99 = _percentiles(lambda: plain[-100:].copy(), calls)
    print(f"  baseline numpy slice copy   p50 {b50:6.1f} us  p99 {b99:6.1f} us")
    for output in ("numpy", "arrow", "pandas"):
        p50, p99 = _percentiles(
            lambda o=output: buffer.get_latest("BTC/USDT", 100, "ticker", o), calls)
        verdict = "ok" if p99 <= 50 else "MISSED"
        print(f"  get_latest(100) {output:<7}     p50 {p50:6.1f} us  p99 {p99:6.1f} us  "
              f"({p99 / b99:.1f}x baseline p99; goal <= 50 us: {verdict})")


def section_memory(rows: int = 10_000) -> None:
    buffer = MarketBuffer(max_rows=rows)
    values = []
    for i in range(rows):
        row = (100.0 + i, 99.0 + i, 101.0 + i, 1.0)
        buffer.add("BTC/USDT", "ticker", i, row, received=0.0)
        values.append((i, *row))
    frame = pd.DataFrame(values, columns=["ts", "last", "bid", "ask", "volume"])
    ours, theirs = buffer.nbytes(), int(frame.memory_usage(deep=True).sum())
    print(f"  buffer {ours:,} bytes per {rows:,} ticker rows; baseline pandas DataFrame "
          f"{theirs:,} bytes ({ours / theirs:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["throughput", "latest", "memory"])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(f"load {Path('/proc/loadavg').read_text().strip()}  cores {os.cpu_count()}")
    if args.only in (None, "throughput"):
        print("throughput")
        section_throughput(args.seconds)
    if args.only in (None, "latest"):
        print("latest")
        section_latest()
    if args.only in (None, "memory"):
        print("memory")
        section_memory()
    print(f"load {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    main()
