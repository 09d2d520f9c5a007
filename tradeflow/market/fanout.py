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
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tradeflow.config import BackfillSettings, ExchangeSettings, Settings
from tradeflow.market.backfill import SeriesFailed, SeriesReport, Window, backfill_series
from tradeflow.market.service import (
    BackfillOutcome,
    BackfillRequest,
    exchange_now,
    open_store,
    prepare_window,
    say_stderr,
    series_keys,
)
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
    keys = series_keys(settings)
    # Up to `concurrency` jobs run at once, each with its own client: together they may use
    # one client's request rate, so each gets 1/concurrency of it.
    share = settings.exchange.rate_limit_share / max(1, min(settings.backfill.concurrency,
                                                            len(keys)))
    exchange = settings.exchange.model_copy(
        update={"api_key": None, "api_secret": None, "rate_limit_share": share})
    return [SeriesJob(key, window, now_ms, exchange, settings.store_path,
                      settings.store.lock_retries, settings.backfill.page_limit)
            for key in keys]


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



def dask_cluster_kwargs(backfill: BackfillSettings) -> dict[str, Any]:
    """``distributed.LocalCluster`` arguments of the temporary cluster (no dask_address).

    One thread per worker process: a job spends its time in its own event loop and in
    DuckDB, so parallelism comes from processes, and the caller bounds how many run at once.
    """
    return {"n_workers": backfill.dask_workers, "threads_per_worker": 1, "processes": True,
            "dashboard_address": None}


async def plan_fanout(settings: Settings, request: BackfillRequest,
                      say: Callable[[str], object]) -> list[SeriesJob]:
    """The jobs of a fanned-out backfill, all up to the exchange's clock read once now."""
    from tradeflow.exchange.ccxt_client import ExchangeClient

    store = open_store(settings)  # the schema exists before the workers race to create it
    try:
        async with ExchangeClient(settings.exchange) as client:
            now_ms = await exchange_now(client, settings)
        window = prepare_window(request, settings, now_ms, store, say)
    finally:
        store.close()
    return plan_jobs(settings, window, now_ms)


def run_backfill_on_dask(settings: Settings, request: BackfillRequest) -> BackfillOutcome:
    """The CLI's backfill when ``backfill.task_runner`` is ``dask`` (no Prefect needed).

    One :func:`run_job` per series on the cluster at ``backfill.dask_address`` (else a
    temporary local cluster), at most ``backfill.concurrency`` at once, like the flow's
    fan-out; a line on stderr as each series finishes.
    """
    # The scheduler's and workers' INFO chatter would bury the progress lines; warnings stay.
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")  # worker processes
    logging.getLogger("distributed").setLevel(logging.WARNING)
    from distributed import Client, LocalCluster, as_completed

    jobs = asyncio.run(plan_fanout(settings, request, say_stderr))
    address = settings.backfill.dask_address
    cluster = None if address else LocalCluster(**dask_cluster_kwargs(settings.backfill))
    outcome = BackfillOutcome(settings.store_path)
    reports: dict[SeriesKey, SeriesReport] = {}
    try:
        with Client(address or cluster) as client:
            where = address or f"a local cluster of {settings.backfill.dask_workers} processes"
            say_stderr(f"backfill of {len(jobs)} series on Dask ({where})")
            pending = list(jobs)
            running = as_completed()
            submitted: dict[Any, SeriesJob] = {}
            while pending or running.count():
                while pending and running.count() < settings.backfill.concurrency:
                    job = pending.pop(0)
                    future = client.submit(run_job, job, pure=False, key=f"backfill-{job.key}")
                    submitted[future] = job
                    running.add(future)
                future = next(running)
                job = submitted.pop(future)
                error = future.exception()
                report = outcome_report(job.key, error if error is not None else future.result())
                reports[job.key] = report
                say_stderr(f"[{len(reports)}/{len(jobs)}] {job.key.symbol} {job.key.timeframe}: "
                           f"{report.status}, {report.count:,} candles")
    finally:
        if cluster is not None:
            cluster.close()
    outcome.reports = [reports[job.key] for job in jobs]
    return outcome
