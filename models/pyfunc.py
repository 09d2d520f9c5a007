"""The MLflow model of a strategy: raw candles in, probabilities out, features computed inside.

Input contract (one frame, any number of symbols):

    symbol (str), open_time (int64, candle OPEN in UTC ms), open, high, low, close,
    volume (float64); ascending by open_time within each symbol, on the strategy timeframe;
    plus, for a strategy with order-flow features, the per-candle order-flow inputs its
    pipeline reads (``model.input_columns``; float64, NaN where not recorded; see
    :mod:`models.order_flow`).

Output: a frame with ``symbol``, ``open_time`` and ``probability`` (p(up), float64), one row
per input row in input order; ``probability`` is NaN where the features are not yet warm
(the first ``warmup`` rows of a symbol, or any row whose features are not finite).

The feature pipeline travels inside the model, so serving computes exactly what training
did. The trader uses the fast path: ``loaded.unwrap_python_model().predict_last(window)``
scores the last candle of one symbol's window of at least ``warmup + 1`` candles.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from models.estimators import MOMENTUM_COLUMN, Estimator, momentum_returns
from models.features import FeaturePipeline, rows_of
from models.order_flow import BOOK_INPUTS, TRADE_INPUTS

__all__ = [
    "INPUT_COLUMNS",
    "INPUT_TYPES",
    "ORDER_FLOW_INPUTS",
    "OUTPUT_COLUMNS",
    "POOLED",
    "CandleModel",
    "pip_requirements",
    "signature_problems",
]

INPUT_COLUMNS = ("symbol", "open_time", "open", "high", "low", "close", "volume")
# MLflow schema type names of the input columns, as an inferred signature reports them.
INPUT_TYPES: dict[str, str] = {"symbol": "string", "open_time": "long", "open": "double",
                               "high": "double", "low": "double", "close": "double",
                               "volume": "double"}
# Order-flow inputs a model may take besides the candles (double, NaN where not recorded).
ORDER_FLOW_INPUTS = TRADE_INPUTS + BOOK_INPUTS
OUTPUT_COLUMNS = ("symbol", "open_time", "probability")
POOLED = "*"  # estimator key of a model pooled over all symbols
# Distributions the model needs at load time, pinned to what trained it. The model class
# itself lives in this project (`models.pyfunc`), which must be importable where it loads.
_REQUIREMENTS = ("mlflow", "xgboost-cpu", "scikit-learn", "pandas", "numpy", "numba",
                 "pandera", "pydantic", "pyyaml", "cloudpickle")


def pip_requirements() -> list[str]:
    """Explicit, pinned requirements (no inference: it is slow and needs the network)."""
    out = []
    for dist in _REQUIREMENTS:
        try:
            out.append(f"{dist}=={importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


class CandleModel(PythonModel):
    """Feature pipeline + fitted estimator(s) + metadata, served on raw candles.

    ``estimators`` maps a symbol to its estimator, or :data:`POOLED` to one estimator shared
    by every symbol. ``metadata`` is free-form (strategy, label, train window, data hash).
    ``momentum_horizon`` adds the momentum baseline's input column (the log return over that
    many candles) to the features, for a strategy whose model is that baseline.
    """

    #: The trader may pass a window as a mapping of column arrays (see predict_last).
    accepts_columns = True

    def __init__(self, pipeline: FeaturePipeline, estimators: Mapping[str, Estimator],
                 metadata: Mapping[str, Any] | None = None, *,
                 momentum_horizon: int | None = None) -> None:
        if not estimators:
            raise ValueError("a model needs at least one estimator")
        available = set(pipeline.columns) | ({MOMENTUM_COLUMN} if momentum_horizon else set())
        for key, est in estimators.items():
            unknown = [c for c in est.columns if c not in available]
            if unknown:
                raise ValueError(f"estimator {key!r} reads columns the pipeline lacks: {unknown}")
        self.pipeline = pipeline
        self.estimators = dict(estimators)
        self.metadata = dict(metadata or {})
        self.momentum_horizon = momentum_horizon

    @property
    def warmup(self) -> int:
        """Leading candles of a window whose probability is NaN; serve at least warmup + 1."""
        return max(self.pipeline.warmup, self.momentum_horizon or 0)

    def features(self, candles: pd.DataFrame) -> pd.DataFrame:
        """The model's input columns for one symbol's candles (the pipeline's, plus momentum)."""
        out = self.pipeline.compute(candles)
        if self.momentum_horizon:
            out[MOMENTUM_COLUMN] = momentum_returns(candles["close"].to_numpy(),
                                                    self.momentum_horizon)
        return out

    @property
    def input_columns(self) -> tuple[str, ...]:
        """Columns of the input contract this model reads: the candles', then order flow."""
        return INPUT_COLUMNS + self.pipeline.inputs

    @property
    def timeframe(self) -> str:
        """The candle timeframe the model was trained on."""
        return self.pipeline.timeframe

    def estimator_for(self, symbol: str | None) -> Estimator:
        """The estimator serving ``symbol`` (the pooled one when there is one)."""
        if POOLED in self.estimators:
            return self.estimators[POOLED]
        if symbol is None or symbol not in self.estimators:
            raise ValueError(f"no model for symbol {symbol!r}; trained for "
                             f"{sorted(self.estimators)}")
        return self.estimators[symbol]

    def probabilities(self, candles: pd.DataFrame, symbol: str | None = None) -> np.ndarray:
        """p(up) for every row of one symbol's candles (NaN where not warm)."""
        estimator = self.estimator_for(symbol)
        features = self.features(candles)
        out = np.full(len(candles), np.nan)
        ready = np.isfinite(features.to_numpy()).all(axis=1)
        ready[: self.warmup] = False
        if ready.any():
            out[ready] = estimator.predict_proba(features.loc[ready])
        return out

    def predict_last(self, candles: pd.DataFrame | Mapping[str, np.ndarray],
                     symbol: str | None = None) -> float:
        """p(up) at the last candle of one symbol's window (NaN if it is not warm).

        ``candles`` is a frame of the input contract or, on the trader's hot path, a mapping
        of its columns (open_time, open, high, low, close, volume) to arrays.

        ``symbol`` is needed only for per-symbol models; a ``symbol`` column is used when
        the argument is not given.
        """
        framed = isinstance(candles, pd.DataFrame)
        if symbol is None and framed and "symbol" in candles.columns and len(candles):
            symbol = str(candles["symbol"].iloc[-1])
        estimator = self.estimator_for(symbol)
        if rows_of(candles) <= self.warmup:
            return float("nan")
        fast = getattr(estimator, "predict_rows", None)
        if fast is not None and not self.momentum_horizon:
            # Serving: the features' last row as a bare array, straight into the booster.
            block = self.pipeline.compute_block(candles)
            row = block[-1:, self._estimator_index(estimator)]
            if not np.isfinite(row).all():
                return float("nan")
            return float(fast(np.ascontiguousarray(row))[0])
        if not framed:
            candles = pd.DataFrame(dict(candles))
        features = self.features(candles).iloc[-1:]
        if not np.isfinite(features.to_numpy()).all():
            return float("nan")
        return float(estimator.predict_proba(features)[0])

    def predict_many(self, windows: Mapping[str, pd.DataFrame | Mapping[str, np.ndarray]]
                     ) -> dict[str, float]:
        """:meth:`predict_last` for several symbols' windows, scored in one model call.

        The trader scores every symbol at each candle close; a pooled XGBoost model then
        takes one call instead of one per symbol.
        """
        pooled = self.estimators.get(POOLED)
        fast = getattr(pooled, "predict_rows", None)
        if fast is None or self.momentum_horizon:
            return {s: self.predict_last(w, s) for s, w in windows.items()}
        out = dict.fromkeys(windows, float("nan"))
        index = self._estimator_index(pooled)  # type: ignore[arg-type]
        ready, rows = [], []
        for symbol, window in windows.items():
            if rows_of(window) <= self.warmup:
                continue
            row = self.pipeline.compute_block(window)[-1, index]
            if np.isfinite(row).all():
                ready.append(symbol)
                rows.append(row)
        if rows:
            for symbol, p in zip(ready, fast(np.ascontiguousarray(np.vstack(rows))),
                                 strict=True):
                out[symbol] = float(p)
        return out

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_column_index", None)  # keyed by object ids: rebuilt after loading
        return state

    def _estimator_index(self, estimator: Estimator) -> list[int]:
        """Positions of the estimator's input columns among the pipeline's (cached)."""
        cache = self.__dict__.setdefault("_column_index", {})
        key = id(estimator)
        if key not in cache:
            columns = list(self.pipeline.columns)
            cache[key] = [columns.index(c) for c in estimator.columns]
        return cache[key]

    def predict_frame(self, candles: pd.DataFrame) -> pd.DataFrame:
        """The model output for a frame of the input contract (see the module docstring)."""
        missing = [c for c in self.input_columns if c not in candles.columns]
        if missing:
            raise ValueError(f"candles lack column(s) {missing}; "
                             f"needed: {list(self.input_columns)}")
        symbols = candles["symbol"].astype(str).to_numpy()
        proba = np.full(len(candles), np.nan)
        for symbol in pd.unique(symbols):
            rows = np.flatnonzero(symbols == symbol)
            part = candles.iloc[rows].reset_index(drop=True)
            proba[rows] = self.probabilities(part, str(symbol))
        return pd.DataFrame({
            "symbol": symbols.astype(object),
            "open_time": candles["open_time"].to_numpy(dtype=np.int64),
            "probability": proba,
        })

    def predict(self, context: Any, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> pd.DataFrame:
        """MLflow entry point: :meth:`predict_frame`."""
        return self.predict_frame(model_input)


def signature_problems(signature: Any) -> list[str]:
    """What is wrong with a model signature's input against :data:`INPUT_TYPES` (empty if ok).

    One entry per problem: missing columns, extra columns, columns of the wrong type. The
    order-flow inputs (:data:`ORDER_FLOW_INPUTS`, double) may come on top.
    """
    inputs = getattr(signature, "inputs", None)
    if inputs is None:
        return ["the model has no input signature"]
    if not getattr(inputs, "has_input_names", lambda: False)():
        return ["the model's input signature has no column names (a tensor signature)"]
    found: dict[str, str] = {}
    for spec in inputs.inputs:
        kind = getattr(spec, "type", None)
        found[str(spec.name)] = getattr(kind, "name", str(kind))
    problems = []
    missing = [c for c in INPUT_COLUMNS if c not in found]
    extra = [c for c in found if c not in INPUT_TYPES and c not in ORDER_FLOW_INPUTS]
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    if extra:
        problems.append(f"extra column(s) {', '.join(extra)}")
    expected = INPUT_TYPES | dict.fromkeys(ORDER_FLOW_INPUTS, "double")
    wrong = [f"{c} is {found[c]} (expected {t})" for c, t in expected.items()
             if c in found and found[c] != t]
    if wrong:
        problems.append("wrong type: " + ", ".join(wrong))
    return problems
