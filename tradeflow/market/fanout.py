"""Backfill fanned out across processes or hosts: one self-contained job per series.

The local backfill shares one exchange client and one store among all series inside one event
loop. A task runner that spans processes (Dask through prefect-dask) cannot share them, so a
:class:`SeriesJob` carries only picklable settings and :func:`run_job` opens its own client and
store wherever it runs. The DuckDB file is opened per operation and retried while another
process holds it (:mod:`tradeflow.market.store`), so writers in several processes take turns.
Exchange API keys never travel with a job: candle history is public.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from tradeflow.config import ExchangeSettings, Settings
from tradeflow.market.backfill import SeriesFailed, SeriesReport, Window, backfill_series
from tradeflow.market.service import series_keys
from tradeflow.market.store import MarketStore, SeriesKey


@dataclass(frozen=True, slots=True)
class SeriesJob:
    """Everything one process needs to backfill one series (picklable, no secrets)."""

    key: SeriesKey
    window: Window
    now_ms: int
    exchange: ExchangeSettings
    store_path: str
    lock_retries: int
    page_limit: int

    def __str__(self) -> str:
        return str(self.key)


class JobFailed(SeriesFailed):
    """:class:`SeriesFailed` that survives pickling back from a worker process."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.report, self.retryable))


def plan_jobs(settings: Settings, window: Window, now_ms: int) -> list[SeriesJob]:
    """One job per configured series, all up to the same exchange time ``now_ms``."""
    exchange = settings.exchange.model_copy(update={"api_key": None, "api_secret": None})
    return [SeriesJob(key, window, now_ms, exchange, settings.store_path,
                      settings.store.lock_retries, settings.backfill.page_limit)
            for key in series_keys(settings)]


async def run_job_async(job: SeriesJob) -> SeriesReport:
    """Backfill one series with a client and a store of this process's own."""
    from tradeflow.exchange.ccxt_client import ExchangeClient

    store = MarketStore(job.store_path, lock_retries=job.lock_retries)
    try:
        async with ExchangeClient(job.exchange) as client:
            return await backfill_series(client, store, job.key, job.window, job.now_ms,
                                         page_limit=job.page_limit)
    except SeriesFailed as exc:
        raise JobFailed(exc.report, exc.retryable) from exc
    finally:
        store.close()


def run_job(job: SeriesJob) -> SeriesReport:
    """:func:`run_job_async` in an event loop of its own (worker threads have none)."""
    return asyncio.run(run_job_async(job))


def outcome_report(key: SeriesKey, outcome: object) -> SeriesReport:
    """The report of a finished job whatever happened; any other error fails the series."""
    if isinstance(outcome, SeriesReport):
        return outcome
    if isinstance(outcome, SeriesFailed):
        return outcome.report
    return SeriesReport(key, status="failed", error=f"{type(outcome).__name__}: {outcome}")

