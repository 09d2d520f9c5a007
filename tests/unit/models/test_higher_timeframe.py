"""Higher-timeframe context: resampling and alignment to the last CLOSED higher candle."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from models.features import FeaturePipeline, bars_from_frame
from models.higher_timeframe import floor_times, next_open_times, resample
from tests.unit.models.test_features_support import MINUTE_MS
from tradeflow import timeframes


def ms(text: str) -> int:
    """UTC milliseconds of 'YYYY-mm-dd HH:MM'."""
    dt = datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def hourly_staircase(start: str, end: str) -> pd.DataFrame:
    """1m candles whose values identify their hour: close = 100 + 10 * hour + minute / 100."""
    times = np.arange(ms(start), ms(end) + 1, MINUTE_MS, dtype=np.int64)
    hour = (times // 3_600_000) % 24
    minute = (times // MINUTE_MS) % 60
    close = 100.0 + 10.0 * hour + minute / 100.0
    return pd.DataFrame({
        "open_time": times,
        "open": close - 0.005,
        "high": close + 0.5 + hour,  # the hour's max high is its last minute's
        "low": close - 1.0,
        "close": close,
        "volume": 1.0 + minute,
    })


def close_of_hour(h: int) -> float:
    return 100.0 + 10.0 * h + 0.59


def at(frame: pd.DataFrame, candles: pd.DataFrame, when: str) -> pd.Series:
    row = int(np.flatnonzero(candles["open_time"].to_numpy() == ms(when))[0])
    return frame.iloc[row]


def test_rows_see_the_last_closed_hour_only() -> None:
    candles = hourly_staircase("2024-03-05 07:00", "2024-03-05 12:30")
    pipe = FeaturePipeline.from_specs(
        [{"name": "higher_timeframe", "timeframe": "1h", "features": ["returns", "candle_shape"]}]
    )
    out = pipe.compute(candles)
    ret_09 = np.log(close_of_hour(9) / close_of_hour(8))
    ret_10 = np.log(close_of_hour(10) / close_of_hour(9))
    # 10:37 and 10:59: the 09:00-10:00 candle (closed at 10:00); 11:00: the 10:00-11:00 one.
    assert at(out, candles, "2024-03-05 10:37")["htf_1h_ret_1"] == pytest.approx(ret_09, abs=1e-15)
    assert at(out, candles, "2024-03-05 10:59")["htf_1h_ret_1"] == pytest.approx(ret_09, abs=1e-15)
    assert at(out, candles, "2024-03-05 11:00")["htf_1h_ret_1"] == pytest.approx(ret_10, abs=1e-15)
    assert at(out, candles, "2024-03-05 10:00")["htf_1h_ret_1"] == pytest.approx(ret_09, abs=1e-15)
    assert at(out, candles, "2024-03-05 09:59")["htf_1h_ret_1"] != pytest.approx(ret_09)
    # The 09:00 candle's range: max high (09:59) minus min low (09:00) over its close.
    hi, lo = close_of_hour(9) + 0.5 + 9, 100.0 + 90.0 - 1.0
    row = at(out, candles, "2024-03-05 10:37")
    assert row["htf_1h_hl_range"] == pytest.approx((hi - lo) / close_of_hour(9), rel=1e-12)
    # Rows in the first hour have no closed hour yet; returns need two closed hours.
    first_hour = out.iloc[:60]
    assert first_hour.isna().all().all()
    assert out["htf_1h_ret_1"].iloc[60:120].isna().all()
    assert out["htf_1h_hl_range"].iloc[60:120].notna().all()


def test_a_partial_first_hour_is_never_used() -> None:
    candles = hourly_staircase("2024-03-05 08:30", "2024-03-05 11:00")
    out = FeaturePipeline.from_specs(
        [{"name": "higher_timeframe", "timeframe": "1h", "features": ["candle_shape"]}]
    ).compute(candles)
    # 08:00-09:00 lacks 08:00-08:29 here: its range would be wrong, so 09:xx rows get NaN.
    assert out["htf_1h_hl_range"].iloc[: 30 + 60].isna().all()
    assert at(out, candles, "2024-03-05 10:00").notna().all()


def test_resample_aggregates_open_high_low_close_volume() -> None:
    candles = hourly_staircase("2024-03-05 07:00", "2024-03-05 09:59")
    hours = resample(bars_from_frame(candles, "1m"), "1h")
    assert list(hours.open_time) == [ms(f"2024-03-05 0{h}:00") for h in (7, 8, 9)]
    grouped = candles.groupby(candles["open_time"] // 3_600_000)
    np.testing.assert_array_equal(hours.open, grouped["open"].first())
    np.testing.assert_array_equal(hours.high, grouped["high"].max())
    np.testing.assert_array_equal(hours.low, grouped["low"].min())
    np.testing.assert_array_equal(hours.close, grouped["close"].last())
    np.testing.assert_allclose(hours.volume, grouped["volume"].sum(), rtol=1e-15)


def test_missing_hour_falls_back_to_the_last_closed_one() -> None:
    candles = hourly_staircase("2024-03-05 07:00", "2024-03-05 12:30")
    times = candles["open_time"]
    gap = candles[(times < ms("2024-03-05 09:00")) | (times >= ms("2024-03-05 10:00"))]
    out = FeaturePipeline.from_specs(
        [{"name": "higher_timeframe", "timeframe": "1h", "features": ["returns"]}]
    ).compute(gap.reset_index(drop=True))
    # No 09:00 candle exists: at 10:37 the last closed hour is 08:00-09:00 (ret vs 07:00).
    expected = np.log(close_of_hour(8) / close_of_hour(7))
    row = at(out, gap.reset_index(drop=True), "2024-03-05 10:37")
    assert row["htf_1h_ret_1"] == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize("tf", ["1m", "5m", "1h", "4h", "1d", "1w", "1M", "3M"])
def test_vectorised_floor_and_next_open_match_timeframes(tf: str) -> None:
    rng = np.random.default_rng(1)
    stamps = rng.integers(ms("2019-01-01 00:00"), ms("2026-12-31 23:59"), 300)
    floors = floor_times(stamps, tf)
    assert list(floors) == [timeframes.floor(int(t), tf) for t in stamps]
    assert list(next_open_times(floors, tf)) == [timeframes.next_open(int(t), tf) for t in floors]


def test_weekly_and_monthly_context_from_daily_candles() -> None:
    days = pd.date_range("2024-01-01", "2024-06-30", freq="D", tz="UTC")
    n = len(days)
    close = 100.0 + np.arange(n, dtype=float)
    candles = pd.DataFrame({
        "open_time": (days.as_unit("ms").asi8).astype(np.int64),
        "open": close, "high": close + 1, "low": close - 1, "close": close,
        "volume": np.ones(n),
    })
    pipe = FeaturePipeline.from_specs(
        [{"name": "higher_timeframe", "timeframe": "1M", "features": ["returns"]},
         {"name": "higher_timeframe", "timeframe": "1w", "features": ["returns"]}], "1d"
    )
    out = pipe.compute(candles)
    # On 2024-03-15 the last closed month is February: log(close Feb 29 / close Jan 31).
    row = int(np.flatnonzero(days == pd.Timestamp("2024-03-15", tz="UTC"))[0])
    feb, jan = (int(np.flatnonzero(days == pd.Timestamp(d, tz="UTC"))[0])
                for d in ("2024-02-29", "2024-01-31"))
    assert out["htf_1M_ret_1"].iloc[row] == pytest.approx(np.log(close[feb] / close[jan]))
    # 2024-03-15 is a Friday: the last closed week ended Sunday 2024-03-10.
    sun, prev_sun = (int(np.flatnonzero(days == pd.Timestamp(d, tz="UTC"))[0])
                     for d in ("2024-03-10", "2024-03-03"))
    assert out["htf_1w_ret_1"].iloc[row] == pytest.approx(np.log(close[sun] / close[prev_sun]))
