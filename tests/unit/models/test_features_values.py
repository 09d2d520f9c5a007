"""Feature values checked by hand or against an independent pandas computation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest

from models.features import FeaturePipeline
from tests.unit.models.test_features_support import DAY_MS, MINUTE_MS, T0, random_walk_candles
from tradeflow import indicators as ind


def compute(spec: dict[str, Any] | str, candles: pd.DataFrame, tf: str = "1m") -> pd.DataFrame:
    return FeaturePipeline.from_specs([spec], tf).compute(candles)


def frame(rows: Sequence[tuple[float, float, float, float, float]], start: int = T0,
          step: int = MINUTE_MS) -> pd.DataFrame:
    o, h, low, c, v = (np.array(col, dtype=float) for col in zip(*rows, strict=True))
    t = start + step * np.arange(len(rows), dtype=np.int64)
    return pd.DataFrame({"open_time": t, "open": o, "high": h, "low": low, "close": c,
                         "volume": v})


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    return random_walk_candles(3_000, seed=21)


def test_returns_are_log_returns_over_each_horizon(candles: pd.DataFrame) -> None:
    out = compute({"name": "returns", "horizons": [1, 15]}, candles)
    close = candles["close"]
    pd.testing.assert_series_equal(out["ret_15"], np.log(close / close.shift(15)),
                                   check_names=False, rtol=1e-12)
    assert out["ret_1"].iloc[7] == pytest.approx(np.log(close[7] / close[6]), rel=1e-12)


def test_oscillators_are_the_indicators_scaled_by_close(candles: pd.DataFrame) -> None:
    h, low, c = (candles[k].to_numpy() for k in ("high", "low", "close"))
    out = compute({"name": "macd"}, candles)
    line, signal, hist = ind.macd(c)
    np.testing.assert_allclose(out["macd_12_26_9"], line / c, rtol=1e-14)
    np.testing.assert_allclose(out["macd_signal_12_26_9"], signal / c, rtol=1e-14)
    np.testing.assert_allclose(out["macd_hist_12_26_9"], hist / c, rtol=1e-14)
    atr = compute({"name": "atr", "period": 7}, candles)["atr_7"]
    np.testing.assert_allclose(atr, ind.atr(h, low, c, 7) / c, rtol=1e-14)
    rsi = compute("rsi", candles)["rsi_14"]
    np.testing.assert_array_equal(rsi, ind.rsi(c, 14))
    bb = compute({"name": "bollinger", "period": 20, "stds": 2.5}, candles)
    upper, mid, lower = ind.bbands(c, 20, 2.5)
    np.testing.assert_allclose(bb["bb_pctb_20_2p5"], (c - lower) / (upper - lower), rtol=1e-12)
    np.testing.assert_allclose(bb["bb_width_20_2p5"], (upper - lower) / mid, rtol=1e-12)


def test_bollinger_pctb_of_a_flat_window_is_one_half() -> None:
    flat = frame([(5.0, 5.0, 5.0, 5.0, 1.0)] * 25)
    out = compute({"name": "bollinger", "period": 20}, flat)
    assert out["bb_pctb_20_2"].iloc[19:].eq(0.5).all()
    assert out["bb_width_20_2"].iloc[19:].eq(0.0).all()
    # Here the summed mean is off by an ulp, so the std is rounding noise (~1e-17), not 0.
    v = 0.123456789
    noisy = compute({"name": "bollinger", "period": 20}, frame([(v, v, v, v, 1.0)] * 25))
    assert noisy["bb_pctb_20_2"].iloc[19:].eq(0.5).all()
    assert noisy["bb_width_20_2"].iloc[19:].abs().max() < 1e-12


def test_volatility_is_the_sample_std_of_log_returns(candles: pd.DataFrame) -> None:
    out = compute({"name": "volatility", "windows": [15, 60]}, candles)
    r = np.log(candles["close"]).diff()
    for w in (15, 60):
        expected = r.rolling(w).std(ddof=1)
        np.testing.assert_allclose(out[f"vol_{w}"], expected, rtol=1e-9)


def test_volume_zscore_by_hand_and_flat_volume() -> None:
    vols = [1.0, 2.0, 3.0, 10.0]
    out = compute({"name": "volume_zscore", "window": 4},
                  frame([(1.0, 1.0, 1.0, 1.0, v) for v in vols]))
    mean, std = np.mean(vols), np.std(vols)
    assert out["volz_4"].iloc[3] == pytest.approx((10.0 - mean) / std, rel=1e-12)
    assert out["volz_4"].iloc[:3].isna().all()
    flat = compute({"name": "volume_zscore", "window": 3},
                   frame([(1.0, 1.0, 1.0, 1.0, 0.1)] * 6))
    assert flat["volz_3"].iloc[2:].eq(0.0).all()


def test_vwap_distances_by_hand() -> None:
    # Three candles before midnight, three after; typical price = (h + l + c) / 3.
    rows = [(10, 12, 9, 11, 2.0), (11, 13, 10, 12, 1.0), (12, 12, 9, 9, 3.0),
            (9, 10, 8, 10, 4.0), (10, 14, 10, 14, 1.0), (14, 15, 13, 13, 0.0)]
    candles = frame(rows, start=T0 + DAY_MS - 3 * MINUTE_MS)
    out = compute({"name": "vwap_distance", "window": 2}, candles)
    tp = [(h + lo + c) / 3 for _, h, lo, c, _ in rows]
    vol = [r[4] for r in rows]
    close = [r[3] for r in rows]
    vwap2 = (tp[1] * vol[1] + tp[2] * vol[2]) / (vol[1] + vol[2])
    assert out["vwap_dist_2"].iloc[2] == pytest.approx(close[2] / vwap2 - 1, rel=1e-12)
    # The day the frame entered at 23:57 is unknown; the next one starts fresh at 00:00.
    assert out["vwap_dist_session"].iloc[:3].isna().all()
    assert out["vwap_dist_session"].iloc[3] == pytest.approx(close[3] / tp[3] - 1, rel=1e-12)
    session = (tp[3] * vol[3] + tp[4] * vol[4]) / (vol[3] + vol[4])
    assert out["vwap_dist_session"].iloc[4] == pytest.approx(close[4] / session - 1, rel=1e-12)
    assert out["vwap_dist_session"].iloc[5] == pytest.approx(close[5] / session - 1, rel=1e-12)
    # No volume at all in the window: the VWAP is undefined and the distance is 0.
    quiet = frame([(1.0, 2.0, 0.5, 1.5, 0.0)] * 3, start=T0)
    out = compute({"name": "vwap_distance", "window": 2}, quiet)
    assert out["vwap_dist_2"].tolist()[1:] == [0.0, 0.0]
    assert out["vwap_dist_session"].tolist() == [0.0, 0.0, 0.0]


def test_candle_shape_by_hand() -> None:
    out = compute("candle_shape", frame([(10, 12, 9, 11, 1.0), (11, 11.5, 8, 9, 1.0),
                                         (7, 7, 7, 7, 1.0)]))
    assert out.iloc[0].tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3, 3 / 11])
    assert out.iloc[1].tolist() == pytest.approx([-2 / 3.5, 0.5 / 3.5, 1 / 3.5, 3.5 / 9])
    assert out.iloc[2].tolist() == [0.0, 0.0, 0.0, 0.0]  # no range: nothing to divide


def test_time_of_day_and_week_by_hand() -> None:
    # 2023-11-14 (T0) is a Tuesday. Rows: Tue 06:00, Thu 12:00, Mon 00:00.
    stamps = [T0 + DAY_MS // 4, T0 + 2 * DAY_MS + DAY_MS // 2, T0 + 6 * DAY_MS]
    candles = frame([(1.0, 1.0, 1.0, 1.0, 1.0)] * 3)
    candles["open_time"] = np.array(stamps, dtype=np.int64)
    out = compute("time_of_day", candles)
    assert out[["tod_sin", "tod_cos"]].iloc[0].tolist() == pytest.approx([1.0, 0.0], abs=1e-12)
    assert out[["tod_sin", "tod_cos"]].iloc[2].tolist() == pytest.approx([0.0, 1.0], abs=1e-12)
    # Thursday noon is half way through the week (3.5 of 7 days): angle pi.
    assert out[["dow_sin", "dow_cos"]].iloc[1].tolist() == pytest.approx([0.0, -1.0], abs=1e-12)
    assert out[["dow_sin", "dow_cos"]].iloc[2].tolist() == pytest.approx([0.0, 1.0], abs=1e-12)
    tue = 2 * np.pi * (1 + 0.25) / 7
    assert out["dow_sin"].iloc[0] == pytest.approx(np.sin(tue), abs=1e-12)
    no_week = compute({"name": "time_of_day", "day_of_week": False}, candles)
    assert list(no_week.columns) == ["tod_sin", "tod_cos"]
