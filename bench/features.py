"""Feature pipeline and indicator speed, against TA-Lib measured in the same run.

Run: ``.venv/bin/python bench/features.py [--rows 1000000] [--repeats 5]``

Prints the time to compute every feature of ``config/strategies/momentum_xgb.yaml`` on a
million 1m candles, then RSI, MACD, BBANDS and ATR in ``tradeflow.indicators`` against ``talib``
on the same arrays, with the ratio ours / TA-Lib (goal: <= 2x). Times are the best of
``--repeats`` runs after one warm-up call (numba compiles on first use; its cache keeps the
machine code for later processes).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import talib

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.features import FeaturePipeline  # noqa: E402
from tradeflow import indicators as ind  # noqa: E402
from tradeflow.strategy import load_strategy  # noqa: E402

GOAL = 2.0


def candles(n: int, seed: int = 0) -> pd.DataFrame:
    """A million-row 1m random walk with realistic wicks and volumes."""
    rng = np.random.default_rng(seed)
    close = 30_000 * np.exp(np.cumsum(rng.normal(0.0, 1e-3, n)))
    open_ = np.r_[30_000.0, close[:-1]]
    wick = np.abs(rng.normal(0.0, 5e-4, (2, n)))
    return pd.DataFrame({
        "open_time": 1_699_920_000_000 + 60_000 * np.arange(n, dtype=np.int64),
        "open": open_,
        "high": np.maximum(open_, close) * (1 + wick[0]),
        "low": np.minimum(open_, close) * (1 - wick[1]),
        "close": close,
        "volume": rng.lognormal(2.0, 1.0, n),
    })


def best_of(fn: Callable[[], object], repeats: int) -> float:
    """Best wall time in seconds over ``repeats`` calls, after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    frame = candles(args.rows)
    h, lo, c = (frame[k].to_numpy() for k in ("high", "low", "close"))
    strategy = load_strategy(ROOT / "config" / "strategies" / "momentum_xgb.yaml")
    pipe = FeaturePipeline.from_strategy(strategy)

    start = time.perf_counter()
    pipe.compute(frame)
    first = time.perf_counter() - start
    every = best_of(lambda: pipe.compute(frame), args.repeats)
    print(f"{args.rows:,} {strategy.timeframe} candles, strategy {strategy.name!r}: "
          f"{len(pipe.columns)} columns, warm-up {pipe.warmup:,} candles")
    print(f"  all features: {every * 1e3:8.1f} ms (best of {args.repeats}; first call "
          f"{first * 1e3:.1f} ms incl. compile/page faults)  "
          f"= {every / args.rows * 1e9:.0f} ns per candle")

    cases: list[tuple[str, Callable[[], object], Callable[[], object]]] = [
        ("RSI(14)", lambda: ind.rsi(c, 14), lambda: talib.RSI(c, 14)),
        ("MACD(12,26,9)", lambda: ind.macd(c, 12, 26, 9), lambda: talib.MACD(c, 12, 26, 9)),
        ("BBANDS(20,2)", lambda: ind.bbands(c, 20, 2.0),
         lambda: talib.BBANDS(c, 20, 2.0, 2.0, talib.MA_Type.SMA)),
        ("ATR(14)", lambda: ind.atr(h, lo, c, 14), lambda: talib.ATR(h, lo, c, 14)),
    ]
    print(f"\n  {'indicator':<14} {'ours ms':>9} {'TA-Lib ms':>10} {'ratio':>7} "
          f"{'max |diff|':>11}  goal <= {GOAL:g}x")
    ours_total = ref_total = 0.0
    for name, ours, ref in cases:
        t_ours, t_ref = best_of(ours, args.repeats), best_of(ref, args.repeats)
        ours_total, ref_total = ours_total + t_ours, ref_total + t_ref
        diff = _max_diff(ours(), ref())
        ratio = t_ours / t_ref
        print(f"  {name:<14} {t_ours * 1e3:9.2f} {t_ref * 1e3:10.2f} {ratio:7.2f} {diff:11.2e}"
              f"  {'ok' if ratio <= GOAL else 'SLOWER'}")
    print(f"  {'all four':<14} {ours_total * 1e3:9.2f} {ref_total * 1e3:10.2f} "
          f"{ours_total / ref_total:7.2f}")


def _max_diff(ours: object, ref: object) -> float:
    a = np.asarray(ours, dtype=np.float64)
    b = np.asarray(ref, dtype=np.float64)
    both = ~(np.isnan(a) | np.isnan(b))
    return float(np.max(np.abs(a[both] - b[both]))) if both.any() else 0.0


if __name__ == "__main__":
    main()
