"""Backfill planning: which series, which window, up to which exchange time, how many series
at once and what share of the exchange's request rate each client may use.

This is the one place those are decided. Every way a backfill runs (the CLI or the Prefect
flow, in one event loop or fanned out on Dask) plans here and then hands the plan to the one
bounded runner, :func:`tradeflow.market.backfill.run_bounded`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from tradeflow.config import ExchangeSettings, Settings
from tradeflow.errors import UserError
from tradeflow.exchange.types import ExchangeError
from tradeflow.market.backfill import Window, parse_window
from tradeflow.market.store import MarketStore, SeriesKey, open_store


@dataclass(frozen=True, slots=True)
class BackfillRequest:
    days: float | None = None
    since: str | None = None
    timerange: str | None = None
    recheck_unfillable: bool = False  # ask again for gaps recorded as unfillable in the window


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
    store_catalog: str | None = None  # DuckLake's catalog DSN; None: store_path is a DuckDB file

    def __str__(self) -> str:
        return str(self.key)


@dataclass(frozen=True, slots=True)
class BackfillPlan:
    """A planned backfill: the series, their window and exchange time, and the bounds."""

    keys: tuple[SeriesKey, ...]
    window: Window
    now_ms: int
    concurrency: int  # series fetched at once
    page_limit: int
    jobs: tuple[SeriesJob, ...]  # the same series as self-contained jobs, for other processes


def check_request(request: BackfillRequest) -> None:
    """Reject a malformed window (one line, :class:`UsageError`) before the exchange is asked."""
    if request.days is not None or request.since is not None or request.timerange is not None:
        parse_window(days=request.days, since=request.since, timerange=request.timerange,
                     now_ms=int(time.time() * 1000))


def series_keys(settings: Settings) -> list[SeriesKey]:
    return [SeriesKey(settings.exchange.id, s, tf)
            for s in settings.symbols for tf in settings.timeframes]


def window_for(request: BackfillRequest, settings: Settings, now_ms: int) -> Window:
    if request.days is None and request.since is None and request.timerange is None:
        return parse_window(days=settings.backfill.days, now_ms=now_ms)
    return parse_window(days=request.days, since=request.since, timerange=request.timerange,
                        now_ms=now_ms)


def forget_unfillable(store: MarketStore, keys: list[SeriesKey], window: Window) -> int:
    """For ``--recheck-unfillable``: forget the recorded unfillable gaps inside the window."""
    return sum(store.forget_unfillable(k, window.start, window.end) for k in keys)


def prepare_window(request: BackfillRequest, settings: Settings, now_ms: int,
                   store: MarketStore, say: Callable[[str], object]) -> Window:
    """The window of this run; with ``recheck_unfillable`` the gaps recorded as unfillable
    inside it are forgotten first (and ``say`` tells how many), so they are asked again."""
    window = window_for(request, settings, now_ms)
    if request.recheck_unfillable:
        dropped = forget_unfillable(store, series_keys(settings), window)
        say(f"asking again for {dropped} gap(s) recorded as unfillable")
    return window


async def exchange_now(client, settings: Settings) -> int:  # noqa: ANN001 - ExchangeClient
    """The exchange's clock; a clear error when the exchange cannot be reached."""
    try:
        return await client.fetch_time()
    except ExchangeError as exc:
        where = settings.exchange.base_url or settings.exchange.id
        hint = " (start the simulator with `tradeflow sim`)" if settings.exchange.base_url else ""
        raise UserError(f"cannot reach the exchange at {where}{hint}: {exc}") from None


def plan_jobs(settings: Settings, window: Window, now_ms: int) -> list[SeriesJob]:
    """One self-contained job per configured series, all up to the same exchange time.

    Series that share one client in one event loop share its request rate. Jobs in other
    processes each open a client of their own: up to ``backfill.concurrency`` of them run at
    once and together may use one client's rate, so each gets 1/concurrency of it.
    """
    keys = series_keys(settings)
    share = settings.exchange.rate_limit_share / max(1, min(settings.backfill.concurrency,
                                                            len(keys)))
    exchange = settings.exchange.model_copy(
        update={"api_key": None, "api_secret": None, "rate_limit_share": share})
    return [SeriesJob(key, window, now_ms, exchange, settings.store_path,
                      settings.store.lock_retries, settings.backfill.page_limit,
                      settings.store_catalog)
            for key in keys]


async def plan_backfill(settings: Settings, request: BackfillRequest, client,  # noqa: ANN001
                        store: MarketStore, say: Callable[[str], object]) -> BackfillPlan:
    """The plan of one run, up to the exchange's clock read once now through ``client``."""
    now_ms = await exchange_now(client, settings)
    window = prepare_window(request, settings, now_ms, store, say)
    return BackfillPlan(tuple(series_keys(settings)), window, now_ms,
                        settings.backfill.concurrency, settings.backfill.page_limit,
                        tuple(plan_jobs(settings, window, now_ms)))


async def plan_with_own_client(settings: Settings, request: BackfillRequest,
                               say: Callable[[str], object]) -> BackfillPlan:
    """:func:`plan_backfill` with a client and a store opened for planning only (fan-out)."""
    from tradeflow.exchange.ccxt_client import ExchangeClient

    store = open_store(settings)  # the schema exists before the workers race to create it
    try:
        async with ExchangeClient(settings.exchange) as client:
            return await plan_backfill(settings, request, client, store, say)
    finally:
        store.close()
