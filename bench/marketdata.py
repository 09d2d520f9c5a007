"""Benchmark: the market-data API (tradeflow.marketdata). Each section prints its figures
against a baseline measured in the same run.

throughput
    Messages per second delivered through ``MarketDataStream`` (watch loop, de-duplication,
    the columnar buffer, one counting callback) for 20 symbols x 3 channels (trades, ticker,
    book) from the simulator running in its own process, and the process CPU time per
    message. Baseline: bare ccxt.pro ``binance`` watch loops (watch_trades / watch_ticker /
    watch_order_book, counting each return; a dropped socket is counted and watched again, as
    ccxt reconnects on the next call) on the same simulator. Runs alternate (baseline, API,
    baseline, ...: ``--rounds`` API runs) so a drift of the shared machine hits both sides;
    the ratios compare means. Both sides count over the same steady-state window: it opens
    one second after every one of the 60 subscriptions has delivered (ccxt.pro spaces binance
    subscriptions 250 ms apart and each book first loads a REST snapshot, so going live takes
    ~10-15 s) and lasts ``--seconds``. Each line also prints the trades delivered, the
    simulator's websocket messages sent in the window (its /admin/stats), CPU per sent
    message (the same unit on both sides: a loop that falls behind gets several messages per
    watch return, which lowers its msg/s and raises its CPU/msg) and the drops. ``--speed``
    sets the simulated clock and so the trade rate: at 120 the simulator sends ~14,000
    messages/s, more than either side parses, and drops the socket of a consumer whose send
    queue overflows. Goal: >= 0.8x the baseline's messages/s.

latest
    ``get_latest(symbol, 100)`` from a buffer of 10,000 ticker rows, p50 and p99 over 20,000
    calls, for each output (numpy, arrow, pandas). Baseline: copying the newest 100 rows of a
    plain (rows x 5) NumPy array. Goal: p99 <= 50 us.

memory
    Bytes per 10,000 ticker rows held in the buffer (its capacity, ``nbytes()``). Baseline: the
    same rows as a pandas DataFrame (``memory_usage(deep=True)``).

    .venv/bin/python bench/marketdata.py [--only throughput|latest|memory] [--seconds 10]
                                         [--speed 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from tradeflow.config import ExchangeSettings  # noqa: E402
from tradeflow.marketdata import MarketBuffer, MarketDataStream  # noqa: E402

SYMBOLS = tuple(f"C{i:02d}/USDT" for i in range(20))
CHANNELS = ("trades", "ticker", "book")
# At 120 the simulator sends ~14,000 aggTrade messages/s for 20 symbols, more than either side
# parses on this machine: its send queue overflows and it drops the socket within seconds.
SPEED = 10.0
SIM = """
import sys, time
from simulator.server import start_in_thread
from simulator.settings import SimulatorSettings
h = start_in_thread(SimulatorSettings(port=0, symbols=tuple(sys.argv[1].split(',')),
                    history_days=0.05, speed=float(sys.argv[2]), ws_update_ms=50,
                    book_levels=100))
print(h.base_url, flush=True)
while True:
    time.sleep(3600)
