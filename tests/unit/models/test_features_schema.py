"""The pandera contract of a feature frame: names, float64, finite after warm-up."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.errors as pa_errors
import pytest

from models.features import FeaturePipeline, feature_schema, validate_features
from tests.unit.models.test_features_support import random_walk_candles


@pytest.fixture(scope="module")
def pipe() -> FeaturePipeline:
    return FeaturePipeline.from_specs(["returns", "rsi", "bollinger", "candle_shape"])


@pytest.fixture
def features(pipe: FeaturePipeline) -> pd.DataFrame:
    return pipe.compute(random_walk_candles(pipe.warmup + 300, seed=8))


def test_computed_frame_passes_with_nan_only_in_warmup(
    pipe: FeaturePipeline, features: pd.DataFrame
) -> None:
    assert features.iloc[: pipe.warmup].isna().any().any()
    assert pipe.validate(features) is features
    pipe.schema().validate(features.iloc[pipe.warmup:])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_after_warmup_is_rejected(
    pipe: FeaturePipeline, features: pd.DataFrame, bad: float
) -> None:
    broken = features.copy()
    broken.loc[broken.index[pipe.warmup + 5], "rsi_14"] = bad
    with pytest.raises(pa_errors.SchemaErrors, match="rsi_14"):
        pipe.validate(broken)
    # The same value inside the warm-up is allowed.
    early = features.copy()
    early.loc[early.index[0], "rsi_14"] = bad
    pipe.validate(early)


def test_wrong_dtype_is_rejected(pipe: FeaturePipeline, features: pd.DataFrame) -> None:
    as_float32 = features.astype({"body": np.float32})
    with pytest.raises(pa_errors.SchemaErrors, match="body"):
        pipe.validate(as_float32)
    as_int = features.iloc[pipe.warmup:].copy()
    as_int["ret_1"] = 0
    with pytest.raises(pa_errors.SchemaErrors, match="ret_1"):
        validate_features(as_int, pipe.columns)


def test_missing_extra_and_reordered_columns_are_rejected(
    pipe: FeaturePipeline, features: pd.DataFrame
) -> None:
    with pytest.raises(pa_errors.SchemaErrors, match="body"):
        pipe.validate(features.drop(columns="body"))
    with pytest.raises(pa_errors.SchemaErrors, match="surprise"):
        pipe.validate(features.assign(surprise=1.0))
    with pytest.raises(pa_errors.SchemaErrors):
        pipe.validate(features[list(reversed(features.columns))])


def test_schema_without_finiteness_accepts_nan() -> None:
    frame = pd.DataFrame({"a": [np.nan, 1.0], "b": [0.0, np.inf]})
    feature_schema(["a", "b"], finite=False).validate(frame)
    with pytest.raises(pa_errors.SchemaError, match="null values"):
        feature_schema(["a", "b"]).validate(frame)
    with pytest.raises(pa_errors.SchemaError, match="must be finite after warm-up"):
        feature_schema(["a", "b"]).validate(frame.fillna(0.0))
