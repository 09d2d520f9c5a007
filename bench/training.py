"""Benchmark: one rolling-window training of the example strategy, and MLflow's share of it.

The market is the simulator's (``simulator.venue.Venue``, no server; signal strength 1.0):
5 symbols (BTC, ETH, SOL, BNB, XRP against USDT) x 30 days of 1m candles in an in-memory
market store. The strategy is ``config/strategies/momentum_xgb.yaml`` (27 features, XGBoost
200 trees of depth 4, 5 walk-forward folds, logistic/flat/momentum baselines) over those
symbols. Measured in one run, with the MLflow sqlite store created beforehand (a one-off that
a real deployment pays once):

* load: candles of the window from the store (+ validation contract) and their hash;
* fit: features, labels, walk-forward CV of the model and 3 baselines with backtests, final fit;
* mlflow: the run (params, metrics, artifacts, plots, pyfunc model with signature and input
  example) and the registration of the version.

The ratio printed is mlflow / total (goal <= 10%).

Usage: ``.venv/bin/python bench/training.py [--symbols 5] [--days 30] [--folds 5]``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, bench/ comes first on sys.path, and bench/ holds scripts named like the
# project's packages (bench/simulator.py would shadow the simulator package).
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from tradeflow.market.store import MarketStore  # noqa: E402

GOAL = 0.10
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT")
ROOT = _HERE.parent
START_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC, minute-aligned


def simulated_store(symbols: tuple[str, ...], days: float) -> tuple[MarketStore, int]:
    from simulator.clock import SimClock
    from simulator.settings import SimulatorSettings
    from simulator.venue import Venue

    settings = SimulatorSettings(symbols=symbols, history_days=days, signal_strength=1.0,
                                 start_time_ms=START_MS)
    venue = Venue(settings, SimClock(START_MS, 1.0, wall=lambda: 0))
    store = MarketStore(":memory:")
    for symbol in symbols:
        klines = venue.klines(symbol, "1m", venue.history_start_ms, limit=10**8)
        frame = pd.DataFrame(klines.ohlcv(),
                             columns=["open_time", "open", "high", "low", "close", "volume"])
        frame["open_time"] = frame["open_time"].astype(np.int64)
        store.upsert(frame[klines.closed], exchange="binance", symbol=symbol, timeframe="1m")
    return store, START_MS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=5)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()

    from models import registry
    from models.tracking import log_training, register_training
    from models.training import fit_and_evaluate, load_training_data
    from tradeflow.config import load_settings
    from tradeflow.strategy import load_strategy

    symbols = SYMBOLS[: args.symbols]
    base = load_strategy(ROOT / "config" / "strategies" / "momentum_xgb.yaml")
    strategy = base.model_copy(update={
        "symbols": symbols,
        "training": base.training.model_copy(update={"window_days": args.days,
                                                     "folds": args.folds}),
    })
    # Training window + holdout + a day of feature warm-up + slack.
    history = args.days + strategy.promotion.evaluation_days + 2
    t0 = time.perf_counter()
    store, end_ms = simulated_store(symbols, history)
    t_market = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(overrides={"data_dir": tmp}, env={})
        registry.configure_tracking(settings)  # creates the sqlite schema: not timed below
        t0 = time.perf_counter()
        data = load_training_data(store, "binance", strategy, end_ms)
        t1 = time.perf_counter()
        result = fit_and_evaluate(data)
        t2 = time.perf_counter()
        logged = log_training(result, settings, {"end_ms": end_ms})
        t_reg = time.perf_counter()
        register_training(result)
        t3 = time.perf_counter()

    load_s, fit_s, mlflow_s, total = t1 - t0, t2 - t1, t3 - t2, t3 - t0
    candles = sum(len(f) for f in data.candles.values())
    print(f"market: {len(symbols)} symbols x {args.days:g} days of 1m "
          f"({candles:,} candles incl. warm-up, {result.samples:,} samples, "
          f"{len(result.pipeline.columns)} features), simulated in {t_market:.1f}s")
    print(f"strategy: {strategy.name}, {strategy.model.kind} {strategy.model.params}, "
          f"{args.folds} folds + {len(result.evaluations) - 1} baselines")
    print(f"load candles + hash      {load_s:7.2f} s")
    print(f"features, CV, final fit  {fit_s:7.2f} s")
    print(f"MLflow log + register    {mlflow_s:7.2f} s")
    for part, seconds in {**logged.parts, "register_s": t3 - t_reg}.items():
        print(f"  {part[:-2]:<22} {seconds:7.2f} s")
    print(f"total                    {total:7.2f} s")
    share = mlflow_s / total
    verdict = "OK" if share <= GOAL else "ABOVE GOAL"
    print(f"ratio mlflow / total = {share:.3f} (goal <= {GOAL:.2f}): {verdict}")
    print("out of sample (walk-forward, after fees):")
    print(result.table())
    print(json.dumps({"total_s": round(total, 2), "fit_s": round(fit_s, 2),
                      "mlflow_s": round(mlflow_s, 2), "mlflow_share": round(share, 4)}))


if __name__ == "__main__":
    main()
