"""Estimators with a Qlib-like interface: ``fit(X, y)`` then ``predict_proba(X) -> p(up)``.

Every estimator reads the columns it was built for (``columns``) from a feature frame, so the
same frame can feed a model and the baselines that need other inputs. ``predict_proba``
returns a 1-D float64 array of the probability of label 1 (the "up" class). All of them are
plain picklable objects: they travel inside the MLflow pyfunc model.

* :class:`XGBoostEstimator`: gradient-boosted trees, CPU ``hist``, 2 threads, seeded.
* :class:`RandomForestEstimator`: scikit-learn ``RandomForestClassifier``, 2 jobs, seeded.
* :class:`LogisticEstimator`: scikit-learn ``StandardScaler`` + ``LogisticRegression``.
* :class:`FlatEstimator`: p = 0 everywhere, so a strategy never enters (the do-nothing bar).
* :class:`MomentumEstimator`: p = sigmoid(last return over the label horizon / its scale),
  i.e. "the last move continues"; the scale is the standard deviation seen in ``fit``.

A training set with a single class cannot be fitted by XGBoost or scikit-learn; the learned
estimators then predict that class's frequency (a constant), which is the honest answer.

The learned kinds are the model families a strategy's ``model.kind`` selects (:data:`FAMILIES`);
their ``model.params`` are checked by name against the library estimator's own parameters
(:func:`check_params`), so a misspelt parameter is refused instead of silently ignored.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, Self

import numpy as np
import pandas as pd

__all__ = [
    "MOMENTUM_COLUMN",
    "Estimator",
    "FAMILIES",
    "FlatEstimator",
    "LogisticEstimator",
    "MomentumEstimator",
    "ParamError",
    "RandomForestEstimator",
    "XGBoostEstimator",
    "check_params",
    "make_estimator",
    "momentum_returns",
]

# Name of the helper column (log return over the label horizon) the momentum baseline reads.
MOMENTUM_COLUMN = "momentum_return"
XGBOOST_DEFAULTS: dict[str, Any] = {
    "n_estimators": 200, "max_depth": 4, "learning_rate": 0.05, "subsample": 0.8,
}
# Fixed so results do not depend on the machine: CPU histogram trees, two threads.
_XGBOOST_FIXED: dict[str, Any] = {"tree_method": "hist", "device": "cpu"}
# Shallow-ish trees with large leaves: 1m candles are noisy, deep trees memorise the noise.
RANDOM_FOREST_DEFAULTS: dict[str, Any] = {
    "n_estimators": 200, "max_depth": 8, "min_samples_leaf": 50, "max_features": "sqrt",
}
LOGISTIC_DEFAULTS: dict[str, Any] = {"C": 1.0, "max_iter": 500}


def momentum_returns(close: np.ndarray, horizon: int) -> np.ndarray:
    """``log(close[t] / close[t - horizon])`` per row (NaN for the first ``horizon`` rows)."""
    close = np.asarray(close, dtype=np.float64)
    out = np.full(close.size, np.nan)
    if close.size > horizon:
        out[horizon:] = np.log(close[horizon:] / close[:-horizon])
    return out


class Estimator(Protocol):
    """What training, the walk-forward and the pyfunc model need from a model."""

    kind: str
    columns: tuple[str, ...]

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> Self: ...

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray: ...

    def feature_importance(self) -> dict[str, float]: ...


def _matrix(X: pd.DataFrame, columns: tuple[str, ...]) -> np.ndarray:
    missing = [c for c in columns if c not in X.columns]
    if missing:
        raise ValueError(f"input lacks column(s) {missing}")
    return X[list(columns)].to_numpy(dtype=np.float64)


def _labels(y: np.ndarray | pd.Series, n: int) -> np.ndarray:
    arr = np.asarray(y, dtype=np.float64)
    if arr.shape != (n,):
        raise ValueError(f"expected {n} labels, got shape {arr.shape}")
    if not np.isin(arr, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1 (drop NaN labels before fitting)")
    return arr


def _library_class(kind: str) -> Any:
    """The library estimator class behind a learned model family (imported on demand)."""
    if kind == "xgboost":
        from xgboost import XGBClassifier

        return XGBClassifier
    if kind == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression


# The model families ``model.kind`` selects (learned); the baselines are the other kinds.
FAMILIES: tuple[str, ...] = ("xgboost", "random_forest", "logistic")
# Parameters a family fixes itself and ``model.params`` may not set, and why.
_FIXED: dict[str, dict[str, str]] = {
    "xgboost": dict.fromkeys(_XGBOOST_FIXED, "CPU hist is fixed"),
    "random_forest": {},
    "logistic": {},
}


class ParamError(ValueError):
    """A ``model.params`` key the family does not take; ``key`` names it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def check_params(kind: str, params: Mapping[str, Any] | None) -> None:
    """:class:`ParamError` naming the first ``model.params`` key ``kind``'s estimator does not
    take (ValueError for an unknown ``kind``).

    Names are checked against the library class's own ``get_params()`` (XGBClassifier,
    RandomForestClassifier, LogisticRegression); values are the library's to check at fit.
    """
    if kind not in FAMILIES:
        raise ValueError(f"unknown model kind {kind!r}; allowed: {', '.join(FAMILIES)}")
    known = set(_library_class(kind)().get_params()) - set(_FIXED[kind])
    for key in params or {}:
        if key in _FIXED[kind]:
            raise ParamError(key, f"{kind}: model.params may not set {key!r} "
                                  f"({_FIXED[kind][key]})")
        if key not in known:
            raise ParamError(key, f"{kind}: unknown parameter {key!r}; allowed: "
                                  f"{', '.join(sorted(known))}")


