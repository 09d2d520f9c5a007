"""The ``train`` flow: load the window, walk-forward CV + final fit + MLflow run, register."""

from __future__ import annotations

import time

from prefect import flow, get_run_logger

from tasks.training import (
    load_training_data_task,
    publish_training_artifact,
    register_task,
    train_and_log_task,
)
from tradeflow.config import load_settings
from tradeflow.market.store import open_store
from tradeflow.strategy import load_strategy


@flow(name="train", log_prints=True)
def train(
    strategy: str,
    config: str | None = None,
    end: str | int | None = None,
    window_days: float | None = None,
) -> dict[str, object]:
    """Train a strategy's model on its rolling window and register it as a new version."""
    from models.training import resolve_end

    settings = load_settings(config)
    strat = load_strategy(strategy)
    end_ms = resolve_end(end, strat.timeframe, int(time.time() * 1000))
    store = open_store(settings)
    data = load_training_data_task(store, settings.exchange.id, strat, end_ms, window_days)
    result = train_and_log_task(data, settings, {"end_ms": end_ms, "window_days": window_days,
                                                 "strategy_file": strategy})
    version = register_task(result, settings)
    publish_training_artifact(result)
    get_run_logger().info("registered %s v%s (run %s)", strat.model_name, version.version,
                          result.run_id)
    main = result.main.metrics()
    return {"model": strat.model_name, "version": version.version, "run_id": result.run_id,
            "auc": main["auc"], "sharpe": main["sharpe"], "trades": int(main["trade_count"])}
