"""Benchmark: order flow.

``section_vwap``: the true VWAP (session, UTC day, and rolling 60 minutes) over 10M synthetic
trades on a week of 1m candles, through the feature path (the per-candle trade sums of
models.order_flow, then the ``trade_vwap`` family of the feature pipeline) against a plain numpy
computation of the same VWAPs (cumulative sums over the trades, cut at each candle close by
searchsorted), measured in the same run. Both results are compared, then timed (best of
``--repeat``); goal: the feature path within 2x of numpy.

    .venv/bin/python bench/orderflow.py [--trades 10000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.features import FeaturePipeline  # noqa: E402
from models.order_flow import attach  # noqa: E402

MIN = 60_000
DAY = 86_400_000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
VWAP = [{"name": "trade_vwap", "minutes": 60, "stds": 2.0, "session": True}]


def synthetic_trades(n: int, days: int = 7, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``n`` trades over ``days`` (random walk, random sizes and sides) and their 1m candles."""
    rng = np.random.default_rng(seed)
    ts = np.sort(T0 + rng.integers(0, days * DAY, n)).astype(np.int64)
    price = 40_000.0 * np.exp(np.cumsum(rng.normal(0.0, 2e-5, n)))
    amount = rng.lognormal(-4.0, 1.2, n)
    side = pd.Categorical.from_codes(rng.integers(0, 2, n), ["buy", "sell"])
    trades = pd.DataFrame({"id": np.arange(n, dtype=np.int64), "ts": ts, "price": price,
                           "amount": amount, "side": side})
    open_time = T0 + MIN * np.arange(days * 1440, dtype=np.int64)
    last = np.searchsorted(ts, open_time + MIN, side="left") - 1
    close = price[np.maximum(last, 0)]
    candles = pd.DataFrame({"open_time": open_time, "open": close, "high": close, "low": close,
                            "close": close, "volume": np.ones(open_time.size)})
    return trades, candles


def feature_path(trades: pd.DataFrame, candles: pd.DataFrame) -> pd.DataFrame:
    """Per-candle sums of the trades, then the pipeline's trade_vwap columns."""
    pipeline = FeaturePipeline.from_specs(VWAP, "1m")
    with_flow = attach(candles, "1m", pipeline.inputs, trades, None, covered=(T0, None))
    return pipeline.compute(with_flow)


def numpy_vwap(trades: pd.DataFrame, candles: pd.DataFrame) -> dict[str, np.ndarray]:
    """The same VWAP distances in plain numpy: cumulative sums cut at each candle close."""
    ts = trades["ts"].to_numpy()
    p = trades["price"].to_numpy()
    q = trades["amount"].to_numpy()
    cpv = np.concatenate(([0.0], np.cumsum(p * q)))
    cq = np.concatenate(([0.0], np.cumsum(q)))
    open_time = candles["open_time"].to_numpy()
    close = candles["close"].to_numpy()
    end = np.searchsorted(ts, open_time + MIN, side="left")
    out = {}
    for key, start in (("60m", open_time + MIN - 60 * MIN), ("session", open_time // DAY * DAY)):
        lo = np.searchsorted(ts, start, side="left")
        vwap = (cpv[end] - cpv[lo]) / (cq[end] - cq[lo])
        dist = close / vwap - 1.0
        if key == "60m":
            dist[:59] = np.nan  # the first window is not whole yet
        out[f"of_vwap_dist_{key}"] = dist
    return out


def best_of(repeat: int, fn: Callable[[], Any]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def section_vwap(n_trades: int = 10_000_000, repeat: int = 3) -> dict[str, float]:
    """True VWAP over ``n_trades`` trades: feature path vs plain numpy (goal <= 2x)."""
    trades, candles = synthetic_trades(n_trades)
    print(f"true VWAP: {len(trades):,} trades, {len(candles):,} 1m candles")
    small_t, small_c = synthetic_trades(10_000, days=1, seed=1)
    feature_path(small_t, small_c)  # numba kernels compiled or loaded from cache first
    ours = feature_path(trades, candles)
    ref = numpy_vwap(trades, candles)
    for col, expected in ref.items():
        np.testing.assert_allclose(ours[col].to_numpy(), expected, rtol=1e-9, atol=1e-8,
                                   err_msg=col)
    print("  results agree with numpy (within 1e-8) on", ", ".join(ref))
    t_ours = best_of(repeat, lambda: feature_path(trades, candles))
    t_numpy = best_of(repeat, lambda: numpy_vwap(trades, candles))
    ratio = t_ours / t_numpy
    print(f"  feature path (trade sums + trade_vwap, 6 columns): {t_ours:.3f} s "
          f"({len(trades) / t_ours / 1e6:.1f}M trades/s)")
    print(f"  numpy baseline (cumsum + searchsorted, 2 VWAPs):   {t_numpy:.3f} s")
    print(f"  ratio {ratio:.2f}x (goal <= 2x): {'PASS' if ratio <= 2.0 else 'FAIL'}")
    return {"ours_s": t_ours, "numpy_s": t_numpy, "ratio": ratio}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    section_vwap(args.trades, args.repeat)


if __name__ == "__main__":
    main()