class _Learned:
    """Shared fit/predict plumbing of the estimators backed by a library model."""

    kind = "learned"

    def __init__(self, columns: Sequence[str]) -> None:
        if not columns:
            raise ValueError(f"{self.kind}: at least one input column is needed")
        self.columns = tuple(columns)
        self.model_: Any = None
        self.constant_: float | None = None

    def _new_model(self) -> Any:
        raise NotImplementedError

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> Self:
        data = _matrix(X, self.columns)
        labels = _labels(y, data.shape[0])
        if data.shape[0] == 0:
            raise ValueError(f"{self.kind}: no training samples")
        if np.unique(labels).size < 2:
            self.model_, self.constant_ = None, float(labels[0])
            return self
        self.model_, self.constant_ = self._new_model(), None
        self.model_.fit(data, labels.astype(np.int64))
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        data = _matrix(X, self.columns)
        trivial = self._trivial(data)
        if trivial is not None:
            return trivial
        return np.asarray(self.model_.predict_proba(data)[:, 1], dtype=np.float64)

    def _trivial(self, data: np.ndarray) -> np.ndarray | None:
        """The answer without the model: a constant, or nothing to score; None otherwise."""
        if self.constant_ is not None:
            return np.full(data.shape[0], self.constant_)
        if self.model_ is None:
            raise RuntimeError(f"{self.kind}: predict_proba before fit")
        if data.shape[0] == 0:
            return np.empty(0)
        return None


class XGBoostEstimator(_Learned):
    """XGBoost classifier on CPU (``tree_method="hist"``), ``n_jobs`` threads, fixed seed.

    ``params`` are the strategy's ``model.params`` (any ``XGBClassifier`` argument) over
    :data:`XGBOOST_DEFAULTS`; ``tree_method`` and ``device`` are fixed and cannot be overridden.
    """

    kind = "xgboost"

    def __init__(self, columns: Sequence[str], params: Mapping[str, Any] | None = None, *,
                 seed: int = 0, n_jobs: int = 2) -> None:
        super().__init__(columns)
        params = dict(params or {})
        check_params(self.kind, params)
        self.params = {**XGBOOST_DEFAULTS, "random_state": seed, "n_jobs": n_jobs, **params,
                       **_XGBOOST_FIXED}

    def _new_model(self) -> Any:
        import xgboost

        return xgboost.XGBClassifier(**self.params)

    # Serving scores a row or a few at a time (the live trader: one per symbol per candle).
    # Fanning one row out over n_jobs threads costs more than the prediction itself and
    # stalls when the CPU is shared, so small batches use a single-threaded copy.
    SMALL_BATCH = 64

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        if self.model_ is None or len(X) > self.SMALL_BATCH:
            return super().predict_proba(X)
        return self.predict_rows(_matrix(X, self.columns))

    def predict_rows(self, data: np.ndarray) -> np.ndarray:
        """p(up) for a few rows given as an array in ``columns`` order (the serving path)."""
        trivial = self._trivial(data)
        if trivial is not None:
            return trivial
        booster = self.__dict__.get("_serving_booster")
        if booster is None:
            booster = self.model_.get_booster().copy()
            booster.set_param({"nthread": 1})
            self.__dict__["_serving_booster"] = booster
        return np.asarray(booster.inplace_predict(data), dtype=np.float64)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_serving_booster", None)  # rebuilt on first use after loading
        return state

    def feature_importance(self) -> dict[str, float]:
        """Total gain per column (0 for columns never split on)."""
        if self.model_ is None:
            return dict.fromkeys(self.columns, 0.0)
        scores = self.model_.get_booster().get_score(importance_type="total_gain")
        return {c: float(scores.get(f"f{i}", 0.0)) for i, c in enumerate(self.columns)}


