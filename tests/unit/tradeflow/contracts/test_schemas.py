"""pandera contracts: every hard rule on crafted frames, real-exchange faults, predictions."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from tradeflow import timeframes
from tradeflow.contracts.rules import grid_offset
from tradeflow.contracts.schemas import (
    ContractError,
    assert_candles,
    assert_predictions,
    candle_schema,
    check_candles,
    check_predictions,
)

MIN = 60_000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC, a Monday


def candles(n: int = 20, step: int = MIN, start: int = T0) -> pd.DataFrame:
    """A valid series: a gentle random walk with wicks on both sides of the body."""
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    return pd.DataFrame({
        "open_time": start + np.arange(n, dtype=np.int64) * step,
        "open": open_, "high": np.maximum(open_, close) * 1.001,
        "low": np.minimum(open_, close) * 0.999, "close": close,
        "volume": rng.gamma(2.0, 3.0, n), "quote_volume": np.ones(n),
    })


def failing(frame: pd.DataFrame, timeframe: str = "1m") -> list[tuple[int, str, str]]:
    check = check_candles(frame, timeframe)
    return [(int(r.row), r.rule, r.column) for r in check.failures.itertuples()]


def test_a_valid_series_passes_and_extra_columns_are_allowed() -> None:
    check = check_candles(candles(), "1m")
    assert check.ok and check.counts == {} and check.failures.empty and check.rows == 20
    assert check.summary() == "all 20 rows pass"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda f: f.loc.__setitem__((4, "open"), 0.0),
         [(4, "low_le_body", "low"), (4, "price_positive", "open")]),
        (lambda f: f.loc.__setitem__((4, "close"), np.inf),
         [(4, "high_ge_body", "high"), (4, "price_positive", "close")]),
        (lambda f: f.loc.__setitem__((4, "high"), np.nan), [(4, "price_not_nan", "high")]),
        (lambda f: f.loc.__setitem__((4, "volume"), -1.0),
         [(4, "volume_non_negative", "volume")]),
        (lambda f: f.loc.__setitem__((4, "high"), f.loc[4, "close"] * 0.99),
         [(4, "high_ge_body", "high")]),
        (lambda f: f.loc.__setitem__((4, "low"), f.loc[4, "open"] * 1.01),
         [(4, "low_le_body", "low")]),
        (lambda f: f.loc.__setitem__([6, 7], f.loc[[7, 6]].to_numpy()),
         [(7, "increasing_open_time", "open_time")]),
    ],
    ids=["zero-price", "infinite-price", "nan-high", "negative-volume", "high-below-body",
         "low-above-body", "out-of-order"],
)
def test_each_hard_rule_flags_the_cell(mutate: object, expected: list) -> None:
    frame = candles()
    mutate(frame)  # type: ignore[operator]
    assert failing(frame) == expected


def test_forward_filled_flat_zero_volume_candles_are_not_a_hard_failure() -> None:
    # Filler candles are not broken candles; the soft synthetic_fill rule judges them.
    frame = candles()
    frame.loc[5:12, ["open", "high", "low", "close"]] = frame.loc[4, "close"]
    frame.loc[5:12, "volume"] = 0.0
    assert check_candles(frame, "1m").ok


def test_a_high_19_percent_above_the_body_is_not_a_hard_failure() -> None:
    # A wick far outside the body is a legal candle: the soft extreme_wick rule warns.
    frame = candles()
    frame.loc[9, "high"] = max(frame.loc[9, "open"], frame.loc[9, "close"]) * 1.19
    assert check_candles(frame, "1m").ok


def test_millisecond_jitter_on_timestamps_is_off_grid() -> None:
    frame = candles()
    frame["open_time"] = T0 + np.arange(20, dtype=np.int64) * MIN + 3  # 60000*k + 3
    check = check_candles(frame, "1m")
    assert check.counts == {"on_grid": 20}
    assert check.failures["value"].iloc[0] == T0 + 3


def test_nan_volume_is_flagged_once() -> None:
    frame = candles()
    frame.loc[6, "volume"] = np.nan
    check = check_candles(frame, "1m")
    assert failing(frame) == [(6, "volume_not_nan", "volume")]
    assert np.isnan(check.failures["value"].iloc[0])


def test_a_duplicated_candle_with_different_values_flags_both_rows() -> None:
    frame = candles()
    dup = frame.iloc[[8]].copy()
    dup["close"] *= 1.002
    dup["high"] = dup[["open", "close"]].max(axis=1) * 1.001
    frame = pd.concat([frame.iloc[:9], dup, frame.iloc[9:]], ignore_index=True)
    check = check_candles(frame, "1m")
    assert failing(frame) == [(8, "unique_open_time", "open_time"),
                              (9, "unique_open_time", "open_time")]
    assert check.failures["open_time"].tolist() == [T0 + 8 * MIN] * 2
    assert list(check.failed_rows) == [8, 9]


def test_failures_point_at_positions_of_a_filtered_frame() -> None:
    frame = candles(30)
    frame.loc[25, "low"] = -5.0
    page = frame[frame["open_time"] >= T0 + 20 * MIN]  # index 20..29, as backfill slices
    check = check_candles(page, "1m")
    assert list(check.failed_rows) == [5]
    assert check.failures["open_time"].iloc[0] == T0 + 25 * MIN


def test_structure_problems_are_reported_not_raised() -> None:
    frame = candles().drop(columns=["volume"]).astype({"open": "float32"})
    check = check_candles(frame, "1m")
    assert not check.ok and check.structural
    assert {"column_present", "dtype"} <= set(check.counts)
    assert list(check.failed_rows) == []
    assert check_candles(frame.iloc[:0], "1m").structural


def test_weekly_grid_is_monday_aligned_and_monthly_grid_is_calendar_months() -> None:
    mondays = T0 + np.arange(10, dtype=np.int64) * 7 * 86_400_000
    assert check_candles(candles(10, start=T0, step=7 * 86_400_000), "1w").ok
    thursdays = mondays - 4 * 86_400_000  # the epoch's weekday: on a naive 7-day grid
    assert check_candles(candles(10, start=int(thursdays[0]), step=7 * 86_400_000),
                         "1w").counts == {"on_grid": 10}
    months = [int(datetime(2023, m, 1, tzinfo=UTC).timestamp() * 1000) for m in range(1, 13)]
    frame = candles(12)
    frame["open_time"] = np.array(months, dtype=np.int64)
    assert check_candles(frame, "1M").ok
    frame.loc[3, "open_time"] += 86_400_000  # the 2nd of April
    assert failing(frame, "1M") == [(3, "on_grid", "open_time")]


@pytest.mark.parametrize("timeframe", ["1m", "15m", "4h", "1d", "3d", "1w", "1M", "3M"])
def test_grid_offset_agrees_with_timeframes_floor(timeframe: str) -> None:
    rng = np.random.default_rng(0)
    times = rng.integers(T0 - 400 * 86_400_000, T0 + 400 * 86_400_000, 300, dtype=np.int64)
    expected = [int(t) - timeframes.floor(int(t), timeframe) for t in times]
    assert grid_offset(times, timeframe).tolist() == expected


def test_schema_is_built_once_per_timeframe() -> None:
    assert candle_schema("5m") is candle_schema("5m")
    assert candle_schema("5m") is not candle_schema("1h")


def test_assert_candles_raises_with_the_counts() -> None:
    frame = candles()
    frame.loc[2, "high"] = 1.0
    with pytest.raises(ContractError, match=r"1 of 20 rows fail: high_ge_body 1") as err:
        assert_candles(frame, "1m")
    assert err.value.check.counts == {"high_ge_body": 1}
    assert assert_candles(candles(), "1m") is not None


def predictions(n: int = 4) -> pd.DataFrame:
    return pd.DataFrame({
        "open_time": T0 + np.arange(n, dtype=np.int64) * MIN,
        "symbol": ["BTC/USDT"] * n,
        "probability": np.linspace(0.0, 1.0, n),
        "model_version": ["7"] * n,
    })


def test_predictions_contract() -> None:
    assert check_predictions(predictions()).ok
    frame = predictions()
    frame.loc[1, "probability"] = 1.2
    frame.loc[2, "probability"] = np.nan
    frame.loc[3, "open_time"] = frame.loc[0, "open_time"]
    check = check_predictions(frame)
    assert check.counts == {"probability_in_range": 1, "probability_not_nan": 1,
                            "unique_symbol_open_time": 2}
    assert check.failures["symbol"].tolist() == ["BTC/USDT"] * 4
    # The same open time for another symbol is fine.
    other = predictions()
    other.loc[3, ["open_time", "symbol"]] = [frame.loc[0, "open_time"], "ETH/USDT"]
    assert check_predictions(other).ok


def test_assert_predictions_widens_float32_and_refuses_bad_frames() -> None:
    frame = predictions().astype({"probability": np.float32})
    assert assert_predictions(frame)["probability"].dtype == np.float64
    with pytest.raises(ContractError, match="column_present"):
        assert_predictions(frame.drop(columns=["model_version"]))


def test_times_outside_2009_to_2100_are_implausible() -> None:
    frame = candles(3)
    frame["open_time"] = np.array([0, 1_230_940_800_000, 4_102_444_800_000], dtype=np.int64)
    check = check_candles(frame, "1m")
    assert check.counts["plausible_time"] == 2
    assert check.failures.loc[check.failures["rule"] == "plausible_time", "row"].tolist() == [0, 2]


@pytest.mark.parametrize(("step", "timeframe", "label"), [
    (MIN, "1m", "1m"), (5 * MIN, "5m", "5m"), (60 * MIN, "1h", "1h"),
    (1440 * MIN, "1d", "1d"), (7 * 1440 * MIN, "1w", "1w"), (90_000, "1m", "90s"),
])
def test_spacing_names_the_dominant_step(step: int, timeframe: str, label: str) -> None:
    from tradeflow.contracts.rules import spacing, spacing_agrees

    found = spacing(T0 + np.arange(50, dtype=np.int64) * step)
    assert found.label == label and found.dominant_share == 1.0
    assert spacing_agrees(found, timeframe) == (label == timeframe)


def test_months_of_28_to_31_days_are_one_monthly_step() -> None:
    from tradeflow.contracts.rules import spacing, spacing_agrees

    months = np.array([datetime(2024, m, 1, tzinfo=UTC).timestamp() * 1000
                       for m in range(1, 13)], dtype=np.int64)
    found = spacing(months)
    assert found.label == "1M" and found.dominant_share == 1.0
    assert spacing_agrees(found, "1M") and not spacing_agrees(found, "1w")
    assert spacing_agrees(spacing(months[::3]), "3M")
    assert spacing(months[:1]) is None and spacing_agrees(None, "1m")


def test_gaps_and_a_finer_file_are_told_apart() -> None:
    from tradeflow.contracts.rules import spacing, spacing_agrees

    steps = np.r_[np.full(10, MIN), np.full(40, 3 * MIN)]  # an illiquid 1m series
    illiquid = spacing(T0 + np.concatenate(([0], np.cumsum(steps))))
    assert illiquid.label == "3m" and spacing_agrees(illiquid, "1m")
    one_minute = spacing(T0 + np.arange(64, dtype=np.int64) * MIN)
    assert not spacing_agrees(one_minute, "8m")  # a 1m file under an 8m name
