"""Derived columns of the soft rules: returns, wicks, volume spikes, synthetic fills, gaps,
spacing, age; and the per-candle verdicts policies act on."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tradeflow.config import ValidationSettings
from tradeflow.validation.stats import candles_behind, derive, soft_failures, synthetic_fills

MIN = 60_000
T0 = 1_704_067_200_000
CFG = ValidationSettings(return_window=50, volume_window=50, return_sigma_k=8,
                         volume_z_max=12, freshness_candles=3)


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
                          ("synthetic_fill", 0), ("timeframe_mismatch", 0), ("gap_before", 0)):
        assert flagged(frame, column, limit) == [], column
    out = derive(frame, "1m", CFG, window_start=T0, last_closed=None)
    assert soft_failures(out, CFG).empty


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


def test_every_forward_filled_candle_is_synthetic_whatever_its_run_length() -> None:
    frame = walk()
    frame.loc[100:109, ["open", "high", "low", "close"]] = frame.loc[99, "close"]
    frame.loc[100:109, "volume"] = 0.0
    frame.loc[150, ["open", "high", "low", "close"]] = frame.loc[149, "close"]  # a run of one
    frame.loc[150, "volume"] = 0.0
    frame.loc[160, "volume"] = 0.0  # zero volume but a real range: not a fill
    frame.loc[170, ["open", "high", "low", "close"]] = frame.loc[169, "close"]
    frame.loc[170, "volume"] = 4.0  # flat at the previous close, but it traded: genuine
    frame.loc[180, ["open", "high", "low", "close"]] = frame.loc[179, "close"] * 1.001
    frame.loc[180, "volume"] = 0.0  # flat, no volume, but not at the previous close
    synthetic = synthetic_fills(frame)
    assert np.flatnonzero(synthetic).tolist() == [*range(100, 110), 150]
    assert flagged(frame, "synthetic_fill", 0) == [*range(100, 110), 150]
    out = derive(frame, "1m", CFG, window_start=T0, last_closed=None)
    assert np.flatnonzero(out["flat_traded"].to_numpy()).tolist() == [170]
    failures = soft_failures(out, CFG)
    fills = failures[failures["rule"] == "synthetic_fill"]["open_time"]
    assert fills.tolist() == (T0 + np.array([*range(100, 110), 150]) * MIN).tolist()


def test_the_first_candle_flat_without_volume_counts_as_a_fill() -> None:
    frame = walk(5)
    frame.loc[0, ["open", "high", "low"]] = frame.loc[0, "close"]
    frame.loc[0, "volume"] = 0.0
    assert synthetic_fills(frame).tolist() == [True, False, False, False, False]


def test_gaps_count_the_missing_candles_before_each_one() -> None:
    frame = walk(50).drop(index=[10, 11, 12, 30]).reset_index(drop=True)
    out = derive(frame, "1m", CFG, window_start=T0, last_closed=None)
    gaps = out["gap_before"].to_numpy()
    assert np.isnan(gaps[0]) and np.flatnonzero(gaps > 0).tolist() == [10, 27]
    assert gaps[10] == 3 and gaps[27] == 1


def test_a_coarser_series_stored_under_a_finer_timeframe_is_a_mismatch_on_every_candle(
) -> None:
    hourly = walk(100)
    hourly["open_time"] = T0 + np.arange(100, dtype=np.int64) * 60 * MIN  # 1h stored as 1m
    out = derive(hourly, "1m", CFG, window_start=T0, last_closed=None)
    assert (out["timeframe_mismatch"] == 1).all() and (out["gap_before"].iloc[1:] == 59).all()
    failures = soft_failures(out, CFG)
    assert (failures["rule"] == "timeframe_spacing").sum() == 100
    # A 1m series with gaps (an illiquid market) still agrees with 1m.
    sparse = walk(200).iloc[::3].reset_index(drop=True)
    sparse = pd.concat([walk(20), sparse.iloc[7:]], ignore_index=True)
    assert (derive(sparse, "1m", CFG, window_start=T0, last_closed=None)[
        "timeframe_mismatch"] == 0).all()


def test_age_is_set_on_the_last_candle_only() -> None:
    frame = walk(100)
    last = int(frame["open_time"].iloc[-1])
    out = derive(frame, "1m", CFG, window_start=T0, last_closed=last + 7 * MIN)
    assert out["age_candles"].iloc[-1] == 7 and out["age_candles"].iloc[:-1].isna().all()
    # A window that ends before the series does says nothing about staleness.
    assert derive(frame, "1m", CFG, window_start=T0, last_closed=None)[
        "age_candles"].isna().all()
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
