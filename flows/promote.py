"""The ``promote`` flow: score the newest version and the champion on the same recent window.

Completes whatever the decision (the decision is the result); fails when there is no model
or the newest version's signature does not take the strategy's raw candles.
"""

from __future__ import annotations

from prefect import flow, get_run_logger

from models.job import open_job
from tasks.training import (
    apply_decision_task,
    decide_task,
    evaluate_task,
    find_candidates_task,
    publish_promotion_artifact,
)
from tradeflow.config import load_settings
from tradeflow.monitoring.push import flow_metrics, record_promotion


@flow(name="promote", log_prints=True)
def promote(
    strategy: str,
    config: str | None = None,
    end: str | int | None = None,
) -> dict[str, object]:
    """Promote the newest version to champion only if it wins after fees."""
    job = open_job(load_settings(config), strategy, end=end)
    with flow_metrics(job.settings, "promote") as metrics:
        found = find_candidates_task(job.strategy.model_name)
        evaluated = evaluate_task(job.store, job.exchange, job.strategy, found, job.end_ms,
                                  job.order_flow())
        decision = decide_task(evaluated, job.strategy.promotion)
        apply_decision_task(decision)
        publish_promotion_artifact(decision, job.strategy)
        get_run_logger().info("%s", decision.text())
        out = {"model": job.strategy.model_name, "decision": decision.decision,
               "reason": decision.reason,
               "challenger": decision.challenger.version,
               "champion": decision.champion.version if decision.champion else None,
               **{k: v for k, v in decision.tags().items() if k.endswith("_score")}}
        record_promotion(metrics, out)
    return out
