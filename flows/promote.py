"""The ``promote`` flow: score the newest version and the champion on the same recent window.

Completes whatever the decision (the decision is the result); fails when there is no model
or the newest version's signature does not take the strategy's raw candles.
"""

from __future__ import annotations

import time

from prefect import flow, get_run_logger

from tasks.training import (
    apply_decision_task,
    decide_task,
    evaluate_task,
    find_candidates_task,
    publish_promotion_artifact,
)
from tradeflow.config import load_settings
from tradeflow.market.store import open_store
from tradeflow.strategy import load_strategy


@flow(name="promote", log_prints=True)
def promote(
    strategy: str,
    config: str | None = None,
    end: str | int | None = None,
) -> dict[str, object]:
    """Promote the newest version to champion only if it wins after fees."""
    from models.training import resolve_end

    settings = load_settings(config)
    strat = load_strategy(strategy)
    end_ms = resolve_end(end, strat.timeframe, int(time.time() * 1000))
    found = find_candidates_task(settings, strat.model_name)
    evaluated = evaluate_task(settings, open_store(settings), strat, found, end_ms)
    decision = decide_task(evaluated, strat.promotion)
    apply_decision_task(decision, settings)
    publish_promotion_artifact(decision, strat)
    get_run_logger().info("%s", decision.text())
    return {"model": strat.model_name, "decision": decision.decision, "reason": decision.reason,
            "challenger": decision.challenger.version,
            "champion": decision.champion.version if decision.champion else None,
            **{k: v for k, v in decision.tags().items() if k.endswith("_score")}}
