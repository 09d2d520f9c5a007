"""Estimators: fit/predict_proba contract, determinism, pickling, baselines' definitions."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from models.estimators import (
    MOMENTUM_COLUMN,
    FlatEstimator,
    LogisticEstimator,
    MomentumEstimator,
    ParamError,
    RandomForestEstimator,
    XGBoostEstimator,
    check_params,
    make_estimator,
)

COLUMNS = ("a", "b", "c")
LIGHT = {"n_estimators": 30, "max_depth": 3}


def dataset(n: int = 4_000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Label 1 is more likely when a - b is high; c is noise; momentum carries a weak signal."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=list(COLUMNS))
    X[MOMENTUM_COLUMN] = rng.normal(0, 0.002, n)
    logit = 1.5 * (X["a"] - X["b"]) + 200 * X[MOMENTUM_COLUMN]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float64)
    return X, y.to_numpy().copy()


def auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p))


@pytest.mark.parametrize("kind", ["xgboost", "random_forest", "logistic"])
def test_learned_estimators_learn_and_return_probabilities(kind: str) -> None:
    X, y = dataset()
    est = make_estimator(kind, COLUMNS, LIGHT if kind != "logistic" else None)
    p = est.fit(X.iloc[:3000], y[:3000]).predict_proba(X.iloc[3000:])
    assert p.shape == (1000,) and p.dtype == np.float64
    assert ((p >= 0) & (p <= 1)).all()
    assert auc(y[3000:], p) > 0.75
    importance = est.feature_importance()
    assert set(importance) == set(COLUMNS)
    assert importance["a"] > importance["c"] and importance["b"] > importance["c"]


def test_xgboost_is_deterministic_and_pickles() -> None:
    X, y = dataset()
    params = {**LIGHT, "subsample": 0.7, "colsample_bytree": 0.7}
    a = XGBoostEstimator(COLUMNS, params, seed=3).fit(X, y)
    b = XGBoostEstimator(COLUMNS, params, seed=3).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    c = XGBoostEstimator(COLUMNS, params, seed=4).fit(X, y)
    assert not np.array_equal(a.predict_proba(X), c.predict_proba(X))
    clone = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(clone.predict_proba(X), a.predict_proba(X))
    assert a.params["tree_method"] == "hist" and a.params["n_jobs"] == 2
    assert a.params["device"] == "cpu"


def test_xgboost_refuses_to_leave_cpu_hist() -> None:
    with pytest.raises(ValueError, match="tree_method"):
        XGBoostEstimator(COLUMNS, {"tree_method": "exact"})


def test_estimators_read_only_their_columns_in_their_order() -> None:
    X, y = dataset()
    est = LogisticEstimator(COLUMNS).fit(X, y)
    shuffled = X[[MOMENTUM_COLUMN, "c", "b", "a"]]
    np.testing.assert_allclose(est.predict_proba(shuffled), est.predict_proba(X))
    with pytest.raises(ValueError, match="lacks column"):
        est.predict_proba(X.drop(columns=["b"]))


def test_single_class_training_predicts_its_frequency() -> None:
    X, _ = dataset(200)
    for est in (XGBoostEstimator(COLUMNS, LIGHT), LogisticEstimator(COLUMNS)):
        np.testing.assert_array_equal(est.fit(X, np.ones(200)).predict_proba(X), np.ones(200))
        np.testing.assert_array_equal(est.fit(X, np.zeros(200)).predict_proba(X), np.zeros(200))


def test_labels_must_be_binary() -> None:
    X, y = dataset(100)
    y[3] = np.nan
    with pytest.raises(ValueError, match="0 or 1"):
        LogisticEstimator(COLUMNS).fit(X, y)


def test_flat_never_enters() -> None:
    X, y = dataset(500)
    p = FlatEstimator(COLUMNS).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(p, np.zeros(500))


def test_momentum_is_the_squashed_last_move() -> None:
    X, y = dataset()
    est = MomentumEstimator().fit(X, y)
    r = X[MOMENTUM_COLUMN].to_numpy()
    p = est.predict_proba(X)
    assert est.scale_ == pytest.approx(np.std(r))
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-r / np.std(r))))
    assert ((p > 0.5) == (r > 0)).all()
    assert np.all(np.diff(p[np.argsort(r)]) >= 0)  # monotone in the last move
    assert auc(y, p) > 0.55  # the planted momentum effect is found
    assert est.columns == (MOMENTUM_COLUMN,)


def test_all_kinds_pickle_and_unknown_kind_is_refused() -> None:
    X, y = dataset(500)
    for kind in ("xgboost", "random_forest", "logistic", "flat", "momentum"):
        params = LIGHT if kind in ("xgboost", "random_forest") else None
        est = make_estimator(kind, COLUMNS, params).fit(X, y)
        clone = pickle.loads(pickle.dumps(est))
        np.testing.assert_array_equal(clone.predict_proba(X), est.predict_proba(X))
        assert clone.kind == kind
    with pytest.raises(ValueError, match="unknown model kind"):
        make_estimator("lstm", COLUMNS)


def test_xgboost_small_batches_score_like_large_ones_single_threaded() -> None:
    import pickle

    import numpy as np
    import pandas as pd

    from models.estimators import XGBoostEstimator

    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(500, 4)), columns=list("abcd"))
    y = (X["a"] + 0.5 * X["b"] + rng.normal(scale=0.5, size=500) > 0).astype(int).to_numpy()
    est = XGBoostEstimator(list("abcd"), {"n_estimators": 30}).fit(X, y)
    batch = est.predict_proba(X)  # large: the library's multi-threaded path
    rows = np.concatenate([est.predict_proba(X.iloc[i:i + 1]) for i in range(100)])
    np.testing.assert_allclose(rows, batch[:100], rtol=1e-6, atol=1e-7)
    clone = pickle.loads(pickle.dumps(est))
    assert "_serving_booster" not in clone.__dict__
    np.testing.assert_allclose(clone.predict_proba(X.iloc[:3]), batch[:3], rtol=1e-6)


def test_candle_model_scores_several_windows_in_one_call_like_one_by_one() -> None:
    import numpy as np
    import pandas as pd

    from models.estimators import XGBoostEstimator
    from models.features import FeaturePipeline
    from models.pyfunc import POOLED, CandleModel

    pipeline = FeaturePipeline.from_specs([{"name": "returns", "horizons": [1, 5]},
                                           {"name": "rsi", "period": 14}], "1m")
    rng = np.random.default_rng(5)
    frames = {}
    for i, symbol in enumerate(("A/USDT", "B/USDT", "C/USDT")):
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, 400)))
        frames[symbol] = pd.DataFrame({"open_time": 60_000 * np.arange(400) + i * 0,
                                       "open": close, "high": close * 1.001,
                                       "low": close * 0.999, "close": close,
                                       "volume": 1.0})
    features = pd.concat([pipeline.compute(f).iloc[pipeline.warmup:] for f in frames.values()])
    labels = (features["ret_1"] > 0).astype(int).to_numpy()
    est = XGBoostEstimator(pipeline.columns, {"n_estimators": 20}).fit(features, labels)
    model = CandleModel(pipeline, {POOLED: est})
    windows = {s: {c: f[c].to_numpy() for c in f.columns} for s, f in frames.items()}
    together = model.predict_many(windows)
    one_by_one = {s: model.predict_last(f, s) for s, f in frames.items()}
    assert together.keys() == one_by_one.keys()
    for s in frames:
        assert together[s] == pytest.approx(one_by_one[s], rel=1e-6)
    short = {s: {c: v[:10] for c, v in w.items()} for s, w in windows.items()}
    assert all(np.isnan(p) for p in model.predict_many(short).values())


@pytest.mark.parametrize(("kind", "params", "message"), [
    ("random_forest", {"learning_rate": 0.1},
     r"random_forest: unknown parameter 'learning_rate'; allowed: bootstrap, ccp_alpha, "),
    ("logistic", {"C": 1.0, "alpha": 1.0}, r"logistic: unknown parameter 'alpha'; allowed: C, "),
    ("xgboost", {"n_estimatrs": 10}, r"xgboost: unknown parameter 'n_estimatrs'; allowed: "),
    ("xgboost", {"device": "cuda"}, r"xgboost: model.params may not set 'device'"),
])
def test_params_are_checked_by_name_against_the_library_estimator(
        kind: str, params: dict[str, object], message: str) -> None:
    with pytest.raises(ParamError, match=message) as caught:
        check_params(kind, params)
    assert caught.value.key in params
    with pytest.raises(ParamError, match=message):  # the estimator refuses them too
        make_estimator(kind, COLUMNS, params)


def test_known_params_pass_and_reach_the_library_estimator() -> None:
    check_params("xgboost", {"n_estimators": 10, "reg_lambda": 2.0})
    check_params("logistic", {"C": 0.5, "class_weight": "balanced"})
    X, y = dataset(500)
    est = RandomForestEstimator(COLUMNS, {"n_estimators": 7, "min_samples_leaf": 20}).fit(X, y)
    assert len(est.model_.estimators_) == 7 and est.model_.min_samples_leaf == 20
    assert est.model_.n_jobs == 2 and est.model_.random_state == 0
    with pytest.raises(ValueError, match="unknown model kind 'momentum'"):
        check_params("momentum", {})


def test_random_forest_is_deterministic_to_the_bit_in_any_batch_size() -> None:
    X, y = dataset(2_000)
    a = RandomForestEstimator(COLUMNS, LIGHT, seed=3).fit(X, y)
    b = RandomForestEstimator(COLUMNS, LIGHT, seed=3).fit(X, y)
    batch = a.predict_proba(X)
    np.testing.assert_array_equal(batch, b.predict_proba(X))
    np.testing.assert_array_equal(batch, a.predict_proba(X))
    c = RandomForestEstimator(COLUMNS, LIGHT, seed=4).fit(X, y)
    assert not np.array_equal(batch, c.predict_proba(X))
    rows = np.concatenate([a.predict_proba(X.iloc[i:i + 1]) for i in range(50)])
    np.testing.assert_array_equal(rows, batch[:50])
    assert a.model_.n_jobs == 2  # the single-job view did not change the fitted model
    clone = pickle.loads(pickle.dumps(a))
    assert "_serving_forest" not in clone.__dict__
    np.testing.assert_array_equal(clone.predict_proba(X.iloc[:3]), batch[:3])
