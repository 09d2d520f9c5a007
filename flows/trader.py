"""The ``trader`` flow: a long-running paper (or live) trader as a Prefect deployment.

One run per strategy (``tradeflow up`` starts one for each of ``trader.strategy`` and
``trader.also``); a second run of a strategy already trading is refused by the ledger's lock
(:mod:`trader.exclusive`). A run that crashes is started again by the automation in
:mod:`trader.restarts` with ``restart=True``; a restart loop ends after
``trader.max_restarts`` crashes within ``trader.restart_window_s``.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact
from prefect.runtime import deployment

from tradeflow.config import load_settings
from tradeflow.errors import UserError
from tradeflow.exchange.checks import check_against_exchange
from tradeflow.monitoring.logs import file_log
from tradeflow.strategy import load_strategy
from trader.app import run_trader
from trader.restarts import recent_crashes, restart_loop_message


@flow(name="trader", log_prints=True)
async def trader(strategy: str = "config/strategies/meanrev_xgb.yaml", mode: str = "paper",
                 config: str | None = None, max_candles: int | None = None,
                 resume_halted: bool = False, restart: bool = False) -> dict[str, object]:
    """Trade until cancelled (or ``max_candles``); publish a summary of the run.

    ``restart``: this run restarts a crashed one (set by the restart automation).
    """
    settings = load_settings(config or None)
    loaded = load_strategy(strategy)
    logger = get_run_logger()
    restarts = 0
    deployment_id = deployment.get_id()
    if deployment_id:
        window = settings.trader.restart_window_s
        restarts = await recent_crashes(deployment_id, strategy, window)
        if restart:
            logger.warning("restarting the trader of %s after a crash (%d in the last %g s)",
                           loaded.name, restarts, window)
            if restarts > settings.trader.max_restarts:
                raise UserError(restart_loop_message(loaded.name, restarts, window))
    check_against_exchange(settings)
    port = settings.trader.metrics_port_of(strategy) \
        if strategy in settings.trader.strategies else None
    with file_log(settings, "trader"):  # data/logs/trader.log, JSON lines
        summary = await run_trader(settings, loaded, mode=mode, max_candles=max_candles,
                                   resume_halted=resume_halted, metrics_port=port,
                                   restarts=restarts)
    description = f"Trader run of {summary.strategy} ({summary.mode})"
    await acreate_markdown_artifact(markdown=summary.markdown(), key="trader-run",
                                    description=description)
    logger.info("trader stopped after %d candles, equity %.2f", summary.candles,
                summary.equity)
    return {"candles": summary.candles, "orders": summary.orders, "fills": summary.fills,
            "equity": summary.equity, "model_versions": summary.model_versions}
