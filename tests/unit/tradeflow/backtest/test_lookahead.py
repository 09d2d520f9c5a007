"""The look-ahead checker catches planted leaks and passes every registered feature."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from models.families import compute_feature, resolve
from models.features import FeaturePipeline, available_features, bars_from_frame
from models.higher_timeframe import resample
from models.order_flow_features import ORDER_FLOW_FAMILIES
from tests.unit.models.test_features_support import MINUTE_MS, T0, random_walk_candles, with_gap
from tradeflow import timeframes
from tradeflow.backtest.lookahead import check_lookahead, sample_points

# Every family, the higher timeframe over every family it accepts.
ALL_FEATURES: list[str | dict[str, Any]] = [
    {"name": "returns", "horizons": [1, 5, 60]},
    "rsi",
    "macd",
    "bollinger",
    "atr",
    {"name": "volatility", "windows": [15, 60]},
    "volume_zscore",
    "vwap_distance",
    "candle_shape",
    "time_of_day",
    {"name": "higher_timeframe", "timeframe": "15m",
     "features": ["returns", "rsi", "macd", "bollinger", "atr", "volatility", "volume_zscore",
                  "vwap_distance", "candle_shape"]},
]


@pytest.fixture(scope="module")
def pipe() -> FeaturePipeline:
    return FeaturePipeline.from_specs(ALL_FEATURES, seed_weight=1e-9)


@pytest.fixture(scope="module")
def candles(pipe: FeaturePipeline) -> pd.DataFrame:
    # Starts at 00:07 and has an outage: sessions and 15m buckets begin mid-way.
    raw = random_walk_candles(pipe.warmup + 3_000, seed=13, start_ms=T0 + 7 * MINUTE_MS)
    return with_gap(raw, pipe.warmup + 500, 45)


def test_every_registered_feature_passes(pipe: FeaturePipeline, candles: pd.DataFrame) -> None:
    families = {s if isinstance(s, str) else s["name"] for s in ALL_FEATURES}
    # The order-flow families need trades and books beside the candles: the same checker runs
    # on them in tests/unit/models/test_order_flow_features.py.
    order_flow = {f.name for f in ORDER_FLOW_FAMILIES}
    assert families | order_flow == set(available_features())
    result = check_lookahead(candles, pipe.compute, samples=20)
    assert result.ok, result.report()
    assert len(result.checked_rows) == 20 and result.columns == pipe.columns
    assert result.report().startswith("no look-ahead")


def test_serving_window_of_warmup_rows_matches_training(
    pipe: FeaturePipeline, candles: pd.DataFrame
) -> None:
    result = check_lookahead(candles, pipe.compute, samples=8, window=pipe.warmup + 1,
                             rtol=1e-8, atol=1e-10)
    assert result.ok, result.report()
    # A window shorter than the warm-up is caught too: recursive values have not converged
    # and the session VWAP does not know where its day began; 100 rows suffice for returns.
    short = check_lookahead(candles, pipe.compute, samples=8, window=100)
    assert not short.ok
    assert {"rsi_14", "macd_12_26_9", "atr_14", "vwap_dist_session"} <= set(short.biased_columns)
    assert not {"ret_60", "bb_pctb_20_2", "vol_60", "body"} & set(short.biased_columns)


def next_close(c: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"next_ret": np.log(c["close"].shift(-1) / c["close"])}, index=c.index)


def centred_mean(c: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"centred": c["close"].rolling(5, center=True).mean()}, index=c.index)


def unshifted_hour(c: pd.DataFrame) -> pd.DataFrame:
    # The 1h return of the hour a row belongs to (not the last CLOSED hour): at 10:37 it uses
    # the 10:59 close, which is in the future.
    bars = bars_from_frame(c, "1m")
    hours = resample(bars, "1h")
    ret = compute_feature(hours, resolve("returns", "1h"))["ret_1"]
    pos = np.searchsorted(hours.open_time, bars.open_time, side="right") - 1
    value = np.full(len(bars), np.nan)
    value[pos >= 0] = ret[pos[pos >= 0]]
    return pd.DataFrame({"hour_ret": value}, index=c.index)


@pytest.mark.parametrize(("leak", "column"), [(next_close, "next_ret"),
                                               (centred_mean, "centred"),
                                               (unshifted_hour, "hour_ret")])
def test_planted_leaks_are_caught(
    pipe: FeaturePipeline,
    candles: pd.DataFrame,
    leak: Callable[[pd.DataFrame], pd.DataFrame],
    column: str,
) -> None:
    def leaky(c: pd.DataFrame) -> pd.DataFrame:
        return pd.concat([pipe.compute(c), leak(c)], axis=1)

    result = check_lookahead(candles, leaky, samples=20, start=pipe.warmup)
    assert not result.ok
    assert result.biased_columns == (column,)
    diff = result.differences[0]
    t = diff.row
    assert diff.open_time == candles["open_time"].iloc[t]
    assert diff.full == pytest.approx(leak(candles)[column].iloc[t])
    assert column in result.report() and timeframes.iso(diff.open_time) in result.report()
    # First differing sample: every earlier sample row agreed.
    assert t == min(r for r in result.checked_rows if r >= t)


def test_a_leaky_model_signal_is_caught_and_a_causal_one_passes(
    pipe: FeaturePipeline, candles: pd.DataFrame
) -> None:
    def causal_signal(c: pd.DataFrame) -> pd.Series:
        f = pipe.compute(c)
        return ((f["rsi_14"] < 30) & (f["htf_15m_ret_1"] > 0)).astype(float).rename("signal")

    def leaky_signal(c: pd.DataFrame) -> pd.Series:
        f = pipe.compute(c)
        # "Predicts" with a feature shifted two rows back in time: tomorrow's value today.
        return (f["ret_1"].shift(-2) > 0).astype(float).rename("signal")

    assert check_lookahead(candles, causal_signal, start=pipe.warmup).ok
    result = check_lookahead(candles, leaky_signal, start=pipe.warmup)
    assert not result.ok and result.biased_columns == ("signal",)
    assert result.differences[0].truncated == 0.0  # NaN > 0 is False in the truncated run


def test_sample_points_are_spread_and_exclude_the_last_row() -> None:
    rows = sample_points(1_000, 20, start=100)
    assert len(rows) == 20 and rows[0] == 100 and rows[-1] == 998
    assert (np.diff(rows) > 0).all()
    assert list(sample_points(5, 20)) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="at least"):
        sample_points(10, 5, start=9)


def test_output_must_keep_one_row_per_candle() -> None:
    candles = random_walk_candles(50)
    with pytest.raises(ValueError, match="one row per candle"):
        check_lookahead(candles, lambda c: c[["close"]].iloc[5:])