class RandomForestEstimator(_Learned):
    """scikit-learn ``RandomForestClassifier`` on ``n_jobs`` threads, fixed seed.

    ``params`` are the strategy's ``model.params`` (any ``RandomForestClassifier`` argument)
    over :data:`RANDOM_FOREST_DEFAULTS`.
    """

    kind = "random_forest"

    def __init__(self, columns: Sequence[str], params: Mapping[str, Any] | None = None, *,
                 seed: int = 0, n_jobs: int = 2) -> None:
        super().__init__(columns)
        params = dict(params or {})
        check_params(self.kind, params)
        self.params = {**RANDOM_FOREST_DEFAULTS, "random_state": seed, "n_jobs": n_jobs,
                       **params}

    def _new_model(self) -> Any:
        return _library_class(self.kind)(**self.params)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        # Scored on one thread: joblib's threads add the trees' votes in whatever order they
        # finish (answers differing in the last bit from call to call), and for the few rows
        # the trader scores per candle they cost more than the trees. Fitting keeps n_jobs.
        data = _matrix(X, self.columns)
        trivial = self._trivial(data)
        if trivial is not None:
            return trivial
        serving = self.__dict__.get("_serving_forest")
        if serving is None:
            serving = copy.copy(self.model_)  # shares the fitted trees; only n_jobs differs
            serving.n_jobs = 1
            self.__dict__["_serving_forest"] = serving
        return np.asarray(serving.predict_proba(data)[:, 1], dtype=np.float64)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_serving_forest", None)  # rebuilt on first use after loading
        return state

    def feature_importance(self) -> dict[str, float]:
        """Mean decrease in impurity per column."""
        if self.model_ is None:
            return dict.fromkeys(self.columns, 0.0)
        values = self.model_.feature_importances_
        return {c: float(v) for c, v in zip(self.columns, values, strict=True)}


class LogisticEstimator(_Learned):
    """``StandardScaler`` + ``LogisticRegression`` (L2, ``C``): a model family and a baseline."""

    kind = "logistic"

    def __init__(self, columns: Sequence[str], params: Mapping[str, Any] | None = None) -> None:
        super().__init__(columns)
        params = dict(params or {})
        check_params(self.kind, params)
        self.params = {**LOGISTIC_DEFAULTS, **params}

    def _new_model(self) -> Any:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), LogisticRegression(**self.params))

    def feature_importance(self) -> dict[str, float]:
        """Absolute standardised coefficient per column."""
        if self.model_ is None:
            return dict.fromkeys(self.columns, 0.0)
        coef = np.abs(self.model_[-1].coef_[0])
        return {c: float(v) for c, v in zip(self.columns, coef, strict=True)}


class FlatEstimator:
    """Always p = 0: a strategy fed by it never enters. Reads no column."""

    kind = "flat"

    def __init__(self, columns: Sequence[str] = ()) -> None:
        self.columns = tuple(columns)

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> Self:
        _labels(y, len(X))
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return np.zeros(len(X))

    def feature_importance(self) -> dict[str, float]:
        return dict.fromkeys(self.columns, 0.0)


class MomentumEstimator:
    """p = sigmoid(r / scale) with r the log return over the label horizon (column ``column``).

    ``fit`` learns only ``scale`` (the standard deviation of r in the training set), so the
    probability says how strongly the last move points up; a flat last move gives 0.5.
    """

    kind = "momentum"

    def __init__(self, column: str = MOMENTUM_COLUMN) -> None:
        self.columns: tuple[str, ...] = (column,)
        self.scale_: float | None = None

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> Self:
        r = _matrix(X, self.columns)[:, 0]
        _labels(y, r.shape[0])
        finite = r[np.isfinite(r)]
        std = float(np.std(finite)) if finite.size > 1 else 0.0
        self.scale_ = std if std > 0 else 1.0
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        if self.scale_ is None:
            raise RuntimeError("momentum: predict_proba before fit")
        r = _matrix(X, self.columns)[:, 0]
        return 0.5 * (1.0 + np.tanh(r / self.scale_ / 2.0))  # the logistic function, stably

    def feature_importance(self) -> dict[str, float]:
        return {self.columns[0]: 1.0}


def make_estimator(kind: str, feature_columns: Sequence[str],
                   params: Mapping[str, Any] | None = None, *, seed: int = 0) -> Estimator:
    """An unfitted estimator of ``kind`` (a family of :data:`FAMILIES`, ``flat``, ``momentum``).

    Learned kinds read ``feature_columns``; ``momentum`` reads :data:`MOMENTUM_COLUMN`;
    ``params`` (the strategy's ``model.params``) go to the learned kinds only.
    """
    if kind == "xgboost":
        return XGBoostEstimator(feature_columns, params, seed=seed)
    if kind == "random_forest":
        return RandomForestEstimator(feature_columns, params, seed=seed)
    if kind == "logistic":
        return LogisticEstimator(feature_columns, params)
    if kind == "flat":
        return FlatEstimator(feature_columns)
    if kind == "momentum":
        return MomentumEstimator()
    raise ValueError(f"unknown model kind {kind!r}; allowed: {', '.join(FAMILIES)}, flat, "
                     "momentum")
