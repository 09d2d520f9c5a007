"""The ``trader`` flow: a long-running paper (or live) trader as a Prefect deployment."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact

from tradeflow.config import load_settings
from tradeflow.exchange.checks import check_against_exchange
from tradeflow.monitoring.logs import file_log
from trader.app import run_trader


@flow(name="trader", log_prints=True)
async def trader(strategy: str = "config/strategies/meanrev_xgb.yaml", mode: str = "paper",
                 config: str | None = None, max_candles: int | None = None,
                 resume_halted: bool = False) -> dict[str, object]:
    """Trade until cancelled (or ``max_candles``); publish a summary of the run."""
    settings = load_settings(config)
    check_against_exchange(settings)
    with file_log(settings, "trader"):  # data/logs/trader.log, JSON lines
        summary = await run_trader(settings, strategy, mode=mode, max_candles=max_candles,
                                   resume_halted=resume_halted)
    description = f"Trader run of {summary.strategy} ({summary.mode})"
    await acreate_markdown_artifact(markdown=summary.markdown(), key="trader-run",
                                    description=description)
    get_run_logger().info("trader stopped after %d candles, equity %.2f", summary.candles,
                          summary.equity)
    return {"candles": summary.candles, "orders": summary.orders, "fills": summary.fills,
            "equity": summary.equity, "model_versions": summary.model_versions}
