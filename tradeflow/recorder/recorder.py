"""The recorder: trades, book snapshots and tickers of some symbols, streamed into the store.

One task per symbol and stream reads the adapter's streams (reconnecting with backoff on a
transient error); every ``flush_s`` the new rows of all of them go to the store in one
transaction. Trades are written in id order right after the last stored id: a hole before or
between streamed trades (a drop, a message lost, a restart after a crash) is fetched over REST
by id first, and ids already stored are dropped, so the stored ids of a series never have a
hole or a repeat. Starting up, it refills any hole found in the stored ids. On Binance spot the
local book is kept from the diff-depth stream read directly (DirectDepthStream), elsewhere by
ccxt.pro; a book sequence gap rebuilds it from a new snapshot and is counted as a resync.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from tradeflow.config import RecorderSettings, RetentionSettings
from tradeflow.errors import UserError
from tradeflow.exchange.orderflow import OrderFlowClient
from tradeflow.exchange.types import ExchangeError
from tradeflow.market.orderflow_store import OrderFlowStore
from tradeflow.recorder.sampler import BookSampler, ticker_row
from tradeflow.recorder.sequencer import TradeSequencer, segments
from tradeflow.recorder.status import RecorderStatus

if TYPE_CHECKING:
    from tradeflow.config import Settings

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 600.0


@dataclass(frozen=True, slots=True)
class RecordSummary:
    """What one run of the recorder stored."""

    seconds: float
    stored: dict[str, int]
    holes_filled: int
    resyncs: int
    reconnects: int  # websocket connections reopened

    def line(self) -> str:
        return (f"recorded {self.seconds:.0f}s: {self.stored['trades']} trades, "
                f"{self.stored['book_snapshots']} book snapshots, {self.stored['tickers']} "
                f"tickers; {self.holes_filled} trades fetched over REST to fill holes, "
                f"{self.resyncs} book resyncs, {self.reconnects} reconnects")


class Recorder:
    """Records order flow of ``symbols`` from ``client`` into ``store`` until stopped."""

    def __init__(self, client: Any, store: OrderFlowStore, settings: RecorderSettings,
                 symbols: tuple[str, ...], *, retention: RetentionSettings | None = None,
                 status_path: Path | None = None,
                 say: Callable[[RecorderStatus], None] | None = None) -> None:
        self.client = client
        self.store = store
        self.settings = settings
        self.symbols = symbols
        self.retention = retention
        self.say = say
        self.exchange = str(client.id)
        self.flow = OrderFlowClient(client, aggregated=settings.aggregated_trades,
                                    book_updates_ms=settings.book_updates_ms,
                                    direct_trades=True, direct_book=True)
        streams = ("trades", *(("book",) if settings.order_book else ()),
                   *(("ticker",) if settings.tickers else ()))
        self.status = RecorderStatus(self.exchange, symbols, status_path, streams)
        self.sequencers = {s: TradeSequencer() for s in symbols}
        interval = None if settings.book_interval_s is None else int(
            settings.book_interval_s * 1000)
        self.samplers = {s: BookSampler(settings.book_depth, interval, settings.close_timeframe)
                         for s in symbols}
        self._snapshots: dict[str, list[dict[str, Any]]] = {s: [] for s in symbols}
        self._tickers: dict[str, list[dict[str, Any]]] = {s: [] for s in symbols}
        self._exchange_ms = 0
        self._stopping = asyncio.Event()

    # -- run -------------------------------------------------------------------------------
    async def run(self, *, seconds: float | None = None,
                  stop: asyncio.Event | None = None) -> RecordSummary:
        """Record until ``stop`` is set or ``seconds`` passed; the last rows are flushed."""
        started = time.monotonic()
        stop = stop or asyncio.Event()
        await self.client.load_markets()
        await self.resume()
        tasks = [asyncio.create_task(self._stream(s, k), name=f"record {s} {k}")
                 for (s, k) in self.status.streams]
        self._stopping = asyncio.Event()
        flusher = asyncio.create_task(self._flush_loop(), name="record flush")
        stopper = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait({*tasks, flusher, stopper}, timeout=seconds,
                                         return_when=asyncio.FIRST_COMPLETED)
            for task in done - {stopper}:
                task.result()  # a stream that failed for good: raise its error
        finally:
            stopper.cancel()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            # the flusher finishes the write it is in, writes what is left and returns
            self._stopping.set()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await flusher
            await self.flow.close()
            for s in self.status.streams.values():
                s.state = "stopped" if s.state != "failed" else s.state
            self.status.reconnects = self.flow.reconnects
            self.status.refresh()
        return self.summary(time.monotonic() - started)

    def summary(self, seconds: float) -> RecordSummary:
        streams = self.status.streams.values()
        return RecordSummary(seconds, dict(self.status.stored), self.status.holes_filled,
                             sum(s.resyncs for s in streams), self.flow.reconnects)

    async def resume(self) -> None:
        """Continue each series after its last stored trade; refill holes in stored ids."""
        for symbol, seq in self.sequencers.items():
            bounds = await asyncio.to_thread(self.store.trade_bounds, self.exchange, symbol)
            if bounds is None:
                continue
            seq.last_id = bounds.last_id
            self.status.get(symbol, "trades").last_id = bounds.last_id
            holes = await asyncio.to_thread(self.store.trade_holes, self.exchange, symbol)
            for first, last in holes:
                log.warning("%s %s: stored trade ids %d..%d missing; fetching them", self.exchange,
                            symbol, first, last)
                await self._fill(symbol, seq, first, last)

    # -- streams ---------------------------------------------------------------------------
    async def _stream(self, symbol: str, kind: str) -> None:
        read = {"trades": self._read_trades, "book": self._read_book,
                "ticker": self._read_ticker}[kind]
        attempt = 0
        while True:
            try:
                count = await read(symbol)
            except ExchangeError as exc:
                if not exc.retryable:
                    self.status.set_state(symbol, kind, "failed")
                    raise
                self.status.set_state(symbol, kind, "reconnecting")
                delay = min(self.settings.reconnect_max_s, 0.25 * 2**attempt)
                attempt += 1
                log.warning("%s %s stream: %s; again in %.2fs", symbol, kind, exc, delay)
                await asyncio.sleep(delay)
                continue
            attempt = 0
            self.status.message(symbol, kind, count)
            if kind == "trades" and self.settings.batch_s:
                # ccxt keeps what arrives meanwhile: fewer, larger batches cost less CPU
                await asyncio.sleep(self.settings.batch_s)

    async def _read_trades(self, symbol: str) -> int:
        frame = await self.flow.watch_trades(symbol)
        self.sequencers[symbol].add(frame)
        if len(frame):
            self._exchange_ms = max(self._exchange_ms, int(frame["ts"].iloc[-1]))
        return len(frame)

    async def _read_book(self, symbol: str) -> int:
        sampler, rows = self.samplers[symbol], self._snapshots[symbol]
        if self.flow.has_local_book(symbol):
            # every diff is seen: the book before the one that crosses a boundary is kept
            local = await self.flow.watch_local_book(
                symbol, lambda b, diff: rows.extend(sampler.before_diff(b, diff)))
            last_id = local.last_update_id
        else:
            book = await self.flow.watch_order_book(symbol, self.settings.book_depth)
            rows += sampler.update(book)
            last_id = book.update_id
        status = self.status.get(symbol, "book")
        status.last_id = last_id
        status.resyncs = self.flow.resyncs.get(symbol, 0)
        return 1

    async def _read_ticker(self, symbol: str) -> int:
        ticker = await self.flow.watch_ticker(symbol)
        if ticker.timestamp:
            self._tickers[symbol].append(ticker_row(ticker))
        return 1

    # -- writes ----------------------------------------------------------------------------
    async def _flush_loop(self) -> None:
        last_status = last_prune = time.monotonic()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.settings.flush_s)
            try:
                await self.flush()
            except Exception as exc:  # noqa: BLE001 - the next flush refetches what was lost
                log.error("recorder write failed (the next one refills it): %s", exc)
            if self._stopping.is_set():
                return
            self.status.reconnects = self.flow.reconnects
            now = time.monotonic()
            if self.retention is not None and now - last_prune >= PRUNE_EVERY_S \
                    and self._exchange_ms:
                last_prune = now
                await asyncio.to_thread(self.store.prune, self.retention, self._exchange_ms)
            if now - last_status >= self.settings.status_s:
                last_status = now
                self.status.refresh()
                if self.say is not None:
                    self.say(self.status)

    async def flush(self) -> None:
        """Write what the streams delivered since the last flush (holes fetched first)."""
        trades, takes = [], []
        for symbol, seq in self.sequencers.items():
            frame, holes = seq.take()
            if holes:
                await self._write_in_order(symbol, seq, frame, holes)
            elif len(frame):
                trades.append(frame.assign(symbol=symbol))
                takes.append((symbol, int(frame["id"].iloc[-1])))
        snapshots = [pd.DataFrame(rows).assign(symbol=s) for s, rows in self._snapshots.items()
                     if rows]
        tickers = [pd.DataFrame(rows).assign(symbol=s) for s, rows in self._tickers.items()
                   if rows]
        for rows in (*self._snapshots.values(), *self._tickers.values()):
            rows.clear()
        if not (trades or snapshots or tickers):
            return
        new = await asyncio.to_thread(
            self.store.write, exchange=self.exchange,
            trades=pd.concat(trades, ignore_index=True) if trades else None,
            book_snapshots=pd.concat(snapshots, ignore_index=True) if snapshots else None,
            tickers=pd.concat(tickers, ignore_index=True) if tickers else None)
        for symbol, last in takes:
            self._advance(symbol, last)
        for table, rows in new.items():
            self.status.stored[table] += rows

    async def _write_in_order(self, symbol: str, seq: TradeSequencer, frame: pd.DataFrame,
                              holes: list[tuple[int, int]]) -> None:
        """Streamed trades and the holes between them, written in id order."""
        for kind, part in segments(frame, holes):
            if kind == "hole":
                first, last = part  # type: ignore[misc]
                log.info("%s %s: trades %d..%d missed by the stream; fetching them",
                         self.exchange, symbol, first, last)
                await self._fill(symbol, seq, first, last)
            else:
                await self._write_trades(symbol, part)  # type: ignore[arg-type]

    async def _fill(self, symbol: str, seq: TradeSequencer, first: int, last: int) -> None:
        async for page in self.flow.trade_pages(symbol, first, to_id=last):
            self.status.holes_filled += len(page)
            await self._write_trades(symbol, page)

    async def _write_trades(self, symbol: str, frame: pd.DataFrame) -> None:
        new = await asyncio.to_thread(self.store.write_trades, frame, exchange=self.exchange,
                                      symbol=symbol)
        self.status.stored["trades"] += new
        self._advance(symbol, int(frame["id"].iloc[-1]))

    def _advance(self, symbol: str, last_id: int) -> None:
        seq = self.sequencers[symbol]
        seq.last_id = last_id if seq.last_id is None else max(seq.last_id, last_id)
        self.status.get(symbol, "trades").last_id = seq.last_id


async def record(settings: Settings, *, symbols: tuple[str, ...] | None = None,
                 seconds: float | None = None, stop: asyncio.Event | None = None,
                 metrics_port: int | None = None,
                 say: Callable[[RecorderStatus], None] | None = None) -> RecordSummary:
    """Record the profile's order flow until ``stop``, ``seconds`` or SIGTERM/SIGINT."""
    from tradeflow.exchange.ccxt_client import ExchangeClient
    from tradeflow.market.orderflow_store import open_orderflow_store
    from tradeflow.recorder.status import status_path

    cfg = settings.recorder
    symbols = symbols or cfg.symbols or settings.symbols
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    store = open_orderflow_store(settings)
    recorder: Recorder | None = None
    try:
        async with ExchangeClient(settings.exchange) as client:
            markets = await client.load_markets()
            missing = [s for s in symbols if s not in markets]
            if missing:
                raise UserError(f"{client.id} does not list {', '.join(missing)}; "
                                f"it lists e.g. {', '.join(sorted(markets)[:5])}")
            recorder = Recorder(client, store, cfg, tuple(symbols),
                                retention=settings.store.retention,
                                status_path=status_path(settings), say=say)
            port = cfg.metrics_port if metrics_port is None else metrics_port
            if recorder.status.metrics.serve(port):
                log.info("recorder metrics on http://127.0.0.1:%d/metrics", port)
            return await recorder.run(seconds=seconds, stop=stop)
    finally:
        if recorder is not None:
            recorder.status.metrics.close()
        store.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
