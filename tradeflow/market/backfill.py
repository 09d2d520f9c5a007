"""Backfill: bring one series of the market store up to date with the exchange.

For a series and a requested window it fetches, page by page, only what is missing:
older history before the first stored candle (unless the pair was listed later), newer
candles up to the last *closed* one by the exchange's own clock, and the interior gaps.
A gap the exchange answers empty twice is recorded as unfillable and not asked again, and so
is a candle it sends without prices (it cannot be stored; it is quarantined). Recorded gaps
are asked again only on request (``recheck_unfillable``). Every page is stored as it
arrives, so a killed run resumes where it stopped.

Each page is checked against the candle contract on arrival. Candles that break a hard rule
are stored as the exchange sent them (nothing is repaired) and also written to the
quarantine, which training reads around; the series report counts them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

import numpy as np
import pandas as pd

from tradeflow import timeframes
from tradeflow.contracts.rules import REFUSED_AT_STORE
from tradeflow.contracts.schemas import check_candles
from tradeflow.errors import UsageError
from tradeflow.exchange.types import ExchangeError
from tradeflow.market.gaps import find_gaps, subtract_ranges
from tradeflow.market.quarantine import add_quarantine, quarantine_rows
from tradeflow.market.store import MarketStore, SeriesKey

log = logging.getLogger(__name__)

EMPTY_TWICE = "exchange returned no candles for this range twice"
NO_PRICES = "exchange returned these candles without prices (see the quarantine)"
# A batch is stored once it holds this many pages or candles, or its first page is this
# old, whichever comes first: few transactions, yet a kill loses at most the batch being
# written and the one filling behind it.
FLUSH_PAGES = 5
FLUSH_CANDLES = 5_000
FLUSH_SECONDS = 2.0
MAX_GAP_PASSES = 3
Job = TypeVar("Job")
Result = TypeVar("Result")


class OhlcvSource(Protocol):
    """What backfill needs from an exchange (the adapter's ExchangeClient fits)."""

    async def fetch_ohlcv(self, symbol: str, timeframe: str, since: int | None = None,
                          limit: int | None = None, until: int | None = None) -> pd.DataFrame:
        ...


@dataclass(frozen=True, slots=True)
class Window:
    """Requested history: open times from ``start`` to ``end`` (None = up to now)."""

    start: int
    end: int | None = None


@dataclass(slots=True)
class SeriesReport:
    """Outcome of backfilling one series."""

    key: SeriesKey
    status: str = "ok"                 # ok | failed
    error: str | None = None
    pages: int = 0
    fetched: int = 0                   # candles received from the exchange
    stored: int = 0                    # rows written (new or replaced)
    first: int | None = None
    last: int | None = None
    count: int = 0
    missing: int = 0                   # grid candles still missing (not unfillable)
    unfillable: int = 0                # grid candles in recorded unfillable gaps
    quarantined: int = 0               # new quarantine entries: candles breaking hard rules
    new_unfillable: list[tuple[int, int]] = field(default_factory=list)


ProgressFn = Callable[[SeriesKey, int, int], None]  # (series, candles done, candles expected)


class SeriesFailed(Exception):
    """Backfilling a series failed; ``report`` holds what was done and the exchange's message."""

    def __init__(self, report: SeriesReport, retryable: bool) -> None:
        super().__init__(f"{report.key}: {report.error}")
        self.report = report
        self.retryable = retryable


def parse_window(*, days: float | None = None, since: str | None = None,
                 timerange: str | None = None, now_ms: int) -> Window:
    """Turn exactly one of --days / --since / --timerange into a window."""
    given = [name for name, v in (("--days", days), ("--since", since),
                                  ("--timerange", timerange)) if v is not None]
    if len(given) > 1:
        raise UsageError(f"give one of --days, --since, --timerange, not {' and '.join(given)}")
    if days is not None:
        most = now_ms / 86_400_000  # back to 1970-01-01, where exchange time starts
        if not (math.isfinite(days) and 0 < days <= most):
            raise UsageError(f"--days {days:g}: must be a number of days above 0 and at most "
                             f"{int(most):,} (back to 1970-01-01)")
        return Window(start=now_ms - int(days * 86_400_000))
    if since is not None:
        return _not_future(Window(start=_parse_date(since, "--since")), f"--since {since}",
                           now_ms)
    if timerange is not None:
        match = re.fullmatch(r"(\d*)-(\d*)", timerange.strip())
        if not match or not (match.group(1) or match.group(2)):
            raise UsageError(
                f"--timerange {timerange!r}: allowed forms are START-END, START- or -END "
                "with dates as YYYYMMDD or unix seconds, e.g. 20240101-20240301"
            )
        start = _parse_date(match.group(1), "--timerange") if match.group(1) else 0
        end = _parse_date(match.group(2), "--timerange") - 1 if match.group(2) else None
        if end is not None and end < start:
            raise UsageError(f"--timerange {timerange!r}: end is before start")
        return _not_future(Window(start=start, end=end), f"--timerange {timerange}", now_ms)
    raise UsageError("no window given")


def _not_future(window: Window, given: str, now_ms: int) -> Window:
    if window.start > now_ms:
        raise UsageError(f"{given}: starts in the future (now is {timeframes.iso(now_ms)} "
                         "UTC); nothing to backfill")
    return window


def _parse_date(text: str, flag: str) -> int:
    text = text.strip()
    try:
        if re.fullmatch(r"\d{8}", text):
            dt = datetime.strptime(text, "%Y%m%d").replace(tzinfo=UTC)
        elif re.fullmatch(r"\d{9,10}", text):
            return int(text) * 1000
        elif re.fullmatch(r"\d{13}", text):
            return int(text)
        else:
            dt = datetime.fromisoformat(text)
            dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    except ValueError:
        raise UsageError(
            f"{flag} {text!r}: not a date; allowed: YYYYMMDD, YYYY-MM-DD[THH:MM], unix seconds"
        ) from None
    return int(dt.timestamp() * 1000)


def days_ago(now_ms: int, days: float) -> int:
    return int((datetime.fromtimestamp(now_ms / 1000, UTC) - timedelta(days=days)).timestamp()
               * 1000)


class _Writer:
    """Checks fetched pages against the candle contract and writes them in batches.

    A batch is checked and written in a worker thread while the next pages download
    (DuckDB and numpy release the GIL); ``flush`` waits until everything is stored.
    """

    def __init__(self, store: MarketStore, key: SeriesKey, report: SeriesReport) -> None:
        self.store, self.key, self.report = store, key, report
        self.pages: list[pd.DataFrame] = []
        self.rows = 0
        self.since = 0.0  # monotonic time the oldest buffered page arrived
        self.pending: asyncio.Future[None] | None = None

    async def add(self, page: pd.DataFrame) -> None:
        if not page.empty:
            if not self.pages:
                self.since = time.monotonic()
            self.pages.append(page)
            self.rows += len(page)
        if self.pages and (len(self.pages) >= FLUSH_PAGES or self.rows >= FLUSH_CANDLES
                           or time.monotonic() - self.since >= FLUSH_SECONDS):
            await self._start_write()

    async def flush(self) -> None:
        await self._start_write()
        await self._wait()

    async def _start_write(self) -> None:
        await self._wait()  # one batch in flight keeps writes in order
        if self.pages:
            batch = pd.concat(self.pages, ignore_index=True) if len(self.pages) > 1 \
                else self.pages[0]
            self.pages, self.rows = [], 0
            self.pending = asyncio.ensure_future(asyncio.to_thread(self._write, batch))

    async def _wait(self) -> None:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            await pending

    def _write(self, batch: pd.DataFrame) -> None:
        # The contract is checked on the whole batch: pandera's cost is mostly per call.
        check = check_candles(batch, self.key.timeframe)
        if not check.ok:
            log.warning("%s: candles from %s: %s", self.key,
                        timeframes.iso(int(batch["open_time"].min())), check.summary())
            bad = quarantine_rows(batch, check)
            # Quarantine first: a run killed in between leaves no bad candle unlisted.
            self.report.quarantined += add_quarantine(self.store, self.key, bad, source="rest")
            # A candle without a true price cannot be stored (the store refuses it); it stays
            # quarantined.
            unstorable = bad.loc[bad["rule"].isin(REFUSED_AT_STORE), "open_time"]
            if not unstorable.empty:
                batch = batch[~batch["open_time"].isin(unstorable)]
                # Recorded as unfillable too, so gap repair stops asking for them on every
                # run; `--recheck-unfillable` asks again.
                for lo, hi, n in runs_on_grid(unstorable.to_numpy(), self.key.timeframe):
                    self.store.record_unfillable(self.key, lo, hi, n, NO_PRICES)
                    self.report.new_unfillable.append((lo, hi))
        self.report.stored += self.store.upsert(
            batch, exchange=self.key.exchange, symbol=self.key.symbol,
            timeframe=self.key.timeframe,
        )


async def backfill_series(
    source: OhlcvSource,
    store: MarketStore,
    key: SeriesKey,
    window: Window,
    now_ms: int,
    *,
    page_limit: int = 1000,
    progress: ProgressFn | None = None,
    empty_retry_delay: float = 0.5,
) -> SeriesReport:
    """Fetch what the store lacks for one series within ``window`` up to the last closed candle.

    Raises :class:`SeriesFailed` (carrying the report and the exchange's message) when the
    exchange fails after the adapter's retries; everything stored before that stays stored.
    """
    report = SeriesReport(key)
    try:
        await _backfill(source, store, key, window, now_ms, page_limit, progress,
                        empty_retry_delay, report)
    except ExchangeError as exc:
        report.status, report.error = "failed", f"{exc.kind}: {exc}"
        await asyncio.to_thread(summarise, store, report)
        raise SeriesFailed(report, exc.retryable) from exc
    await asyncio.to_thread(summarise, store, report)
    return report


async def _backfill(source: OhlcvSource, store: MarketStore, key: SeriesKey, window: Window,
                    now_ms: int, page_limit: int, progress: ProgressFn | None,
                    empty_retry_delay: float, report: SeriesReport) -> None:
    tf = key.timeframe
    last_closed = timeframes.last_closed_open(now_ms, tf)
    start = _ceil(window.start, tf)
    end = last_closed if window.end is None else min(last_closed, timeframes.floor(window.end, tf))
    if end < start:
        return
    # Store calls run in a worker thread: the event loop keeps other series downloading.
    listed = await asyncio.to_thread(store.listed_from, key)
    if listed is not None:
        start = max(start, listed)
    expected = timeframes.count_between(start, end, tf)
    done = 0
    writer = _Writer(store, key, report)

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(key, min(done, expected), expected)

    bounds = await asyncio.to_thread(store.bounds, key)
    ranges: list[tuple[int, int]] = []
    if bounds is None:
        ranges.append((start, end))
    else:
        first, last, count = bounds
        tick(count)
        if start < first:
            ranges.append((start, timeframes.previous_open(first, tf)))
        if last < end:
            ranges.append((timeframes.next_open(last, tf), end))
    try:
        for i, (lo, hi) in enumerate(ranges):
            got_first = await _fetch_range(source, writer, key, lo, hi, page_limit, tick,
                                           report)
            # The head range answered from a later candle: the pair was listed after `start`.
            head = bounds is None or lo < bounds[0]
            if i == 0 and head and got_first is not None and got_first > lo:
                await writer.flush()
                await asyncio.to_thread(store.set_listed_from, key, got_first)
    finally:
        await writer.flush()  # what arrived before a failure is stored, not dropped
    await _repair_gaps(source, store, writer, key, page_limit, tick, empty_retry_delay, report)


async def iter_pages(source: OhlcvSource, symbol: str, timeframe: str, lo: int, hi: int,
                     page_limit: int = 1000) -> AsyncIterator[tuple[int, pd.DataFrame]]:
    """Page forward through open times [lo, hi]: yields (rows received, rows in range)."""
    since = lo
    while since <= hi:
        page = await source.fetch_ohlcv(symbol, timeframe, since=since, limit=page_limit,
                                        until=hi)
        received = len(page)
        page = page[(page["open_time"] >= since) & (page["open_time"] <= hi)]
        yield received, page
        if page.empty:
            return
        # max, not the last row: an out-of-order page must not send paging backwards.
        since = timeframes.next_open(int(page["open_time"].max()), timeframe)


async def _fetch_range(source: OhlcvSource, writer: _Writer, key: SeriesKey, lo: int, hi: int,
                       page_limit: int, tick: Callable[[int], None],
                       report: SeriesReport) -> int | None:
    """Page forward through [lo, hi] into the writer; the first open time received, if any."""
    first_seen = None
    async for received, page in iter_pages(source, key.symbol, key.timeframe, lo, hi,
                                           page_limit):
        report.pages += 1
        report.fetched += received
        if page.empty:
            break
        if first_seen is None:
            first_seen = int(page["open_time"].iloc[0])
        await writer.add(page)
        tick(len(page))
    return first_seen


async def _repair_gaps(source: OhlcvSource, store: MarketStore, writer: _Writer, key: SeriesKey,
                       page_limit: int, tick: Callable[[int], None], empty_retry_delay: float,
                       report: SeriesReport) -> None:
    """Re-fetch exactly the missing ranges; record the ones the exchange cannot fill."""
    empty_once: set[tuple[int, int]] = set()
    for _ in range(MAX_GAP_PASSES):
        gaps = await asyncio.to_thread(_open_gaps, store, key)
        if gaps.empty:
            return
        for lo, hi, missing in gaps.itertuples(index=False):
            got = await _fetch_range(source, writer, key, int(lo), int(hi), page_limit, tick,
                                     report)
            await writer.flush()
            if got is not None:
                continue
            if (lo, hi) in empty_once:
                await asyncio.to_thread(store.record_unfillable, key, int(lo), int(hi),
                                        int(missing), EMPTY_TWICE)
                report.new_unfillable.append((int(lo), int(hi)))
                log.info("%s: unfillable gap %s .. %s (%d candles)", key,
                         timeframes.iso(int(lo)), timeframes.iso(int(hi)), missing)
            else:
                empty_once.add((lo, hi))
        if empty_once and empty_retry_delay:
            await asyncio.sleep(empty_retry_delay)


def runs_on_grid(open_times: np.ndarray, timeframe: str) -> list[tuple[int, int, int]]:
    """Consecutive runs of grid open times as (first, last, count), in order."""
    runs: list[tuple[int, int, int]] = []
    for t in sorted({int(x) for x in open_times}):
        if runs and timeframes.next_open(runs[-1][1], timeframe) == t:
            runs[-1] = (runs[-1][0], t, runs[-1][2] + 1)
        else:
            runs.append((t, t, 1))
    return runs


def _ceil(ts: int, tf: str) -> int:
    floor = timeframes.floor(ts, tf)
    return floor if floor == ts else timeframes.next_open(floor, tf)


def _open_gaps(store: MarketStore, key: SeriesKey) -> pd.DataFrame:
    """Gaps of a series that are not recorded as unfillable."""
    known = [(g.start_time, g.end_time) for g in store.unfillable(key)]
    return subtract_ranges(find_gaps(store, key), known)


def summarise(store: MarketStore, report: SeriesReport) -> SeriesReport:
    """Fill the coverage fields of a report from the store (first, last, count, gaps)."""
    key = report.key
    bounds = store.bounds(key)
    if bounds is None:
        return report
    report.first, report.last, report.count = bounds
    unfillable = store.unfillable(key)
    report.unfillable = sum(g.missing for g in unfillable)
    gaps = subtract_ranges(find_gaps(store, key),
                           [(g.start_time, g.end_time) for g in unfillable])
    report.missing = int(gaps["missing"].sum()) if not gaps.empty else 0
    return report


async def run_bounded(jobs: Sequence[Job], run: Callable[[Job], Awaitable[Result]], limit: int,
                      *, done: Callable[[Job, Result], object] | None = None) -> list[Result]:
    """``await run(job)`` for every job, at most ``limit`` at once; results in job order.

    The one bounded-concurrency loop of the backfill, whatever runs one series: a coroutine
    in this event loop (:func:`backfill_many`), a Prefect task run, or a Dask future.
    ``done(job, result)`` is called as each finishes (progress lines). A task runner that
    spans a cluster would otherwise start every series at once: the exchange's rate limit is
    what bounds a backfill, not the number of workers.
    """
    gate = asyncio.Semaphore(max(1, limit))

    async def one(job: Job) -> Result:
        async with gate:
            result = await run(job)
        if done is not None:
            done(job, result)
        return result

    return list(await asyncio.gather(*(one(job) for job in jobs)))


async def backfill_many(source: OhlcvSource, store: MarketStore, keys: Sequence[SeriesKey],
                        window: Window, now_ms: int, *, concurrency: int = 3,
                        page_limit: int = 1000, progress: ProgressFn | None = None,
                        empty_retry_delay: float = 0.5) -> list[SeriesReport]:
    """Backfill several series, at most ``concurrency`` at once, sharing one rate-limited
    client; a failed series is reported and the others complete."""

    async def one(key: SeriesKey) -> SeriesReport:
        try:
            return await backfill_series(source, store, key, window, now_ms,
                                         page_limit=page_limit, progress=progress,
                                         empty_retry_delay=empty_retry_delay)
        except SeriesFailed as exc:
            return exc.report

    return await run_bounded(keys, one, concurrency)


def coverage_frame(reports: list[SeriesReport]) -> pd.DataFrame:
    """The coverage table: one row per series."""
    rows = [
        {
            "series": f"{r.key.symbol} {r.key.timeframe}",
            "status": r.status,
            "first": timeframes.iso(r.first) if r.first is not None else "",
            "last": timeframes.iso(r.last) if r.last is not None else "",
            "count": r.count,
            "missing": r.missing,
            "unfillable": r.unfillable,
            "quarantined": r.quarantined,
            "pages": r.pages,
            "error": r.error or "",
        }
        for r in reports
    ]
    return pd.DataFrame(rows)


def coverage_markdown(reports: list[SeriesReport]) -> str:
    """The coverage table as Markdown (Prefect artifact, docs)."""
    frame = coverage_frame(reports)
    cols = ["series", "status", "first", "last", "count", "missing", "unfillable", "quarantined",
            "error"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame[cols].itertuples(index=False):
        cells = [str(v).replace("|", "/")[:120] for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
