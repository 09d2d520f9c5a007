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

Then each model family (``model.kind``; ``--families``, default all) on the same samples
(features and labels built once, not timed per family; one untimed walk-forward first pays
the backtester's one-off start-up): walk-forward CV (the folds' fits and out-of-sample scoring
with backtests before and after costs) and the final fit, their time as a ratio against
xgboost's in the same run, the out-of-sample AUC and Sharpe after fees. xgboost keeps the
strategy's ``model.params``; the other families run on their defaults
(``models.estimators.RANDOM_FOREST_DEFAULTS``, ``LOGISTIC_DEFAULTS``).

Usage: ``.venv/bin/python bench/training.py [--symbols 5] [--days 30] [--folds 5]
[--families xgboost,random_forest,logistic] [--families-only]``
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

from models.estimators import FAMILIES  # noqa: E402
from tradeflow.market.store import MarketStore  # noqa: E402
from tradeflow.strategy import StrategySettings  # noqa: E402

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
    parser.add_argument("--families", default=",".join(FAMILIES),
                        help="comma-separated model families to compare on the same data")
    parser.add_argument("--families-only", action="store_true",
                        help="skip the MLflow-share measurement, compare the families only")
    args = parser.parse_args()
    families = tuple(f.strip() for f in args.families.split(",") if f.strip())
    unknown = [f for f in families if f not in FAMILIES]
    if unknown or not families:
        parser.error(f"--families {args.families!r}: allowed: {', '.join(FAMILIES)}")

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

    print(f"market: {len(symbols)} symbols x {args.days:g} days of 1m, simulated in "
          f"{t_market:.1f}s")
    if not args.families_only:
        mlflow_share(store, strategy, end_ms, args.folds)
    compare_families(store, strategy, end_ms, families)


def mlflow_share(store: MarketStore, strategy: StrategySettings, end_ms: int, folds: int) -> None:
    """One training of the strategy, logged and registered: MLflow's share of the time."""
    from models import registry
    from models.tracking import log_training, register_training
    from models.training import fit_and_evaluate, load_training_data
    from tradeflow.config import load_settings

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
    print(f"data: {candles:,} candles incl. warm-up, {result.samples:,} samples, "
          f"{len(result.pipeline.columns)} features")
    print(f"strategy: {strategy.name}, {strategy.model.kind} {strategy.model.params}, "
          f"{folds} folds + {len(result.evaluations) - 1} baselines")
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


def compare_families(store: MarketStore, strategy: StrategySettings, end_ms: int,
                     families: tuple[str, ...]) -> None:
    """Each family's walk-forward CV and final fit on the same samples: time, AUC, Sharpe."""
    from models.features import FeaturePipeline
    from models.training import (
        MAIN,
        build_samples,
        cross_validate,
        fit_final,
        load_training_data,
    )

    data = load_training_data(store, "binance", strategy, end_ms)
    t0 = time.perf_counter()
    pipeline = FeaturePipeline.from_strategy(strategy)
    samples = build_samples(data.candles, strategy, pipeline, data.window.start_ms)
    features_s = time.perf_counter() - t0
    # The first walk-forward pays one-off costs (the backtester's compiled kernels loading):
    # paid here, untimed, so that the first family timed is not charged for them.
    cross_validate(samples, data.candles, strategy.model_copy(update={
        "model": strategy.model.model_copy(update={"kind": "logistic", "params": {}})}),
        "logistic", MAIN, {})
    print(f"model families on the same {len(samples):,} samples x {len(pipeline.columns)} "
          f"features ({strategy.training.folds} walk-forward folds; features + labels "
          f"{features_s:.2f} s, once):")
    print(f"  {'family':<14} {'cv s':>8} {'final s':>8} {'total s':>8} {'vs xgb':>7} "
          f"{'oos auc':>8} {'sharpe':>8}  params")
    rows: dict[str, dict[str, float]] = {}
    for kind in families:
        params = strategy.model.params if kind == "xgboost" else {}
        model = strategy.model.model_copy(update={"kind": kind, "params": params})
        family = strategy.model_copy(update={"model": model})
        t0 = time.perf_counter()
        evaluation = cross_validate(samples, data.candles, family, kind, MAIN, params)
        t1 = time.perf_counter()
        fit_final(samples, family, pipeline.columns)
        t2 = time.perf_counter()
        rows[kind] = {"cv_s": round(t1 - t0, 2), "final_s": round(t2 - t1, 2),
                      "total_s": round(t2 - t0, 2), "auc": round(evaluation.auc, 4),
                      "sharpe": round(evaluation.backtest.metrics.sharpe, 2)}
        base = rows.get("xgboost", {}).get("total_s")
        ratio = f"{(t2 - t0) / base:7.2f}" if base else f"{'-':>7}"
        print(f"  {kind:<14} {t1 - t0:8.2f} {t2 - t1:8.2f} {t2 - t0:8.2f} {ratio} "
              f"{evaluation.auc:8.4f} {evaluation.backtest.metrics.sharpe:8.2f}  "
              f"{params or 'defaults'}")
    print(json.dumps({"families": rows}))


if __name__ == "__main__":
    main()
