"""Prefect tasks of the train and promote flows: thin wrappers of models.* plain functions.

MLflow tracking is configured once per flow run, by the flow's :func:`models.job.open_job`;
the tasks run in that process (Prefect's default thread pool task runner) and rely on it.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from models.order_flow_data import OrderFlowReader
from models.promotion import (
    Candidates,
    Decision,
    Evaluated,
    apply_decision,
    decide_evaluated,
    evaluate_candidates,
    find_candidates,
)
from models.registry import VersionInfo
from models.tracking import register_training, train_and_log
from models.training import TrainingData, TrainingResult, load_training_data
from tradeflow.config import Settings
from tradeflow.errors import UserError
from tradeflow.market.store import MarketStore
from tradeflow.strategy import PromotionSettings, StrategySettings


def _transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry registry I/O, never a problem a retry cannot fix (no model, bad input)."""
    try:
        state.result()
    except UserError:
        return False
    except Exception:
        return True
    return False


def artifact_key(prefix: str, strategy: StrategySettings) -> str:
    """Prefect artifact keys allow lower-case letters, digits and dashes only."""
    return f"{prefix}-{strategy.name.replace('_', '-')}"


@task(name="load-training-data", cache_policy=NO_CACHE)
def load_training_data_task(store: MarketStore, exchange: str, strategy: StrategySettings,
                            end_ms: int, window_days: float | None,
                            order_flow: OrderFlowReader | None = None) -> TrainingData:
    """Load the validated candles of the training window (holdout excluded) and hash them."""
    return load_training_data(store, exchange, strategy, end_ms, window_days, order_flow)


@task(name="train-and-log", cache_policy=NO_CACHE)
def train_and_log_task(data: TrainingData, settings: Settings,
                       request: dict[str, Any]) -> TrainingResult:
    """Walk-forward CV of the model and baselines, final fit, one MLflow run."""
    return train_and_log(data, settings, request)


@task(name="register-model", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5,
      retry_condition_fn=_transient)
def register_task(result: TrainingResult) -> VersionInfo:
    """Register the logged model as a new version of tradeflow-<strategy>."""
    return register_training(result)


@task(name="publish-training-report", cache_policy=NO_CACHE)
def publish_training_artifact(result: TrainingResult) -> str:
    """Publish model vs baselines (out of sample, after fees) as a markdown artifact."""
    markdown = result.markdown()
    create_markdown_artifact(markdown=markdown, key=artifact_key("training", result.strategy),
                             description="Walk-forward scores of the model and its baselines")
    return markdown


@task(name="find-candidates", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5,
      retry_condition_fn=_transient)
def find_candidates_task(model_name: str) -> Candidates:
    """The newest version (challenger) and the champion."""
    return find_candidates(model_name)


@task(name="evaluate-candidates", cache_policy=NO_CACHE)
def evaluate_task(store: MarketStore, exchange: str, strategy: StrategySettings,
                  found: Candidates, end_ms: int,
                  order_flow: OrderFlowReader | None = None) -> Evaluated:
    """Score challenger and champion on the same evaluation window, after fees."""
    return evaluate_candidates(store, exchange, strategy, found, end_ms, order_flow)


@task(name="decide-promotion", cache_policy=NO_CACHE)
def decide_task(evaluated: Evaluated, rules: PromotionSettings) -> Decision:
    """Apply the promotion rules to the two scores."""
    return decide_evaluated(evaluated, rules)


@task(name="apply-promotion", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5,
      retry_condition_fn=_transient)
def apply_decision_task(decision: Decision) -> None:
    """Tag the challenger with the decision; move the champion alias when promoted."""
    apply_decision(decision)


@task(name="publish-promotion-report", cache_policy=NO_CACHE)
def publish_promotion_artifact(decision: Decision, strategy: StrategySettings) -> str:
    """Publish the decision, the reason and both scores as a markdown artifact."""
    markdown = decision.markdown()
    create_markdown_artifact(markdown=markdown, key=artifact_key("promotion", strategy),
                             description="Champion/challenger decision")
    return markdown
