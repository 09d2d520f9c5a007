"""Benchmark: what the trader's Prometheus metrics cost, and how long a scrape of them takes.

The trader (``meanrev_xgb`` with a real XGBoost champion trained in seconds on the simulator's
market, as in ``bench/trader.py``) replays the same recorded candles (``ReplayFeed``) with
metrics off (the baseline) and on, alternating, in the same run. With metrics on, the
endpoint is served and a thread scrapes it every ``--scrape-interval`` seconds, as Prometheus
would. Printed per variant: decision latency per timestamp (the runner's own figure, p50/p99)
and wall time per timestamp (every observer included), and the on/off ratios (goal: p99 cost
<= 5%). Then the scrape duration of the trader's ``/metrics`` (p50/p99 over ``--scrapes``
GETs) and its size. The machine's load average is printed: figures move with it.

Usage: ``.venv/bin/python bench/metrics.py --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

# Run as a script, bench/ comes first on sys.path, and bench/trader.py would shadow the
# trader package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
GOAL_P99_COST = 0.05


def _trader_bench() -> Any:
    """bench/trader.py as a module (its market, strategy and model helpers)."""
    spec = importlib.util.spec_from_file_location("bench_trader", _HERE / "trader.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_trader"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def replay(tb: Any, strategy: Any, model: Any, candles: Any, db: Path,
           metrics: Any) -> tuple[np.ndarray, float, int]:
    """(runner latencies ms, wall seconds, timestamps) of one replay."""
    from trader.ledger import Ledger
    from trader.model_source import FixedModel
    from trader.replay import ReplayFeed
    from trader.runner import Trader

    ledger = Ledger(f"sqlite:///{db}")
    trader = Trader(strategy, ledger=ledger, feed=ReplayFeed(candles, tb.START_MS),
                    models=FixedModel(model, "bench"), metrics=metrics)
    start = time.perf_counter()
    summary = asyncio.run(trader.run())
    wall = time.perf_counter() - start
    ledger.close()
    return np.array(summary.latencies_ms), wall, len(summary.latencies_ms)


class Scraper(threading.Thread):
    """GETs ``url`` every ``interval`` seconds until stopped; keeps each duration."""

    def __init__(self, url: str, interval: float) -> None:
        super().__init__(daemon=True)
        self.url, self.interval = url, interval
        self.stopped = threading.Event()
        self.durations: list[float] = []

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                self.durations.append(scrape(self.url)[0])
            except OSError:  # the run ended and closed its endpoint
                return


def scrape(url: str) -> tuple[float, int]:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=10) as resp:
        size = len(resp.read())
    return time.perf_counter() - start, size


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} / {fifteen:.1f} (1/5/15 min)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=3)
    parser.add_argument("--train-days", type=float, default=1.0)
    parser.add_argument("--replay-days", type=float, default=1.0)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3, help="off/on pairs, alternating")
    parser.add_argument("--scrape-interval", type=float, default=0.2,
                        help="seconds between scrapes during a run (Prometheus: 15)")
    parser.add_argument("--scrapes", type=int, default=200)
    args = parser.parse_args(argv)

    from cli.supervisor import free_port
    from models.features import FeaturePipeline
    from trader.prometheus import TraderMetrics

    tb = _trader_bench()
    symbols = tb.SYMBOLS[: args.symbols]
    print(f"metrics benchmark: {len(symbols)} symbols; at start: {_load()}")
    strategy = tb.bench_strategy("meanrev_xgb", symbols, args.trees)
    warm_days = (FeaturePipeline.from_strategy(strategy).warmup + 1) / 1440
    history_days = np.ceil((args.train_days + warm_days) * 4) / 4
    candles = tb.market(symbols, history_days, args.replay_days)
    model = tb.serve(tb.train(strategy, {s: f[f["open_time"] < tb.START_MS]
                                         for s, f in candles.items()}))
    replayed = {s: f[f["open_time"] >= tb.START_MS - (model.warmup + 2) * tb.MIN]
                for s, f in candles.items()}
    runs: dict[str, list[tuple[np.ndarray, float, int]]] = {"off": [], "on": []}
    last_metrics: Any = None
    scraped: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            for variant in ("off", "on"):
                db = Path(tmp) / f"{variant}{i}.db"
                if variant == "off":
                    runs["off"].append(replay(tb, strategy, model, replayed, db, None))
                    continue
                metrics = TraderMetrics(strategy.name)
                port = metrics.serve(free_port())
                scraper = Scraper(f"http://127.0.0.1:{port}/metrics", args.scrape_interval)
                scraper.start()
                runs["on"].append(replay(tb, strategy, model, replayed, db, metrics))
                scraper.stopped.set()
                scraper.join()
                scraped.extend(scraper.durations)
                last_metrics = metrics
    print(f"\n{'variant':<8} {'timestamps':>10} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'wall/ts ms':>10}")
    figures: dict[str, tuple[float, float, float]] = {}
    for variant, results in runs.items():
        lat = np.concatenate([r[0] for r in results])
        wall = sum(r[1] for r in results) / sum(r[2] for r in results) * 1000
        p50, p99 = np.percentile(lat, [50, 99])
        figures[variant] = (p50, p99, wall)
        print(f"{variant:<8} {len(lat):>10} {p50:>8.3f} {p99:>8.3f} {wall:>10.3f}")
    (b50, b99, bw), (o50, o99, ow) = figures["off"], figures["on"]
    cost = o99 / b99 - 1
    print(f"\nmetrics on / off (baseline: metrics off, same run): p50 {o50 / b50:.3f}, "
          f"p99 {o99 / b99:.3f}, wall per timestamp {ow / bw:.3f}; p99 cost {cost:+.1%} "
          f"(goal <= {GOAL_P99_COST:.0%}: {'met' if cost <= GOAL_P99_COST else 'NOT met'})")
    # The run closed its endpoint; serve the same registry again for the scrape figures.
    from prometheus_client import start_http_server

    server, _ = start_http_server(free_port(), addr="127.0.0.1",
                                  registry=last_metrics.registry)
    url = f"http://127.0.0.1:{server.server_port}/metrics"
    durations, size = [], 0
    for _ in range(args.scrapes):
        d, size = scrape(url)
        durations.append(d * 1000)
    server.shutdown()
    d50, d99 = np.percentile(durations, [50, 99])
    during = np.array(scraped) * 1000
    print(f"scrape of the trader's /metrics ({size} bytes): p50 {d50:.2f} ms, p99 {d99:.2f} ms "
          f"over {args.scrapes} GETs after the run; during the runs p50 "
          f"{np.percentile(during, 50) if len(during) else float('nan'):.2f} ms "
          f"({len(during)} scrapes)")
    print(f"at end: {_load()}")


if __name__ == "__main__":
    main()
