"""Feature pipeline: candles in, a float feature frame out, the same in training and serving.

A strategy declares its features by name and parameters (``FeatureSpec``); every family, its
parameters and its column names are documented in :mod:`models.families` and
:mod:`models.higher_timeframe`. :class:`FeaturePipeline` validates the declarations once, then
computes all columns for a frame of one symbol's candles (``open_time`` UTC ms of the candle
OPEN, ``open``, ``high``, ``low``, ``close``, ``volume``; ascending, on the strategy timeframe).

Warm-up: ``pipeline.warmup`` is the number of leading rows that may be NaN or not yet exact.
Every row from index ``warmup`` on depends on the candles up to it only, and computing on the
last ``N >= warmup + k`` rows of a longer history gives the same last ``k`` rows as computing on
the whole history: bit for bit for windowed features, and within ``seed_weight`` (relative,
times a small factor) for recursive ones (EMA, Wilder), whose seed has decayed below
``seed_weight`` by then. The pipeline is a small frozen value that pickles without code, so it can
travel inside an MLflow pyfunc model and serve live candles exactly as it was trained.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from models import higher_timeframe, order_flow_features  # noqa: F401  (registers families)
from models.families import (
    FAMILIES,
    Bars,
    Resolved,
    columns_of,
    compute_feature,
    inputs_of,
    resolve,
    warmup_of,
)
from tradeflow import timeframes
from tradeflow.strategy import FeatureSpec, StrategySettings

__all__ = [
    "CANDLE_COLUMNS",
    "FeaturePipeline",
    "available_features",
    "feature_schema",
    "validate_features",
]

CANDLE_COLUMNS = ("open_time", "open", "high", "low", "close", "volume")
# The seed of an EMA or Wilder average keeps less than this weight at row `warmup`. Measured
# truncated-vs-full differences are at most ~6x this (relative), far inside the 1e-9 target;
# each factor of 10 costs about ln(10)/alpha more rows of warm-up.
DEFAULT_SEED_WEIGHT = 1e-12


def available_features() -> dict[str, dict[str, Any]]:
    """Every registered family: description, and per parameter what is allowed and its default."""
    return {
        name: {
            "doc": family.doc,
            "params": {
                p.name: {"allowed": p.allowed(), "default": None if p.required else p.default}
                for p in family.params
            },
        }
        for name, family in sorted(FAMILIES.items())
    }


@dataclass(frozen=True)
class FeaturePipeline:
    """Validated feature declarations for one base timeframe; computes the feature frame.

    Build it with :meth:`from_specs` or :meth:`from_strategy`. ``columns`` lists the output
    columns in order, ``warmup`` the leading rows to discard (see the module docstring),
    ``inputs`` the per-candle order-flow columns (:mod:`models.order_flow`) the candles must
    carry besides OHLCV (empty without order-flow features).
    """

    features: tuple[Resolved, ...]
    timeframe: str = "1m"
    seed_weight: float = DEFAULT_SEED_WEIGHT
    columns: tuple[str, ...] = field(init=False)
    warmup: int = field(init=False)
    inputs: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        if not 0 < self.seed_weight < 1:
            raise ValueError(f"seed_weight must be in (0, 1); got {self.seed_weight}")
        if not self.features:
            raise ValueError("a feature pipeline needs at least one feature")
        columns = [c for f in self.features for c in columns_of(f)]
        seen: set[str] = set()
        for col in columns:
            if col in seen:
                raise ValueError(f"feature column {col!r} is declared twice")
            seen.add(col)
        warmup = max(warmup_of(f, self.timeframe, self.seed_weight) for f in self.features)
        object.__setattr__(self, "columns", tuple(columns))
        object.__setattr__(self, "warmup", int(warmup))
        object.__setattr__(self, "inputs", _inputs(self.features))

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Models pickled before order-flow inputs existed read no inputs.
        self.__dict__.update(state)
        if "inputs" not in state:
            object.__setattr__(self, "inputs", _inputs(self.features))

    @classmethod
    def from_specs(
        cls,
        specs: Sequence[FeatureSpec | Mapping[str, Any] | str],
        timeframe: str = "1m",
        *,
        seed_weight: float = DEFAULT_SEED_WEIGHT,
    ) -> FeaturePipeline:
        """Validate declarations; ValueError names the feature, parameter and what is allowed."""
        timeframes.parse(timeframe)
        return cls(tuple(resolve(s, timeframe) for s in specs), timeframe, seed_weight)

    @classmethod
    def from_strategy(
        cls, strategy: StrategySettings, *, seed_weight: float = DEFAULT_SEED_WEIGHT
    ) -> FeaturePipeline:
        """The pipeline of a strategy profile (its features on its timeframe)."""
        return cls.from_specs(strategy.features, strategy.timeframe, seed_weight=seed_weight)

    def specs(self) -> list[dict[str, Any]]:
        """The resolved declarations as plain dicts (all defaults filled), e.g. for MLflow."""
        return [_plain(f) for f in self.features]

    def compute(self, candles: pd.DataFrame) -> pd.DataFrame:
        """All feature columns (float64, same index as ``candles``); see the module docstring."""
        block = self.compute_block(candles)
        return pd.DataFrame(block, columns=list(self.columns), index=candles.index, copy=False)

    def compute_block(self, candles: pd.DataFrame | Mapping[str, np.ndarray]) -> np.ndarray:
        """:meth:`compute` as a bare (rows x columns) float64 array, in ``columns`` order.

        The serving path (one window per candle) skips building a frame around it.
        """
        bars = bars_from_frame(candles, self.timeframe, self.inputs)
        data: dict[str, np.ndarray] = {}
        for feature in self.features:
            data.update(compute_feature(bars, feature))
        # One column-major block: pandas keeps it as a single block without copying, ~10x
        # faster than building the frame from a dict of arrays at a million rows.
        block = np.empty((len(bars), len(self.columns)), order="F")
        for i, col in enumerate(self.columns):
            block[:, i] = data[col]
        return block

    def schema(self) -> pa.DataFrameSchema:
        """Pandera schema of the rows after warm-up: these columns, float64, all finite."""
        return feature_schema(self.columns)

    def validate(self, features: pd.DataFrame) -> pd.DataFrame:
        """Validate a frame from :meth:`compute` (finite from row ``warmup`` on); returns it."""
        return validate_features(features, self.columns, self.warmup)


def _inputs(features: Sequence[Resolved]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c for f in features for c in inputs_of(f)))


def _plain(feature: Resolved) -> dict[str, Any]:
    out: dict[str, Any] = {"name": feature.name}
    for key, value in feature.params:
        if key == "features" and feature.name == higher_timeframe.NAME:
            value = [_plain(f) for f in value]
        elif isinstance(value, tuple):
            value = list(value)
        out[key] = value
    return out


def bars_from_frame(candles: pd.DataFrame | Mapping[str, np.ndarray],
                    timeframe: str, inputs: Sequence[str] = ()) -> Bars:
    """Arrays of a candle frame, checked: columns present, finite, ascending, on the grid.

    A mapping of column name to array is accepted too (the trader's window, which skips
    building a frame on every candle). ``inputs`` are order-flow columns to carry along
    (they may hold NaN: not recorded there).
    """
    names = candles.columns if isinstance(candles, pd.DataFrame) else candles.keys()
    needed = [*CANDLE_COLUMNS, *inputs]
    missing = [c for c in needed if c not in names]
    if missing:
        raise ValueError(f"candles lack column(s) {missing}; needed: {needed}")
    # Contiguous copies: one compiled kernel per signature, and no strided views of a caller's
    # 2-D block leak into the feature arrays.
    open_time = np.ascontiguousarray(_column(candles, "open_time", np.int64))
    arrays = {c: np.ascontiguousarray(_column(candles, c, np.float64))
              for c in CANDLE_COLUMNS[1:]}
    for name, values in arrays.items():
        if not np.isfinite(values).all():
            # One NaN would poison every recursive indicator from there on.
            raise ValueError(f"candles column {name!r} has non-finite values")
    if open_time.size > 1 and not (np.diff(open_time) > 0).all():
        raise ValueError("candles must be strictly ascending by open_time")
    if (higher_timeframe.floor_times(open_time, timeframe) != open_time).any():
        raise ValueError(f"candle open times are not on the {timeframe} grid")
    flow = {c: np.ascontiguousarray(_column(candles, c, np.float64)) for c in inputs}
    return Bars(timeframe, open_time, **arrays, flow=flow)


def _column(candles: pd.DataFrame | Mapping[str, np.ndarray], name: str,
            dtype: type) -> np.ndarray:
    values = candles[name]
    if isinstance(values, pd.Series):
        return values.to_numpy(dtype=dtype)
    return np.asarray(values, dtype=dtype)


def rows_of(candles: pd.DataFrame | Mapping[str, np.ndarray]) -> int:
    """Number of candles in a frame or a mapping of columns."""
    if isinstance(candles, pd.DataFrame):
        return len(candles)
    return len(candles["open_time"])


def _finite(series: pd.Series) -> pd.Series:
    return pd.Series(np.isfinite(series.to_numpy(dtype=np.float64)), index=series.index)


def feature_schema(columns: Sequence[str], *, finite: bool = True) -> pa.DataFrameSchema:
    """Schema of a feature frame: exactly ``columns`` in order, float64, finite if asked."""
    checks = [pa.Check(_finite, name="finite", error="must be finite after warm-up")]
    return pa.DataFrameSchema(
        {c: pa.Column(np.float64, checks=checks if finite else [], nullable=not finite)
         for c in columns},
        strict=True,
        ordered=True,
    )


def validate_features(
    features: pd.DataFrame, columns: Sequence[str], warmup: int = 0
) -> pd.DataFrame:
    """Check names and dtypes on every row and finiteness from row ``warmup`` on.

    Raises ``pandera.errors.SchemaErrors`` listing every failing column and check (validation is
    lazy, so one run reports all problems); returns the frame unchanged otherwise.
    """
    feature_schema(columns, finite=False).validate(features, lazy=True)
    feature_schema(columns).validate(features.iloc[warmup:], lazy=True)
    return features