"""


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _sent(base_url: str) -> int:
    """Websocket messages the simulator has sent so far (its /admin/stats)."""
    def get() -> int:
        with urllib.request.urlopen(base_url + "/admin/stats", timeout=10) as r:
            return int(json.load(r)["ws_messages"])
    return await asyncio.to_thread(get)


class Window:
    """Counts updates and trade rows between ``open`` and ``close``; both sides share it."""

    def __init__(self) -> None:
        self.counting, self.updates, self.rows = False, 0, 0
        self.live: set[tuple[str, str]] = set()
        self.errors = 0

    def seen(self, symbol: str, channel: str, rows: int) -> None:
        self.live.add((symbol, channel))
        if self.counting:
            self.updates += 1
            self.rows += rows

    async def measure(self, base_url: str, seconds: float, ramp_timeout: float
                      ) -> dict[str, float]:
        """Wait until every subscription has delivered (the steady state), settle a second,
        then count for ``seconds``."""
        t0 = time.monotonic()
        while len(self.live) < len(SYMBOLS) * len(CHANNELS):
            if time.monotonic() - t0 > ramp_timeout:
                raise RuntimeError(f"only {len(self.live)} subscriptions live after "
                                   f"{ramp_timeout:g}s")
            await asyncio.sleep(0.1)
        ramp = time.monotonic() - t0
        await asyncio.sleep(1.0)
        sent0, cpu0, wall0 = await _sent(base_url), cpu_s(), time.monotonic()
        self.counting = True
        await asyncio.sleep(seconds)
        self.counting = False
        wall, used = time.monotonic() - wall0, cpu_s() - cpu0
        sent = await _sent(base_url) - sent0
        return {"ramp": ramp, "wall": wall, "cpu": used, "sent": sent}


async def _bare(base_url: str, seconds: float, ramp_timeout: float
                ) -> tuple[Window, dict[str, float]]:
    import ccxt.pro as ccxt_pro

    from tradeflow.exchange.ccxt_client import rebase_urls

    ex = ccxt_pro.binance({"options": {"fetchMarkets": {"types": ["spot"]},
                                       "fetchCurrencies": False, "fetchMargins": False}})
    ex.urls["api"] = rebase_urls(ex.urls["api"], base_url)
    await ex.load_markets()
    window = Window()

    async def loop(symbol: str, channel: str) -> None:
        while True:
            try:
                if channel == "trades":
                    rows = len(await ex.watch_trades(symbol, None, None, {"name": "aggTrade"}))
                elif channel == "ticker":
                    await ex.watch_ticker(symbol, {"name": "ticker"})
                else:
                    await ex.watch_order_book(symbol, 1000)
            except ccxt_pro.NetworkError:  # a dropped socket: ccxt reconnects on the next call
                window.errors += 1
                await asyncio.sleep(0.5)
                continue
            window.seen(symbol, channel, rows if channel == "trades" else 0)

    tasks = [asyncio.create_task(loop(s, c)) for s in SYMBOLS for c in CHANNELS]
    try:
        figures = await window.measure(base_url, seconds, ramp_timeout)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await ex.close()
    return window, figures


async def _api(base_url: str, seconds: float, ramp_timeout: float
               ) -> tuple[Window, dict[str, float]]:
    window = Window()

    def count(update: Any) -> None:
        window.seen(update.symbol, update.channel,
                    len(update.data) if update.channel == "trades" else 0)

    stream = MarketDataStream("binance", settings=ExchangeSettings(base_url=base_url))
    stream.add_callback(count)
    await stream.subscribe(SYMBOLS, CHANNELS)
    async with stream:
        figures = await window.measure(base_url, seconds, ramp_timeout)
        window.errors = sum(s.reconnects for s in stream.status())
    return window, figures


def section_throughput(seconds: float, speed: float, rounds: int) -> None:
    sim = subprocess.Popen([sys.executable, "-c", SIM, ",".join(SYMBOLS), str(speed)], cwd=ROOT,
                           stdout=subprocess.PIPE, text=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert sim.stdout is not None
        base_url = sim.stdout.readline().strip()
        results: dict[str, list[tuple[float, float, float]]] = {"bare": [], "api": []}
        runs = [("bare", _bare), ("api", _api)] * rounds + [("bare", _bare)]
        for side, fn in runs:  # alternating: a drift of the shared machine hits both sides
            window, f = asyncio.run(fn(base_url, seconds, 120.0))
            rate, cpu_us = window.updates / f["wall"], f["cpu"] / max(window.updates, 1) * 1e6
            per_sent = f["cpu"] / max(f["sent"], 1) * 1e6
            results[side].append((rate, cpu_us, per_sent))
            name = "bare ccxt.pro" if side == "bare" else "MarketDataStream"
            print(f"  {name:<17} {rate:7.0f} msg/s {window.rows / f['wall']:7.0f} trades/s "
                  f"{cpu_us:7.1f} us CPU/msg {per_sent:6.1f} us CPU/sent msg  (simulator sent "
                  f"{f['sent'] / f['wall']:.0f} msg/s; all {len(SYMBOLS) * len(CHANNELS)} "
                  f"subscriptions live after {f['ramp']:.1f}s; {window.errors} drops)")
    finally:
        sim.terminate()
        sim.wait(10)
    bare, api = (np.mean(results[k], axis=0) for k in ("bare", "api"))
    print(f"  throughput: {api[0] / bare[0]:.2f}x bare ccxt.pro msg/s (goal >= 0.8x); "
          f"CPU per message {api[1] / bare[1]:.2f}x, per sent message {api[2] / bare[2]:.2f}x "
          f"(means of {len(results['api'])} API and {len(results['bare'])} baseline runs; "
          f"{len(SYMBOLS)} symbols x {len(CHANNELS)} channels, {seconds:g}s, speed {speed:g})")


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
    parser.add_argument("--speed", type=float, default=SPEED,
                        help="simulated seconds per wall second (sets the trade rate)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="API runs, each between two baseline runs")
    args = parser.parse_args()
    print(f"load {Path('/proc/loadavg').read_text().strip()}  cores {os.cpu_count()}")
    if args.only in (None, "throughput"):
        print("throughput")
        section_throughput(args.seconds, args.speed, args.rounds)
    if args.only in (None, "latest"):
        print("latest")
        section_latest()
    if args.only in (None, "memory"):
        print("memory")
        section_memory()
    print(f"load {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    main()
