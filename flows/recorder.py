"""The ``recorder`` flow: order flow (trades, book snapshots, tickers) into the market store,
as a Prefect deployment that runs until cancelled."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from tradeflow.config import load_settings
from tradeflow.exchange.checks import check_against_exchange
from tradeflow.monitoring.logs import file_log
from tradeflow.recorder.recorder import record


@flow(name="recorder", log_prints=True)
async def recorder(config: str | None = None, symbols: list[str] | None = None,
                   seconds: float | None = None) -> dict[str, object]:
    """Record until cancelled (or ``seconds``); publish what was stored."""
    settings = load_settings(config)
    check_against_exchange(settings)
    with file_log(settings, "recorder"):  # data/logs/recorder.log, JSON lines
        summary = await record(settings, symbols=tuple(symbols) if symbols else None,
                               seconds=seconds)
    create_markdown_artifact(markdown=f"**Order-flow recorder**: {summary.line()}",
                             key="recorder-run", description="Order-flow recorder run")
    get_run_logger().info(summary.line())
    return {"stored": summary.stored, "holes_filled": summary.holes_filled,
            "resyncs": summary.resyncs, "reconnects": summary.reconnects}
