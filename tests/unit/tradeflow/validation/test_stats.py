"""Derived columns of the statistical rules: returns, wicks, volume spikes, flat runs, age."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tradeflow.config import ValidationSettings
from tradeflow.validation.stats import candles_behind, derive, zero_volume_runs

MIN = 60_000
T0 = 1_704_067_200_000
CFG = ValidationSettings(return_window=50, volume_window=50, return_sigma_k=8,
                         volume_z_max=12, zero_volume_run_max=5, freshness_candles=3)


def walk(n: int = 400, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    return pd.DataFrame({
        "open_time": T0 + np.arange(n, dtype=np.int64) * MIN,
        "open": open_, "high": np.maximum(open_, close) * 1.0005,
        "low": np.minimum(open_, close) * 0.9995, "close": close,
        "volume": rng.gamma(4.0, 2.0, n),
    })


def flagged(frame: pd.DataFrame, column: str, limit: float) -> list[int]:
    out = derive(frame, "1m", CFG, window_start=T0, last_closed=int(frame["open_time"].iloc[-1]))
    values = out[column].to_numpy()
    return np.flatnonzero(np.abs(values) > limit).tolist()


def test_a_quiet_walk_raises_no_statistical_flag() -> None:
    frame = walk()
    for column, limit in (("return_z", 8), ("wick_z", 8), ("volume_z", 12),
                          ("zero_volume_run", 5)):
        assert flagged(frame, column, limit) == [], column


def test_a_price_jump_is_an_extreme_return_both_ways() -> None:
    frame = walk()
    frame.loc[300:, ["open", "high", "low", "close"]] *= 1.05
    frame.loc[300, "open"] = frame.loc[299, "close"]
    frame.loc[300, "low"] = frame.loc[300, "open"] * 0.9995
    assert flagged(frame, "return_z", 8) == [300]


def test_a_high_19_percent_above_the_body_is_an_extreme_wick() -> None:
    frame = walk()
    frame.loc[250, "high"] = frame.loc[250, ["open", "close"]].max() * 1.19
    assert flagged(frame, "wick_z", 8) == [250]
    assert flagged(frame, "return_z", 8) == []  # the close did not move


def test_a_volume_spike_is_flagged() -> None:
    frame = walk()
    frame.loc[200, "volume"] = 2_000.0
    assert flagged(frame, "volume_z", 12) == [200]


def test_forward_filled_flat_candles_form_a_zero_volume_run() -> None:
    frame = walk()
    frame.loc[100:109, ["open", "high", "low", "close"]] = frame.loc[99, "close"]
    frame.loc[100:109, "volume"] = 0.0
    frame.loc[150:152, ["open", "high", "low", "close"]] = frame.loc[149, "close"]
    frame.loc[150:152, "volume"] = 0.0
    frame.loc[160, "volume"] = 0.0  # zero volume but a real range: not filler
    runs = zero_volume_runs(frame)
    assert runs[100:110].tolist() == [10] * 10 and runs[150:153].tolist() == [3] * 3
    assert runs[160] == 0 and runs[99] == 0 and runs[110] == 0
    assert flagged(frame, "zero_volume_run", 5) == list(range(100, 110))


def test_age_is_set_on_the_last_candle_only() -> None:
    frame = walk(100)
    last = int(frame["open_time"].iloc[-1])
    out = derive(frame, "1m", CFG, window_start=T0, last_closed=last + 7 * MIN)
    assert out["age_candles"].iloc[-1] == 7 and out["age_candles"].iloc[:-1].isna().all()
    assert candles_behind(last, last, "1m") == 0
    assert candles_behind(last, last - MIN, "1m") == 0


def test_rows_before_the_window_only_warm_up() -> None:
    frame = walk(300)
    start = T0 + 200 * MIN
    out = derive(frame, "1m", CFG, window_start=start, last_closed=T0 + 299 * MIN)
    assert len(out) == 100 and out["open_time"].iloc[0] == start
    assert out["return_z"].notna().all()  # warm from the first window candle on
    assert (out["grid_offset_ms"] == 0).all()
    assert (out["upper_wick"] >= 0).all() and (out["lower_wick"] >= 0).all()
