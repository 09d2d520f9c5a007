"""FeaturePipeline: declarations, errors, column names, warm-up, truncated-history equality."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from models.features import FeaturePipeline, available_features
from tests.unit.models.test_features_support import MINUTE_MS, T0, random_walk_candles, with_gap
from tradeflow.strategy import FeatureSpec, load_strategy

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "strategies" / "momentum_xgb.yaml"

EXAMPLE_COLUMNS = (
    "ret_1", "ret_3", "ret_5", "ret_15", "ret_60", "rsi_14",
    "macd_12_26_9", "macd_signal_12_26_9", "macd_hist_12_26_9",
    "bb_pctb_20_2", "bb_width_20_2", "atr_14", "vol_15", "vol_60", "volz_60",
    "vwap_dist_60", "vwap_dist_session", "body", "upper_wick", "lower_wick", "hl_range",
    "tod_sin", "tod_cos", "dow_sin", "dow_cos", "htf_1h_ret_1", "htf_1h_ret_4",
)

# One case per family (and the higher timeframe over every family it accepts). `exact` says the
# truncated run must match bit for bit; recursive indicators match to rounding of the seed.
FAMILY_CASES: list[tuple[dict[str, Any], bool]] = [
    ({"name": "returns", "horizons": [1, 3, 60]}, True),
    ({"name": "rsi", "period": 14}, False),
    ({"name": "rsi", "period": 3}, False),
    ({"name": "macd"}, False),
    ({"name": "bollinger", "period": 20, "stds": 2.5}, True),
    ({"name": "atr", "period": 14}, False),
    ({"name": "volatility", "windows": [15, 60]}, True),
    ({"name": "volume_zscore", "window": 60}, True),
    ({"name": "vwap_distance", "window": 60}, True),
    ({"name": "candle_shape"}, True),
    ({"name": "time_of_day"}, True),
    ({"name": "higher_timeframe", "timeframe": "15m",
      "features": ["returns", "bollinger", "volatility", "volume_zscore", "candle_shape",
                   {"name": "vwap_distance", "window": 4}]}, True),
    ({"name": "higher_timeframe", "timeframe": "1h",
      "features": ["returns", "rsi", "macd", "atr", "bollinger"]}, False),
]


def test_example_strategy_columns_and_pickling() -> None:
    pipe = FeaturePipeline.from_strategy(load_strategy(EXAMPLE))
    assert pipe.columns == EXAMPLE_COLUMNS
    clone = pickle.loads(pickle.dumps(pipe))
    assert clone == pipe and clone.warmup == pipe.warmup and clone.columns == pipe.columns
    candles = random_walk_candles(pipe.warmup + 500, seed=2)
    a, b = pipe.compute(candles), clone.compute(candles)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == list(EXAMPLE_COLUMNS)
    assert (a.dtypes == np.float64).all()
    assert a.index.equals(candles.index)
    assert np.isfinite(a.iloc[pipe.warmup:].to_numpy()).all()


def test_specs_accept_feature_specs_dicts_and_names() -> None:
    a = FeaturePipeline.from_specs([FeatureSpec.model_validate({"name": "rsi", "period": 7})])
    b = FeaturePipeline.from_specs([{"name": "rsi", "params": {"period": 7}}])
    c = FeaturePipeline.from_specs([{"name": "rsi", "period": 7}])
    assert a == b == c
    assert FeaturePipeline.from_specs(["rsi"]).columns == ("rsi_14",)
    assert a.specs() == [{"name": "rsi", "period": 7}]


def test_available_features_lists_every_family_with_defaults() -> None:
    info = available_features()
    assert set(info) == {
        "returns", "rsi", "macd", "bollinger", "atr", "volatility", "volume_zscore",
        "vwap_distance", "candle_shape", "time_of_day", "higher_timeframe",
        "trade_vwap", "taker_flow", "trade_intensity", "book_imbalance", "book_spread",
    }
    assert info["rsi"]["params"]["period"] == {"allowed": "an integer >= 2", "default": 14}
    assert info["higher_timeframe"]["params"]["timeframe"]["default"] is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"name": "rsx"},
         r"unknown feature 'rsx'; allowed: atr, bollinger, book_imbalance, book_spread, candle_"),
        ({"name": "rsi", "perod": 14}, r"'rsi': unknown parameter 'perod'; allowed: period"),
        ({"name": "candle_shape", "x": 1}, r"'candle_shape': unknown parameter 'x'; allowed: no"),
        ({"name": "rsi", "period": 1}, r"'rsi': parameter 'period' must be an integer >= 2; got 1"),
        ({"name": "rsi", "period": "14"}, r"'rsi': parameter 'period' must be an integer"),
        ({"name": "rsi", "period": 14.0}, r"'rsi': parameter 'period' must be an integer"),
        ({"name": "rsi", "period": True}, r"'rsi': parameter 'period' must be an integer"),
        ({"name": "returns", "horizons": []}, r"'returns': parameter 'horizons' must be a non-emp"),
        ({"name": "returns", "horizons": [1, 1]}, r"'horizons' must be a non-empty list of dist"),
        ({"name": "returns", "horizons": [0, 5]}, r"'horizons' must be .* integers >= 1; got"),
        ({"name": "bollinger", "stds": 0}, r"'bollinger': parameter 'stds' must be a number > 0"),
        ({"name": "bollinger", "stds": float("nan")}, r"parameter 'stds' must be a number > 0"),
        ({"name": "macd", "fast": 26, "slow": 12}, r"'macd': parameter 'fast' must be < slow"),
        ({"name": "vwap_distance", "session": "yes"}, r"'session' must be true or false"),
        ({"name": "higher_timeframe", "features": ["rsi"]},
         r"'higher_timeframe': parameter 'timeframe' is required"),
        ({"name": "higher_timeframe", "timeframe": "1x", "features": ["rsi"]},
         r"parameter 'timeframe' must be a timeframe such as 1h; got '1x'"),
        ({"name": "higher_timeframe", "timeframe": "90s", "features": ["rsi"]},
         r"parameter 'timeframe' must be a whole multiple of the base timeframe 1m"),
        ({"name": "higher_timeframe", "timeframe": "1h", "features": []},
         r"parameter 'features' must be a non-empty list"),
        ({"name": "higher_timeframe", "timeframe": "1h", "features": ["time_of_day"]},
         r"'features' cannot include 'time_of_day'"),
        ({"name": "higher_timeframe", "timeframe": "1h", "features": ["rsx"]},
         r"'higher_timeframe' \(1h\): unknown feature 'rsx'"),
        ({"name": "higher_timeframe", "timeframe": "1h",
          "features": [{"name": "rsi", "period": 0}]},
         r"'higher_timeframe' \(1h\): feature 'rsi': parameter 'period' must be"),
        ({"name": "higher_timeframe", "timeframe": "1h", "features": ["rsi", "rsi"]},
         r"'features' repeats a column"),
    ],
)
def test_bad_declarations_name_feature_parameter_and_allowed(
    spec: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        FeaturePipeline.from_specs([spec], "1m")


def test_pipeline_level_errors() -> None:
    with pytest.raises(ValueError, match="'rsi_14' is declared twice"):
        FeaturePipeline.from_specs(["rsi", {"name": "rsi", "period": 14}])
    with pytest.raises(ValueError, match="'session' needs a timeframe shorter than 1d"):
        FeaturePipeline.from_specs(["vwap_distance"], "1d")
    with pytest.raises(ValueError, match="at least one feature"):
        FeaturePipeline.from_specs([])
    with pytest.raises(ValueError, match="timeframe"):
        FeaturePipeline.from_specs(["rsi"], "one minute")
    with pytest.raises(ValueError, match="seed_weight"):
        FeaturePipeline.from_specs(["rsi"], seed_weight=0.0)
    # The same declaration is valid on a finer base timeframe.
    assert FeaturePipeline.from_specs(["vwap_distance"], "4h").warmup == 59


def test_bad_candles_are_rejected() -> None:
    pipe = FeaturePipeline.from_specs(["rsi"])
    good = random_walk_candles(100)
    with pytest.raises(ValueError, match=r"lack column\(s\) \['volume'\]"):
        pipe.compute(good.drop(columns="volume"))
    bad = good.copy()
    bad.loc[50, "close"] = np.nan
    with pytest.raises(ValueError, match="'close' has non-finite values"):
        pipe.compute(bad)
    with pytest.raises(ValueError, match="strictly ascending"):
        pipe.compute(good.iloc[::-1])
    with pytest.raises(ValueError, match="not on the 5m grid"):
        FeaturePipeline.from_specs(["rsi"], "5m").compute(good)


def test_warmup_is_the_first_valid_row_of_windowed_features() -> None:
    candles = random_walk_candles(3_000, start_ms=T0 + 7 * MINUTE_MS)
    cases: list[tuple[dict[str, Any], int]] = [
        ({"name": "returns", "horizons": [1, 60]}, 60),
        ({"name": "bollinger", "period": 20}, 19),
        ({"name": "volatility", "windows": [15]}, 15),
        ({"name": "volume_zscore", "window": 30}, 29),
        ({"name": "vwap_distance", "window": 60, "session": False}, 59),
        ({"name": "candle_shape"}, 0),
    ]
    for spec, first in cases:
        pipe = FeaturePipeline.from_specs([spec])
        out = pipe.compute(candles).to_numpy()
        assert pipe.warmup == first, spec
        assert np.isfinite(out[first:]).all(), spec
        if first:
            assert np.isnan(out[first - 1]).any(), spec
    # Session VWAP: a frame entering a day mid-way knows nothing until the next 00:00 UTC.
    session = FeaturePipeline.from_specs([{"name": "vwap_distance", "window": 5}])
    assert session.warmup == 1439
    out = session.compute(candles)["vwap_dist_session"].to_numpy()
    assert np.isnan(out[: 1440 - 7]).all() and np.isfinite(out[1440 - 7:]).all()


def test_recursive_warmup_grows_as_seed_weight_shrinks() -> None:
    loose = FeaturePipeline.from_specs(["rsi"], seed_weight=1e-6).warmup
    tight = FeaturePipeline.from_specs(["rsi"], seed_weight=1e-12).warmup
    assert 14 < loose < tight
    htf = FeaturePipeline.from_specs(
        [{"name": "higher_timeframe", "timeframe": "1h", "features": ["rsi"]}], seed_weight=1e-6
    )
    assert htf.warmup == (loose + 2) * 60 - 1


@pytest.mark.parametrize(("spec", "exact"), FAMILY_CASES, ids=lambda v: str(v)[:60])
def test_truncated_history_gives_the_same_rows_as_full_history(
    spec: dict[str, Any], exact: bool
) -> None:
    pipe = FeaturePipeline.from_specs([spec])
    k = 200
    # Start at 00:07 and cut at odd offsets: windows start inside hours and days.
    candles = random_walk_candles(pipe.warmup + k + 1_500, seed=9,
                                  start_ms=T0 + 7 * MINUTE_MS)
    full = pipe.compute(candles).to_numpy()
    assert np.isfinite(full[pipe.warmup:]).all()
    for extra in (0, 1, 13, 59, 61, 1_439):
        n = pipe.warmup + k + extra
        part = pipe.compute(candles.iloc[-n:]).to_numpy()
        tail_part, tail_full = part[pipe.warmup:], full[-(n - pipe.warmup):]
        assert np.isfinite(tail_part).all()
        if exact:
            np.testing.assert_array_equal(tail_part, tail_full)
        else:
            np.testing.assert_allclose(tail_part, tail_full, rtol=1e-9, atol=1e-12)


def test_gaps_in_the_data_keep_truncated_equality() -> None:
    pipe = FeaturePipeline.from_specs(
        ["returns", "vwap_distance",
         {"name": "higher_timeframe", "timeframe": "1h", "features": ["returns", "bollinger"]}]
    )
    raw = random_walk_candles(pipe.warmup + 6_000, seed=4)
    # A 2.5 hour outage from 00:05 on a day inside the compared rows: that day and its hours
    # lose candles at their start.
    start = (len(raw) - 3_000) // 1_440 * 1_440 + 5
    candles = with_gap(raw, start, 150)
    full = pipe.compute(candles).to_numpy()
    for n in (pipe.warmup + 4_000, pipe.warmup + 4_500):
        assert len(candles) - n + pipe.warmup < start
        part = pipe.compute(candles.iloc[-n:]).to_numpy()
        np.testing.assert_array_equal(part[pipe.warmup:], full[-(n - pipe.warmup):])
