"""Benchmark: candle validation on 1M synthetic valid 1m candles.

Baseline: plain vectorised numpy checks of the same hard rules, measured in the same run.
Reports the pandera contract check (tradeflow.contracts.schemas.check_candles), the derived
columns and the Great Expectations checkpoint with Data Docs (tradeflow.validation.gx_suite),
each as seconds and as a ratio to the baseline. Goals: pandera within 3x of numpy, pandera
and GX together under 10 s.

    .venv/bin/python bench/validation.py [--rows 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tradeflow.config import ValidationSettings  # noqa: E402
from tradeflow.contracts.schemas import check_candles  # noqa: E402
from tradeflow.validation import gx_suite  # noqa: E402
from tradeflow.validation.stats import derive  # noqa: E402

MIN = 60_000
T0 = 1_704_067_200_000


def synthetic(rows: int, seed: int = 7) -> pd.DataFrame:
    """A valid random-walk series: positive prices, wicks around the body, on the grid."""
    rng = np.random.default_rng(seed)
    close = 30_000 * np.exp(np.cumsum(rng.normal(0, 0.0008, rows)))
    open_ = np.concatenate(([close[0]], close[:-1]))
    wick = np.abs(rng.normal(0, 0.0004, (2, rows)))
    return pd.DataFrame({
        "open_time": T0 + np.arange(rows, dtype=np.int64) * MIN,
        "open": open_,
        "high": np.maximum(open_, close) * (1 + wick[0]),
        "low": np.minimum(open_, close) * (1 - wick[1]),
        "close": close,
        "volume": rng.gamma(2.0, 5.0, rows),
    })


def numpy_hard_rules(frame: pd.DataFrame, step: int = MIN) -> int:
    """The hard rules as bare numpy; returns the number of failing rows."""
    t = frame["open_time"].to_numpy()
    o, h, lo, c, v = (frame[k].to_numpy() for k in ("open", "high", "low", "close", "volume"))
    bad = np.zeros(len(t), dtype=bool)
    for x in (o, h, lo, c):
        bad |= ~(x > 0) | np.isinf(x)                  # NaN, non-positive, infinite prices
    bad |= ~(v >= 0)                                   # NaN or negative volume
    bad |= h < np.maximum(o, c)
    bad |= lo > np.minimum(o, c)
    bad |= t % step != 0
    bad[1:] |= t[1:] <= t[:-1]                         # duplicated or out of order
    return int(bad.sum())


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    frame = synthetic(args.rows)
    cfg = ValidationSettings()

    assert numpy_hard_rules(frame) == 0
    check = check_candles(frame, "1m")
    assert check.ok, check.summary()  # also warms pandera up
    t_numpy = best(lambda: numpy_hard_rules(frame), args.repeat)
    t_pandera = best(lambda: check_candles(frame, "1m"), args.repeat)

    last = int(frame["open_time"].iloc[-1])
    with tempfile.TemporaryDirectory(prefix="bench-gx-") as tmp:
        start = time.perf_counter()
        context = gx_suite.open_context(tmp)
        t_context = time.perf_counter() - start
        t_derive = best(lambda: derive(frame, "1m", cfg, window_start=T0,
                                       last_closed=last), args.repeat)
        derived = derive(frame, "1m", cfg, window_start=T0, last_closed=last)
        gx_times = []
        for i in range(2):  # the first run also creates the suite, asset and checkpoint
            start = time.perf_counter()
            result = gx_suite.run_suite(context, {"binance:BTC/USDT:1m": derived}, cfg,
                                        run_name=f"bench-{i}")
            gx_times.append(time.perf_counter() - start)
        failed = sum(o.failed for o in result.outcomes["binance:BTC/USDT:1m"]
                     if o.severity == "hard")
        assert failed == 0, result.outcomes
    t_gx = min(gx_times)
    total = t_pandera + t_derive + t_gx

    print(f"candle validation benchmark: {args.rows:,} valid 1m candles, best of "
          f"{args.repeat} (GX: best of 2)")
    print(f"  baseline  numpy hard rules            {t_numpy * 1000:9.1f} ms   1.00x")
    print(f"  pandera   check_candles (hard rules)   {t_pandera * 1000:9.1f} ms "
          f"{t_pandera / t_numpy:6.2f}x numpy   (goal <= 3x)")
    print(f"  GX        derived columns (stats)      {t_derive * 1000:9.1f} ms "
          f"{t_derive / t_numpy:6.1f}x numpy")
    print(f"  GX        checkpoint + Data Docs       {t_gx * 1000:9.1f} ms "
          f"{t_gx / t_numpy:6.1f}x numpy   (first run {gx_times[0]:.2f} s)")
    print(f"  GX        context open (once)          {t_context * 1000:9.1f} ms")
    print(f"  total     pandera + derived + GX       {total:9.2f} s    (goal < 10 s)")


if __name__ == "__main__":
    main()
