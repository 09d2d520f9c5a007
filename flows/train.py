"""The ``train`` flow: load the window, walk-forward CV + final fit + MLflow run, register."""

from __future__ import annotations

from prefect import flow, get_run_logger

from models.job import open_job
from tasks.training import (
    load_training_data_task,
    publish_training_artifact,
    register_task,
    train_and_log_task,
)
from tradeflow.config import load_settings
from tradeflow.monitoring.push import flow_metrics, record_training


@flow(name="train", log_prints=True)
def train(
    strategy: str,
    config: str | None = None,
    end: str | int | None = None,
    window_days: float | None = None,
) -> dict[str, object]:
    """Train a strategy's model on its rolling window and register it as a new version."""
    job = open_job(load_settings(config), strategy, end=end)
    with flow_metrics(job.settings, "train") as metrics:
        data = load_training_data_task(job.store, job.exchange, job.strategy, job.end_ms,
                                       window_days, job.order_flow())
        result = train_and_log_task(data, job.settings, {
            "end_ms": job.end_ms, "window_days": window_days, "strategy_file": strategy})
        version = register_task(result)
        publish_training_artifact(result)
        name = job.strategy.model_name
        get_run_logger().info("registered %s v%s (run %s)", name, version.version,
                              result.run_id)
        main = result.main.metrics()
        out = {"model": name, "version": version.version, "run_id": result.run_id,
               "auc": main["auc"], "sharpe": main["sharpe"], "trades": int(main["trade_count"])}
        record_training(metrics, out)
    return out
