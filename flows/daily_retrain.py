"""The ``daily-retrain`` flow: backfill, then validate, then train, then promote.

On a DuckLake market store (the scale profile) the store is compacted after validation.

Each step is the same flow that has its own deployment, run here as a subflow; the first
failure (a series that could not be backfilled, too many bad candles, a training error, a
model that does not take the strategy's candles) fails the whole run and later steps don't
start. Training and promotion windows end at the newest candle every symbol has.
"""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows.backfill import backfill
from flows.promote import promote
from flows.train import train
from flows.validate import validate
from models.job import open_job
from tasks.market import compact_store_task
from tradeflow.config import load_settings
from tradeflow.market.gaps import stored_end
from tradeflow.monitoring.push import flow_metrics


@flow(name="daily-retrain", log_prints=True)
async def daily_retrain(
    strategy: str = "config/strategies/meanrev_xgb.yaml",
    config: str | None = None,
    backfill_days: float | None = None,
    validate_days: float | None = None,
) -> dict[str, object]:
    """Bring data up to date, check it, train a challenger and let it compete."""
    # No tracking here: train and promote are runs of their own and open their own jobs.
    job = open_job(load_settings(config), strategy, tracking=False)
    strat = job.strategy
    symbols, timeframes = list(strat.symbols), [strat.timeframe]
    # The steps push their own figures; this group says the whole retrain ran (or failed).
    with flow_metrics(job.settings, "daily-retrain"):
        await backfill(symbols=symbols, timeframes=timeframes, days=backfill_days,
                       config=config)
        validate(symbols=symbols, timeframes=timeframes, window_days=validate_days,
                 config=config)
        if job.settings.store.engine == "ducklake":  # many small files from the day's writers
            compact_store_task(job.store)
        end = stored_end(job.store, job.exchange, strat.symbols, strat.timeframe)
        trained = train(strategy, config=config, end=end)
        decision = promote(strategy, config=config, end=end)
    get_run_logger().info("retrain done: %s v%s, %s", trained["model"], trained["version"],
                          decision["decision"])
    return {"trained": trained, "promotion": decision}
