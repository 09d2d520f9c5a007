"""Training on the simulator's market: honest out-of-sample scores, MLflow run, pyfunc model.

Ground truth in both directions: with a planted signal XGBoost must find an edge that
survives fees; on a pure random walk it must find none, before or after costs (an edge there
would mean leakage).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from models import registry
from models.pyfunc import CandleModel, signature_problems
from models.tracking import register_training, train_and_log
from models.training import (
    TrainingData,
    TrainingResult,
    build_samples,
    data_hash,
    fit_and_evaluate,
    load_training_data,
)
from tests.integration.models.test_training_support import (
    END_MS,
    EXCHANGE,
    fill_store,
    strategy_data,
    write_profile,
)
from tradeflow.config import Settings, load_settings
from tradeflow.strategy import StrategySettings

DAY_MS = 86_400_000
MIN = 60_000


@dataclass
class Trained:
    strategy: StrategySettings
    data: TrainingData
    result: TrainingResult
    version: registry.VersionInfo


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """One MLflow sqlite store and artifact root for the module, under a temp dir."""
    root = tmp_path_factory.mktemp("training")
    profile = write_profile(root, root / "unused.duckdb", root / "mlflow")
    settings = load_settings(profile, env={})
    registry.configure_tracking(settings)
    yield settings


def train(settings: Settings, name: str, signal_strength: float) -> Trained:
    strategy = StrategySettings.model_validate(strategy_data(name))
    store = fill_store(":memory:", signal_strength)
    data = load_training_data(store, EXCHANGE, strategy, END_MS)
    result = train_and_log(data, settings, {"end_ms": END_MS})
    return Trained(strategy, data, result, register_training(result))


@pytest.fixture(scope="module")
def planted(settings: Settings) -> Trained:
    return train(settings, "planted", 1.0)


@pytest.fixture(scope="module")
def random_walk(settings: Settings) -> Trained:
    return train(settings, "randomwalk", 0.0)


def test_planted_signal_xgboost_beats_naive_baselines_after_fees(planted: Trained) -> None:
    evals = planted.result.evaluations
    model = evals["model"].metrics()
    flat, momentum = evals["flat"].metrics(), evals["momentum"].metrics()
    print("\nplanted:\n" + planted.result.table())
    assert model["auc"] > 0.55
    assert model["sharpe"] > 0 and model["total_return"] > 0
    assert model["trade_count"] >= 50
    # The edge is significant, not luck: the bootstrap interval of the Sharpe lies above 0.
    assert model["sharpe_ci_low"] > 0
    assert model["sharpe"] > flat["sharpe"] == 0.0 and flat["trade_count"] == 0
    assert model["sharpe"] > momentum["sharpe"] and model["auc"] > momentum["auc"]
    # Every fold of the walk-forward was scored.
    assert [f["samples"] > 0 for f in evals["model"].folds] == [True] * 4


def test_random_walk_has_no_edge_before_or_after_costs(random_walk: Trained) -> None:
    evals = random_walk.result.evaluations
    print("\nrandom walk:\n" + random_walk.result.table())
    for name in ("model", "logistic"):
        m = evals[name].metrics()
        assert abs(m["auc"] - 0.5) <= 0.02, (name, m["auc"])
        # Not significant after fees, and no edge before costs either.
        assert m["sharpe_ci_low"] <= 0 <= m["gross_sharpe_ci_high"], (name, m)
        assert m["gross_sharpe_ci_low"] <= 0, (name, m)


def test_training_never_sees_the_holdout(planted: Trained) -> None:
    window, data = planted.data.window, planted.data
    assert window.holdout_end_ms == END_MS
    assert window.end_ms == END_MS - 2 * DAY_MS
    assert window.start_ms == window.end_ms - 9 * DAY_MS
    for frame in data.candles.values():
        assert frame["open_time"].max() < window.end_ms
    pipeline = planted.result.pipeline
    samples = build_samples(data.candles, planted.strategy, pipeline, window.start_ms)
    labelled = np.isfinite(samples.label)
    # A label reads the close `horizon` candles later: never a candle of the holdout.
    assert samples.times[labelled].max() + 10 * MIN < window.end_ms
    assert samples.label_end[labelled].max() < window.end_ms
    np.testing.assert_array_equal(samples.label_end[labelled], samples.times[labelled] + 10 * MIN)
    assert samples.times.min() >= window.start_ms
    assert planted.result.labelled == int(labelled.sum())


def test_run_holds_config_metrics_plots_hash_and_version_tags(planted: Trained,
                                                              settings: Settings) -> None:
    import mlflow

    client = mlflow.MlflowClient()
    run = client.get_run(planted.result.run_id)
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    expected_hash = data_hash(planted.data.candles)
    assert planted.result.data_hash == expected_hash
    assert params["data_hash"] == tags["data_hash"] == expected_hash
    assert params["strategy.label.horizon"] == "10"
    assert params["strategy.model.params.n_estimators"] == "200"
    assert params["strategy.costs.taker_bps"] == "5.0"
    assert "api_key" not in " ".join(params) and "api_secret" not in " ".join(params)
    assert metrics["oos.auc"] == pytest.approx(planted.result.main.auc)
    assert "baseline.flat.sharpe" in metrics and "baseline.momentum.auc" in metrics
    history = client.get_metric_history(run.info.run_id, "fold.auc")
    assert sorted(m.step for m in history) == [1, 2, 3, 4]
    # Non-finite values are skipped and named: the flat baseline never trades.
    assert "baseline.flat.profit_factor=nan" in tags["metrics.skipped"]
    assert "baseline.flat.profit_factor" not in metrics
    assert tags["train_end_ms"] == str(planted.data.window.end_ms)
    files = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert files == {"plots/feature_importance.png", "plots/oos_equity.png"}
    local = Path(client.download_artifacts(run.info.run_id, "config/resolved.yaml"))
    config = yaml.safe_load(local.read_text())
    assert config["strategy"]["name"] == "planted"
    assert config["strategy"]["label"]["horizon"] == 10
    assert config["request"]["end_ms"] == END_MS
    assert config["settings"]["mlflow"]["tracking_uri"] == settings.mlflow_tracking_uri
    assert "api_key" not in config["settings"]["exchange"]
    version = planted.version
    assert version.version == "1" and version.run_id == planted.result.run_id
    for key in ("strategy", "train_start", "train_end", "data_hash", "run_id", "oos.auc",
                "oos.sharpe", "oos.trade_count"):
        assert key in version.tags, key
    assert version.tags["data_hash"] == expected_hash
    assert float(version.tags["oos.sharpe"]) == pytest.approx(planted.result.main.backtest
                                                              .metrics.sharpe, rel=1e-5)


def candle_window(trained: Trained, rows: int) -> pd.DataFrame:
    parts = [frame.iloc[-rows:].assign(symbol=symbol)
             for symbol, frame in trained.data.candles.items()]
    out = pd.concat(parts, ignore_index=True)
    return out[["symbol", "open_time", "open", "high", "low", "close", "volume"]]


def test_logged_pyfunc_predicts_like_the_in_process_model(planted: Trained) -> None:
    import mlflow.pyfunc

    name = planted.strategy.model_name
    loaded = mlflow.pyfunc.load_model(f"models:/{name}/{planted.version.version}")
    assert signature_problems(loaded.metadata.signature) == []
    assert loaded.metadata.get_input_schema().input_names() == [
        "symbol", "open_time", "open", "high", "low", "close", "volume"]
    model = planted.result.model
    warmup = model.warmup
    window = candle_window(planted, warmup + 300)
    got = loaded.predict(window)
    want = model.predict_frame(window)
    assert list(got.columns) == ["symbol", "open_time", "probability"]
    assert len(got) == len(window)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want, check_dtype=False)
    per_symbol = got.groupby("symbol", sort=False)["probability"]
    assert per_symbol.apply(lambda p: p.iloc[:warmup].isna().all()).all()
    assert per_symbol.apply(lambda p: p.iloc[warmup:].notna().all()).all()
    python_model = loaded.unwrap_python_model()
    assert isinstance(python_model, CandleModel)
    assert python_model.warmup == warmup and python_model.timeframe == "1m"
    for symbol, part in window.groupby("symbol", sort=False):
        last = python_model.predict_last(part.drop(columns="symbol").reset_index(drop=True))
        assert last == got.loc[got["symbol"] == symbol, "probability"].iloc[-1]
        # The shortest window the trader may serve gives the same number.
        assert python_model.predict_last(part.iloc[-(warmup + 1):]) == pytest.approx(last,
                                                                                     rel=1e-9)
        assert np.isnan(python_model.predict_last(part.iloc[-warmup:]))
    # The champion helper loads by alias; the planted model is not champion yet.
    assert registry.champion(name) is None


def test_data_hash_sees_any_changed_candle(planted: Trained) -> None:
    candles = {s: f.copy() for s, f in planted.data.candles.items()}
    before = data_hash(candles)
    candles["ETH/USDT"].loc[500, "volume"] += 1e-9
    assert data_hash(candles) != before


def test_per_symbol_models_when_not_pooled(planted: Trained) -> None:
    strategy = StrategySettings.model_validate(strategy_data(
        "persymbol", model={"kind": "logistic"},
        training={"window_days": 9, "folds": 3, "pooled": False, "baselines": ["flat"]}))
    data = planted.data
    result = fit_and_evaluate(TrainingData(strategy, data.window, data.candles, data.data_hash))
    model = result.model
    assert sorted(model.estimators) == sorted(data.candles)
    assert model.estimators["BTC/USDT"] is not model.estimators["ETH/USDT"]
    main = result.main
    assert main.auc > 0.55 and [len(f) > 0 for f in main.folds] == [True] * 3
    # Each symbol has its own folds: both are tested from their own first block on.
    for symbol in data.candles:
        tested = (main.fold > 0) & (result_symbols(result, data) == symbol)
        assert tested.sum() > 0
    window = candle_window(planted, model.warmup + 50)
    out = model.predict_frame(window)
    assert out["probability"].notna().sum() == 2 * 50
    eth = window[window["symbol"] == "ETH/USDT"]
    assert model.predict_last(eth) == out["probability"].iloc[-1]
    with pytest.raises(ValueError, match="no model for symbol None"):
        model.predict_last(eth.drop(columns="symbol"))
    assert model.predict_last(eth.drop(columns="symbol"), "ETH/USDT") == model.predict_last(eth)


def result_symbols(result: TrainingResult, data: TrainingData) -> np.ndarray:
    samples = build_samples(data.candles, result.strategy, result.pipeline, data.window.start_ms)
    return samples.symbols


def test_secrets_and_passwords_stay_out_of_the_logged_config(planted: Trained) -> None:
    from models.tracking import flatten, resolved_config

    secret = load_settings(
        overrides={"mlflow": {"tracking_uri": "http://alice:pa55word@mlflow:5000"}},
        env={"TRADEFLOW_EXCHANGE__API_KEY": "key-123", "TRADEFLOW_EXCHANGE__API_SECRET": "xyz-9"},
    )
    config = resolved_config(planted.result, secret, {})
    text = yaml.safe_dump(config) + " ".join(f"{k}={v}" for k, v in flatten(config))
    for leaked in ("pa55word", "alice", "key-123", "xyz-9"):
        assert leaked not in text
    assert config["settings"]["mlflow"]["tracking_uri"] == "http://***@mlflow:5000"


def test_a_baseline_can_be_the_model_and_serves_from_raw_candles(planted: Trained) -> None:
    strategy = StrategySettings.model_validate(strategy_data(
        "momentum_model", model={"kind": "momentum"},
        training={"window_days": 9, "folds": 4, "baselines": ["flat"]}))
    data = planted.data
    result = fit_and_evaluate(TrainingData(strategy, data.window, data.candles, data.data_hash))
    model = result.model
    assert model.momentum_horizon == 10 and model.warmup == result.pipeline.warmup
    window = candle_window(planted, model.warmup + 20)
    out = model.predict_frame(window)
    btc = window[window["symbol"] == "BTC/USDT"].reset_index(drop=True)
    r = np.log(btc["close"].iloc[-1] / btc["close"].iloc[-11])
    scale = model.estimators["*"].scale_  # type: ignore[attr-defined]
    assert out["probability"].iloc[len(btc) - 1] == pytest.approx(1 / (1 + np.exp(-r / scale)))
    assert model.predict_last(btc) == out["probability"].iloc[len(btc) - 1]
    # On mean-reverting prices, betting on momentum is worse than a coin.
    assert result.main.auc < 0.45
