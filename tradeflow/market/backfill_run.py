"""Running a planned backfill: the command line's two ways, and jobs for other processes.

Every way runs its series through the one bounded runner,
:func:`tradeflow.market.backfill.run_bounded`, at the plan's concurrency; only what one
series is differs: :func:`run_backfill` awaits each series in this event loop with one shared
client (:func:`~tradeflow.market.backfill.backfill_many`), :func:`run_backfill_on_dask` a Dask
future per series; the Prefect flow a task run per series, in its loop or on a Dask task runner.

A job that runs in another process (:class:`~tradeflow.market.backfill_plan.SeriesJob`) opens
its own client and store where it runs (:func:`run_job`). A DuckDB file is opened per
operation and retried while another process holds it (:mod:`tradeflow.market.store`), so
writers in several processes take turns; on DuckLake they write at once. Exchange API keys
never travel with a job.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from tradeflow.config import BackfillSettings, Settings
from tradeflow.market.backfill import (
    SeriesFailed,
    SeriesReport,
    backfill_many,
    backfill_series,
    coverage_frame,
    run_bounded,
)
from tradeflow.market.backfill_plan import (
    BackfillRequest,
    SeriesJob,
    plan_backfill,
    plan_with_own_client,
)
from tradeflow.market.store import MarketStore, SeriesKey, open_store


@dataclass(slots=True)
class BackfillOutcome:
    store_path: str
    reports: list[SeriesReport] = field(default_factory=list)

    @property
    def failed(self) -> list[SeriesReport]:
        return [r for r in self.reports if r.status != "ok"]

    def print_summary(self, file=None) -> None:  # noqa: ANN001 - a text stream
        out = file or sys.stdout
        frame = coverage_frame(self.reports).drop(columns=["error"])
        print(frame.to_string(index=False), file=out)
        total = sum(r.count for r in self.reports)
        print(f"\n{total:,} candles in {len(self.reports)} series stored in {self.store_path}",
              file=out)
        for r in self.failed:
            print(f"FAILED {r.key.symbol} {r.key.timeframe}: {r.error}", file=out)


# -- a series in another process ------------------------------------------------------------
class JobFailed(SeriesFailed):
    """:class:`SeriesFailed` that survives pickling back from a worker process."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.report, self.retryable))


async def run_job_async(job: SeriesJob) -> SeriesReport:
    """Backfill one series with a client and a store of this process's own."""
    from tradeflow.exchange.ccxt_client import ExchangeClient

    store = MarketStore(job.store_path, lock_retries=job.lock_retries,
                        catalog=job.store_catalog)
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
    DuckDB, so parallelism comes from processes, and :func:`run_bounded` bounds how many run.
    """
    return {"n_workers": backfill.dask_workers, "threads_per_worker": 1, "processes": True,
            "dashboard_address": None}


# -- the command line's backfill ----------------------------------------------------------------
async def run_backfill(settings: Settings, request: BackfillRequest, *,
                       show_progress: bool = True) -> BackfillOutcome:
    """Backfill every configured series in this event loop; progress bars on stderr."""
    from tradeflow.exchange.ccxt_client import ExchangeClient

    store = open_store(settings)
    outcome = BackfillOutcome(settings.store_path)
    async with ExchangeClient(settings.exchange) as client:
        plan = await plan_backfill(settings, request, client, store, say_stderr)
        progress, callback = _progress(list(plan.keys), show_progress)
        try:
            outcome.reports = await backfill_many(
                client, store, list(plan.keys), plan.window, plan.now_ms,
                concurrency=plan.concurrency, page_limit=plan.page_limit, progress=callback)
        finally:
            if progress is not None:
                progress.stop()
    return outcome


def run_backfill_on_dask(settings: Settings, request: BackfillRequest) -> BackfillOutcome:
    """The CLI's backfill when ``backfill.task_runner`` is ``dask`` (no Prefect needed).

    One :func:`run_job` per series on the cluster at ``backfill.dask_address`` (else a
    temporary local cluster), bounded by :func:`run_bounded` like the flow's fan-out; a line
    on stderr as each series finishes.
    """
    # The scheduler's and workers' INFO chatter would bury the progress lines; warnings stay.
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")  # worker processes
    logging.getLogger("distributed").setLevel(logging.WARNING)
    from distributed import Client, LocalCluster

    plan = asyncio.run(plan_with_own_client(settings, request, say_stderr))
    address = settings.backfill.dask_address
    cluster = None if address else LocalCluster(**dask_cluster_kwargs(settings.backfill))
    finished: list[SeriesJob] = []
    try:
        with Client(address or cluster) as client:
            where = address or f"a local cluster of {settings.backfill.dask_workers} processes"
            say_stderr(f"backfill of {len(plan.jobs)} series on Dask ({where})")

            async def on_dask(job: SeriesJob) -> SeriesReport:
                future = client.submit(run_job, job, pure=False, key=f"backfill-{job.key}")
                try:
                    return await asyncio.to_thread(future.result)
                except Exception as exc:  # the job's own error, re-raised here by Dask
                    return outcome_report(job.key, exc)

            def line(job: SeriesJob, report: SeriesReport) -> None:
                finished.append(job)
                say_stderr(f"[{len(finished)}/{len(plan.jobs)}] {job.key.symbol} "
                           f"{job.key.timeframe}: {report.status}, {report.count:,} candles")

            reports = asyncio.run(run_bounded(plan.jobs, on_dask, plan.concurrency, done=line))
    finally:
        if cluster is not None:
            cluster.close()
    return BackfillOutcome(settings.store_path, reports)


def say_stderr(line: str) -> None:
    """A progress or notice line for a terminal user (stdout keeps the summary)."""
    print(line, file=sys.stderr)


def _progress(keys: list[SeriesKey], show: bool):  # noqa: ANN202 - rich types stay local
    if not show:
        return None, None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    progress = Progress(TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(),
                        console=Console(stderr=True), transient=False)
    tasks = {k: progress.add_task(f"{k.symbol} {k.timeframe}", total=None) for k in keys}
    progress.start()

    def update(key: SeriesKey, done: int, expected: int) -> None:
        progress.update(tasks[key], completed=done, total=expected)

    return progress, update
