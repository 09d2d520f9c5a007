"""Benchmark: candle validation on 1M synthetic 1m candles.

The series passes every hard rule; 1% of its candles are forward-filled (synthetic) and 100
gaps are cut into it, so the new rules find something. Baseline: plain vectorised numpy
checks of the hard rules, measured in the same run. Reports the pandera contract check
(tradeflow.contracts.schemas.check_candles), the new rules alone (synthetic fills, flat
candles that traded, the series' spacing, gaps before each candle, gap runs, the per-candle
verdicts policies act on), all derived columns, and the Great Expectations checkpoint with
Data Docs (tradeflow.validation.gx_suite), each as seconds and as a ratio to the baseline.
Goals: pandera within 3x of numpy; every rule (pandera, derived columns, verdicts, GX) on 1M
candles within 2 s.

    .venv/bin/python bench/validation.py [--rows 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tradeflow.config import ValidationSettings  # noqa: E402
from tradeflow.contracts.rules import spacing, spacing_agrees  # noqa: E402
from tradeflow.contracts.schemas import check_candles  # noqa: E402
from tradeflow.market.gaps import gap_runs, missing_before  # noqa: E402
from tradeflow.validation import gx_suite  # noqa: E402
from tradeflow.validation.stats import (  # noqa: E402
    derive,
    flat,
    soft_failures,
    synthetic_fills,
)

MIN = 60_000
T0 = 1_704_067_200_000


def synthetic(rows: int, seed: int = 7) -> pd.DataFrame:
    """A random walk passing every hard rule (positive prices, wicks around the body, on the
    grid), with 1% forward-filled candles and 100 gaps."""
    rng = np.random.default_rng(seed)
    close = 30_000 * np.exp(np.cumsum(rng.normal(0, 0.0008, rows + 500)))
    open_ = np.concatenate(([close[0]], close[:-1]))
    wick = np.abs(rng.normal(0, 0.0004, (2, rows + 500)))
    volume = rng.gamma(2.0, 5.0, rows + 500)
    high = np.maximum(open_, close) * (1 + wick[0])
    low = np.minimum(open_, close) * (1 - wick[1])
    filled = np.sort(rng.choice(np.arange(1, rows + 500), (rows + 500) // 100, replace=False))
    for i in filled:  # the previous close, no trade (a run where they follow each other)
        open_[i] = high[i] = low[i] = close[i] = close[i - 1]
        volume[i] = 0.0
    keep = np.ones(rows + 500, dtype=bool)
    keep[rng.choice(np.arange(1, rows + 499), 100, replace=False)[:, None] +
         np.arange(5)] = False  # 100 gaps of up to 5 candles
    frame = pd.DataFrame({
        "open_time": T0 + np.arange(rows + 500, dtype=np.int64) * MIN,
        "open": open_, "high": high, "low": low, "close": close, "volume": volume,
    })
    return frame[keep].iloc[:rows].reset_index(drop=True)


def new_rules(frame: pd.DataFrame, cfg: ValidationSettings) -> tuple[int, int, int]:
    """The rules added for real data, computed alone: (synthetic, flat traded, gaps)."""
    times = frame["open_time"].to_numpy()
    fills = synthetic_fills(frame)
    traded = flat(frame) & (frame["volume"].to_numpy() > 0)
    assert spacing_agrees(spacing(times), "1m")
    missing_before(times, "1m")
    return int(fills.sum()), int(traded.sum()), len(gap_runs(times, "1m"))


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
    fills, traded, gaps = new_rules(frame, cfg)
    assert fills >= args.rows // 120 and gaps > 0, (fills, gaps)
    t_new = best(lambda: new_rules(frame, cfg), args.repeat)

    last = int(frame["open_time"].iloc[-1])
    with tempfile.TemporaryDirectory(prefix="bench-gx-") as tmp:
        start = time.perf_counter()
        context = gx_suite.open_context(tmp)
        t_context = time.perf_counter() - start
        t_derive = best(lambda: derive(frame, "1m", cfg, window_start=T0,
                                       last_closed=last), args.repeat)
        derived = derive(frame, "1m", cfg, window_start=T0, last_closed=last)
        verdicts = soft_failures(derived, cfg)
        assert (verdicts["rule"] == "synthetic_fill").sum() == fills
        t_verdicts = best(lambda: soft_failures(derived, cfg), args.repeat)
        gx_times = []
        for i in range(2):  # the first run also creates the suite, asset and checkpoint
            start = time.perf_counter()
            result = gx_suite.run_suite(context, {"binance:BTC/USDT:1m": derived}, cfg,
                                        run_name=f"bench-{i}")
            gx_times.append(time.perf_counter() - start)
        outcomes = {o.rule: o.failed for o in result.outcomes["binance:BTC/USDT:1m"]}
        assert not any(outcomes[r] for r in ("high_ge_body", "low_le_body", "on_grid"))
        assert outcomes["synthetic_fill"] == fills and outcomes["gap"] == gaps, outcomes
    t_gx = min(gx_times)
    total = t_pandera + t_derive + t_verdicts + t_gx

    print(f"candle validation benchmark: {args.rows:,} 1m candles ({fills:,} synthetic, "
          f"{traded:,} flat that traded, {gaps} gaps), best of {args.repeat} (GX: best of 2); "
          f"load {os.getloadavg()[0]:.2f}")
    print(f"  baseline  numpy hard rules            {t_numpy * 1000:9.1f} ms   1.00x")
    print(f"  pandera   check_candles (hard rules)   {t_pandera * 1000:9.1f} ms "
          f"{t_pandera / t_numpy:6.2f}x numpy   (goal <= 3x)")
    print(f"  new rules synthetic, flat, spacing, gaps {t_new * 1000:7.1f} ms "
          f"{t_new / t_numpy:6.1f}x numpy   (inside the derived columns)")
    print(f"  GX        derived columns (all rules)  {t_derive * 1000:9.1f} ms "
          f"{t_derive / t_numpy:6.1f}x numpy")
    print(f"  policies  per-candle soft verdicts     {t_verdicts * 1000:9.1f} ms "
          f"{t_verdicts / t_numpy:6.1f}x numpy")
    print(f"  GX        checkpoint + Data Docs       {t_gx * 1000:9.1f} ms "
          f"{t_gx / t_numpy:6.1f}x numpy   (first run {gx_times[0]:.2f} s)")
    print(f"  GX        context open (once)          {t_context * 1000:9.1f} ms")
    print(f"  total     every rule: pandera + derived + verdicts + GX  {total:6.2f} s "
          "(goal <= 2 s)")


if __name__ == "__main__":
    main()
