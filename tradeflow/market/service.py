"""Wiring of a whole backfill run from settings: client, store, window, progress, summary.

The CLI runs this directly (no Prefect server needed); the Prefect flow in ``flows/`` wires
the same plain functions as tasks.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from tradeflow.config import Settings
from tradeflow.errors import UserError
from tradeflow.exchange.types import ExchangeError
from tradeflow.market.backfill import (
    SeriesReport,
    Window,
    backfill_many,
    coverage_frame,
    parse_window,
)
from tradeflow.market.store import MarketStore, SeriesKey


@dataclass(frozen=True, slots=True)
class BackfillRequest:
    days: float | None = None
    since: str | None = None
    timerange: str | None = None
    recheck_unfillable: bool = False  # ask again for gaps recorded as unfillable in the window


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


def check_request(request: BackfillRequest) -> None:
    """Reject a malformed window (one line, :class:`UsageError`) before the exchange is asked."""
    import time

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


def open_store(settings: Settings) -> MarketStore:
    return MarketStore(settings.store_path, lock_retries=settings.store.lock_retries)


def stored_end(store: MarketStore, exchange: str, symbols: tuple[str, ...] | list[str],
               timeframe: str) -> int | None:
    """End of the history every symbol has: the close of the earliest last candle.

    Training and promotion windows end here, so they agree with what was backfilled even
    when the exchange's clock runs ahead of the wall clock (the accelerated simulator).
    """
    from tradeflow import timeframes

    lasts = []
    for symbol in symbols:
        bounds = store.bounds(SeriesKey(exchange, symbol, timeframe))
        if bounds is None:
            return None
        lasts.append(bounds[1])
    return timeframes.next_open(min(lasts), timeframe)


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


async def run_backfill(settings: Settings, request: BackfillRequest, *,
                       show_progress: bool = True) -> BackfillOutcome:
    """Backfill every configured series; progress bars on stderr when asked."""
    from tradeflow.exchange.ccxt_client import ExchangeClient

    keys = series_keys(settings)
    store = open_store(settings)
    outcome = BackfillOutcome(settings.store_path)
    async with ExchangeClient(settings.exchange) as client:
        now_ms = await exchange_now(client, settings)
        window = prepare_window(request, settings, now_ms, store, say_stderr)
        progress, callback = _progress(keys, show_progress)
        try:
            outcome.reports = await backfill_many(
                client, store, keys, window, now_ms,
                concurrency=settings.backfill.concurrency,
                page_limit=settings.backfill.page_limit, progress=callback,
            )
        finally:
            if progress is not None:
                progress.stop()
    return outcome


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
