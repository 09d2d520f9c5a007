"""Champion/challenger promotion against a real MLflow registry (sqlite in a temp dir).

Models are trained on the simulator's market and scored by the promotion on the 2 held-out
days that none of them trained on.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from models import registry
from models.promotion import (
    Decision,
    EvaluationWindow,
    NoModelError,
    Score,
    SignatureMismatch,
    decide,
    run_promotion,
)
from models.tracking import register_training, train_and_log
from models.training import load_training_data
from tests.integration.models.test_training_support import (
    END_MS,
    EXCHANGE,
    fill_store,
    log_mismatched_version,
    strategy_data,
    write_profile,
    write_strategy,
)
from tradeflow.config import Settings, load_settings
from tradeflow.market.store import MarketStore
from tradeflow.strategy import PromotionSettings, StrategySettings

DAY_MS = 86_400_000
NAME = "promo"


@dataclass
class Env:
    root: Path
    profile: Path
    settings: Settings
    store: MarketStore


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("promotion")
    store_path = root / "market.duckdb"
    store = fill_store(store_path, 1.0)
    profile = write_profile(root, store_path, root / "mlflow")
    settings = load_settings(profile, env={})
    registry.configure_tracking(settings)
    yield Env(root, profile, settings, store)


def strategy(name: str = NAME, **overrides: Any) -> StrategySettings:
    return StrategySettings.model_validate(strategy_data(name, **overrides))


def train(env: Env, strat: StrategySettings, store: MarketStore | None = None) -> str:
    data = load_training_data(store or env.store, EXCHANGE, strat, END_MS)
    result = train_and_log(data, env.settings, {"end_ms": END_MS})
    return register_training(result).version


def promote(env: Env, strat: StrategySettings, store: MarketStore | None = None) -> Decision:
    return run_promotion(store or env.store, EXCHANGE, strat, END_MS)


@pytest.fixture(scope="module")
def first(env: Env) -> Decision:
    """The planted-signal XGBoost model, registered and promoted as the first champion."""
    train(env, strategy())
    return promote(env, strategy())


def test_first_model_becomes_champion_when_it_passes_the_thresholds(
    env: Env, first: Decision
) -> None:
    assert first.decision == "promoted", first.reason
    assert first.reason.startswith("first model: v1 passes the thresholds")
    score = first.challenger_score
    assert score is not None and score.value > 0 and score.trades >= 10
    champ = registry.champion(registry_name())
    assert champ is not None and champ.version == first.challenger.version
    tags = champ.tags
    assert tags["promotion.decision"] == "promoted"
    assert tags["promotion.champion_score"] == "n/a"
    assert float(tags["promotion.challenger_score"]) == pytest.approx(score.value, rel=1e-5)
    # Scored on the 2 held-out days, which the model never trained on.
    assert tags["promotion.window_ms"] == f"{END_MS - 2 * DAY_MS}-{END_MS}"
    assert int(tags["train_end_ms"]) <= END_MS - 2 * DAY_MS


def registry_name() -> str:
    return strategy().model_name


def test_worse_challengers_leave_the_champion_in_place(env: Env, first: Decision) -> None:
    champion_version = first.challenger.version
    # The same model with another seed: passes the thresholds but scores below the champion
    # on the window (2 days of 1m candles make a noisy judge: the seed alone moves the Sharpe).
    params = {**strategy().model.params, "random_state": 7}
    reseeded = train(env, strategy(model={"kind": "xgboost", "params": params}))
    kept = promote(env, strategy())
    assert kept.challenger.version == reseeded
    assert kept.decision == "kept_champion", kept.reason
    assert kept.challenger_score is not None and kept.champion_score is not None
    assert 0 < kept.challenger_score.value < kept.champion_score.value
    assert "does not beat champion v" + champion_version in kept.reason
    # A linear model loses money on the window after fees: refused outright.
    linear = train(env, strategy(model={"kind": "logistic"}))
    refused = promote(env, strategy())
    assert refused.decision == "rejected" and "no better than not trading" in refused.reason
    champ = registry.champion(registry_name())
    assert champ is not None and champ.version == champion_version
    for version, decision in ((reseeded, kept), (linear, refused)):
        tags = registry.get_version(registry_name(), version).tags
        assert tags["promotion.decision"] == decision.decision
        assert tags["promotion.reason"] == decision.reason
        assert tags["promotion.champion_version"] == champion_version
        assert float(tags["promotion.champion_score"]) == pytest.approx(
            decision.champion_score.value, rel=1e-5)  # type: ignore[union-attr]


def test_random_walk_model_is_refused(env: Env, tmp_path: Path) -> None:
    store = fill_store(":memory:", 0.0)
    strat = strategy("promo_random")
    train(env, strat, store)
    decision = promote(env, strat, store)
    assert decision.decision == "rejected", decision.reason
    assert "fails the thresholds" in decision.reason
    assert registry.champion(strat.model_name) is None


def test_signature_mismatch_is_rejected_with_a_clear_message(env: Env, first: Decision) -> None:
    champion_version = first.challenger.version
    bad = log_mismatched_version(env.settings, registry_name())
    with pytest.raises(SignatureMismatch) as err:
        promote(env, strategy())
    message = str(err.value)
    assert "\n" not in message
    assert f"tradeflow-{NAME} v{bad} does not take the strategy's candles" in message
    assert "missing column(s) volume" in message and "extra column(s) vwap" in message
    tags = registry.get_version(registry_name(), bad).tags
    assert tags["promotion.decision"] == "rejected" and tags["promotion.reason"] == message
    champ = registry.champion(registry_name())
    assert champ is not None and champ.version == champion_version


def test_no_model_is_a_clear_error(env: Env) -> None:
    with pytest.raises(NoModelError, match="no registered version of tradeflow-nothing"):
        promote(env, strategy("nothing"))


# -- the decision rules, on fabricated scores ----------------------------------------------
WINDOW = EvaluationWindow(END_MS - 2 * DAY_MS, END_MS)
RULES = PromotionSettings(metric="sharpe", min_trades=10, max_drawdown_pct=25,
                          min_improvement=0.5, evaluation_days=2)


def version(number: str, train_end_ms: int = END_MS - 2 * DAY_MS) -> registry.VersionInfo:
    return registry.VersionInfo("tradeflow-x", number, None, (), {"train_end_ms":
                                                                  str(train_end_ms)}, 0)


def score(number: str, value: float, trades: int = 50, drawdown: float = 0.05) -> Score:
    return Score(number, "sharpe", value, {"sharpe": value, "trade_count": trades,
                                          "max_drawdown": drawdown, "total_return": 0.01,
                                          "auc": 0.6})


def test_decision_rules() -> None:
    def run(c: Score, k: Score | None, **kw: Any) -> Decision:
        champ = kw.pop("champion", version("1") if k is not None else None)
        return decide("tradeflow-x", RULES, WINDOW, kw.pop("challenger", version("2")), c,
                      champ, k, **kw)

    assert run(score("2", 2.0), score("1", 1.4)).decision == "promoted"
    # Better, but by less than min_improvement 0.5.
    assert run(score("2", 1.8), score("1", 1.4)).decision == "kept_champion"
    assert run(score("2", 1.0), score("1", 1.4)).decision == "kept_champion"
    assert run(score("2", 2.0, trades=3), None).decision == "rejected"
    assert "30.00% > 25%" in run(score("2", 2.0, drawdown=0.3), None).reason
    assert run(score("2", -0.1), None).decision == "rejected"
    assert run(score("2", 0.2), None).decision == "promoted"
    gone = run(score("2", 0.2), None, champion=version("1"), champion_error="bad signature")
    assert gone.decision == "promoted" and "bad signature" in gone.reason
    same = run(score("1", 1.0), score("1", 1.0), challenger=version("1"))
    assert same.decision == "kept_champion" and "already holds" in same.reason
    assert not same.recorded  # the champion keeps the tags of the decision that promoted it


def test_overlapping_training_is_called_out() -> None:
    inside = END_MS - DAY_MS  # trained up to one day into the evaluation window
    noted = decide("tradeflow-x", RULES, WINDOW, version("2"), score("2", 2.0),
                   version("1", inside), score("1", 3.0))
    assert noted.decision == "kept_champion"
    assert "champion v1 was trained on data up to" in noted.reason
    assert "overlapping the evaluation window" in noted.reason
    assert "in-sample" in noted.tags()["promotion.reason"]
    refused = decide("tradeflow-x", RULES, WINDOW, version("2", inside), score("2", 5.0),
                     version("1"), score("1", 1.0))
    assert refused.decision == "rejected" and "inside the evaluation window" in refused.reason
    itself = decide("tradeflow-x", RULES, WINDOW, version("1", inside), score("1", 5.0),
                    version("1", inside), score("1", 5.0))
    assert itself.decision == "kept_champion" and "this score is in-sample" in itself.reason


def test_cli_train_promote_and_models(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    from cli.main import main

    path = write_strategy(env.root, "cli_check")
    base = ["--config", str(env.profile)]
    assert main([*base, "models", "--strategy", str(path)]) == 0
    assert "no registered model versions for tradeflow-cli_check" in capsys.readouterr().out
    assert main([*base, "train", "--strategy", str(path), "--end", str(END_MS)]) == 0
    out = capsys.readouterr().out
    for text in ("baseline:logistic", "baseline:momentum", "auc", "sharpe", "max_drawdown",
                 "trades", "MLflow run: ", "registered: tradeflow-cli_check version 1"):
        assert text in out, text
    assert main([*base, "promote", "--strategy", str(path), "--end", str(END_MS)]) == 0
    out = capsys.readouterr().out
    assert "tradeflow-cli_check: PROMOTED" in out and "reason:" in out and "champion:" in out
    assert main([*base, "models", "--strategy", str(path)]) == 0
    out = capsys.readouterr().out
    assert "*1" in out and "champion" in out and "promoted" in out
    assert main([*base, "promote", "--strategy", str(env.root / "missing.yaml")]) == 2
