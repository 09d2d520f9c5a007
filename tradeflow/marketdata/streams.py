"""One exchange's live market data: subscriptions, callbacks, a buffer, connection states.

``async with MarketDataStream("binance", settings=...) as stream`` connects (loads the markets
over REST), runs one watch loop per subscribed (symbol, channel) and closes everything on exit.
``subscribe``/``unsubscribe`` work before and while running. ``client=`` runs the stream on
an :class:`~tradeflow.exchange.ccxt_client.ExchangeClient` the caller owns (the trader's).
Every update goes into the stream's :class:`~tradeflow.marketdata.buffer.MarketBuffer` and
then to the callbacks.

States (:class:`~tradeflow.exchange.types.ConnectionState`): DISCONNECTED before start and
after stop, CONNECTING while the markets load, CONNECTED while every subscription receives,
RECONNECTING while any subscription is reconnecting (its watch raised, or it was silent for
``heartbeat_s``: stale), FAILED when connecting failed or a subscription failed
``max_failures`` times in a row (the stream then stops its loops). Every change is kept in
``transitions`` and handed to state listeners.

A reconnect waits ``min(reconnect_max_s, reconnect_base_s * 2**n)`` scaled by a random factor in
[0.5, 1) (jitter keeps many clients from reconnecting in step), closes the websockets if the
stream was silent, catches up over REST (candles from the newest seen, trades by id after the
newest seen, a fresh ticker or book) and watches again, which re-subscribes.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from tradeflow.config import ExchangeSettings
from tradeflow.exchange.types import BadSymbol, ConnectionState, ExchangeError
from tradeflow.marketdata.buffer import CHANNELS, MarketBuffer
from tradeflow.marketdata.events import Callbacks, Cursor, Listener, Transition, Update, new_rows

log = logging.getLogger(__name__)
STOP_TIMEOUT_S = 5.0


def _abandon(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` without waiting for it; its outcome is retrieved when it settles."""
    task.cancel()
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
S = ConnectionState


async def next_message(watch: Any, channel: str, symbol: str, timeout: float) -> Any:
    """The next message of ``watch.watch(channel, symbol)``; TimeoutError after ``timeout`` s.

    Not ``asyncio.wait_for``: on Python 3.11 it waits for the cancelled watch to finish, and a
    ccxt.pro watch can swallow that cancel and wait for the next message (seen: ``close()``
    hung for minutes). Here a cancelled or timed-out watch is abandoned; closing or resetting
    the websockets settles it."""
    pending = asyncio.ensure_future(watch.watch(channel, symbol))
    try:
        done, _ = await asyncio.wait({pending}, timeout=timeout)
    except asyncio.CancelledError:
        _abandon(pending)
        raise
    if not done:
        _abandon(pending)
        raise TimeoutError
    return pending.result()


@dataclass(slots=True)
class Subscription:
    """One (symbol, channel) watch loop and its counters."""

    symbol: str
    channel: str
    cursor: Cursor = field(default_factory=Cursor)
    task: asyncio.Task[None] | None = None
    messages: int = 0
    reconnects: int = 0
    failures: int = 0  # in a row
    catch_ups: int = 0
    reconnecting: bool = False
    last_message: float | None = None


@dataclass(frozen=True, slots=True)
class SubscriptionStatus:
    symbol: str
    channel: str
    state: str
    messages: int
    last_message_age_s: float | None
    reconnects: int
    catch_ups: int


def check_channels(channels: Iterable[str]) -> tuple[str, ...]:
    found = tuple(channels)
    for channel in found:
        if channel not in CHANNELS:
            raise ValueError(f"channel {channel!r}: must be one of {', '.join(CHANNELS)}")
    return found


async def with_missed_trades(watch: Any, sub: Subscription, data: Any) -> Any:
    """Trades with the message plus those missing between the last seen id and its
    newest, over REST: what was sent while a socket was down or before a new subscription
    took effect (only where trade ids are consecutive: ``watch.trades_by_id``)."""
    last = sub.cursor.last_id
    if sub.channel != "trades" or last is None or data.empty or \
            not watch.trades_by_id:
        return data
    newer = data["id"].to_numpy()
    newer = newer[newer > last]
    if not len(newer):
        return data
    top = int(newer.max())
    if len(newer) == top - last and (len(newer) == 1 or bool((newer[1:] > newer[:-1]).all())):
        return data  # last + 1 .. top, each once: no hole (the usual message)
    ids = set(newer.tolist())
    if len(ids) == top - last:
        return data
    missing = [i for i in range(last + 1, top) if i not in ids]
    try:
        pages = [p async for p in watch.missed_trades(sub.symbol, missing[0], missing[-1])]
    except ExchangeError as exc:
        log.warning("%s %s: trades %d..%d not fetched: %s", watch.exchange_id, sub.symbol,
                    missing[0], missing[-1], exc)
        return data
    sub.catch_ups += 1
    return pd.concat([data, *pages], ignore_index=True)


class MarketDataStream:
    """Live market data of one exchange (see the module docstring)."""

    def __init__(self, exchange_id: str = "binance", *, settings: ExchangeSettings | None = None,
                 buffer: MarketBuffer | None = None, timeframe: str = "1m",
                 heartbeat_s: float = 30.0, reconnect_base_s: float = 0.5,
                 reconnect_max_s: float = 30.0, max_failures: int | None = None,
                 use_websocket: bool | None = None, poll_s: float = 1.0,
                 watch_factory: Callable[[Any], Any] | None = None, client: Any = None,
                 clock: Callable[[], float] = time.time, rng: random.Random | None = None) -> None:
        settings = settings or ExchangeSettings(id=exchange_id)
        if settings.id != exchange_id:
            raise ValueError(f"exchange {exchange_id!r} but settings for {settings.id!r}")
        self.exchange_id, self.settings = exchange_id, settings
        self.buffer = buffer or MarketBuffer()
        self.timeframe, self.heartbeat_s = timeframe, heartbeat_s
        self.reconnect_base_s, self.reconnect_max_s = reconnect_base_s, reconnect_max_s
        self.max_failures, self.use_websocket, self.poll_s = max_failures, use_websocket, poll_s
        self.clock, self.rng = clock, rng or random.Random()
        self._watch_factory = watch_factory
        self.state = S.DISCONNECTED
        self.transitions: list[Transition] = []
        self.subscriptions: dict[tuple[str, str], Subscription] = {}
        self.callbacks, self.listeners = Callbacks(), Callbacks()
        self.stopped_at: float | None = None
        self.watch: Any = None
        self._client: Any = None
        self._given_client = client  # an ExchangeClient the caller owns (and closes)
        self._markets: set[str] = set()

    # -- callbacks -------------------------------------------------------------------------
    def add_callback(self, fn: Callable[[Update], Any], *, channels: Iterable[str] | None = None,
                     symbols: Iterable[str] | None = None) -> None:
        """Call ``fn(update)`` (sync or async) for each update, optionally only some."""
        self.callbacks.add(fn, None if channels is None else check_channels(channels), symbols)

    def remove_callback(self, fn: Callable[[Update], Any]) -> None:
        self.callbacks.remove(fn)

    def on_state_change(self, fn: Listener) -> None:
        """Call ``fn(transition)`` on every state change."""
        self.listeners.add(fn)

    @property
    def callback_errors(self) -> int:
        return self.callbacks.error_count

    # -- lifecycle -------------------------------------------------------------------------
    async def __aenter__(self) -> MarketDataStream:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Load the markets and start a watch loop per subscription."""
        if self.state not in (S.DISCONNECTED, S.FAILED):
            return
        await self._stop_loops()  # after FAILED: the old loops and client go first
        if self._client is not None and self._given_client is None:
            await self._client.close()
        await self._set_state(S.CONNECTING, "connect")
        from tradeflow.exchange.ccxt_client import ExchangeClient  # ccxt loads on demand
        from tradeflow.exchange.watch import MarketWatch

        self._client = self._given_client or ExchangeClient(self.settings)
        self.watch = (self._watch_factory or (lambda c: MarketWatch(
            c, timeframe=self.timeframe, use_websocket=self.use_websocket,
            poll_s=self.poll_s)))(self._client)
        try:
            self._markets = set(await self._client.load_markets())
            for sub in self.subscriptions.values():
                self._check_symbol(sub.symbol)
        except (ExchangeError, ValueError) as exc:
            if self._given_client is None:
                await self._client.close()
            await self._set_state(S.FAILED, f"connect failed: {exc}")
            raise
        self.stopped_at = None
        await self._set_state(S.CONNECTED, "markets loaded")
        for sub in self.subscriptions.values():
            self._start(sub)

    async def close(self) -> None:
        """Stop every loop, close the connections; the state becomes DISCONNECTED."""
        await self._stop_loops()
        if self._client is not None and self._given_client is None:
            await self._client.close()
        self._client = None
        self.stopped_at = self.clock()
        if self.state != S.DISCONNECTED:
            await self._set_state(S.DISCONNECTED, "stopped")

    async def _stop_loops(self) -> None:
        current = asyncio.current_task()
        tasks = [s.task for s in self.subscriptions.values() if s.task and s.task is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=STOP_TIMEOUT_S)
            for task in pending:  # never seen since _next_message; a stop must not hang
                log.warning("%s: %s did not stop within %ss", self.exchange_id,
                            task.get_name(), STOP_TIMEOUT_S)
                _abandon(task)
        for sub in self.subscriptions.values():
            sub.task = None

    @property
    def running(self) -> bool:
        return self.state in (S.CONNECTED, S.RECONNECTING)

    # -- subscriptions ---------------------------------------------------------------------
    async def subscribe(self, symbols: Iterable[str] | str,
                        channels: Iterable[str] | str = ("ticker",)) -> None:
        """Watch ``symbols`` x ``channels``; new ones start at once when running."""
        symbols = [symbols] if isinstance(symbols, str) else list(symbols)
        chans = check_channels([channels] if isinstance(channels, str) else channels)
        for symbol in symbols:
            if self.running:
                self._check_symbol(symbol)
            for channel in chans:
                key = (symbol, channel)
                if key not in self.subscriptions:
                    sub = self.subscriptions[key] = Subscription(symbol, channel)
                    if self.running:
                        self._start(sub)

    async def unsubscribe(self, symbols: Iterable[str] | str,
                          channels: Iterable[str] | str | None = None) -> None:
        """Stop watching ``symbols`` (on ``channels``, default all); unsubscribes on the
        exchange where ccxt can. Their buffered rows stay until ``buffer.clear``."""
        symbols = {symbols} if isinstance(symbols, str) else set(symbols)
        chans = set(CHANNELS if channels is None else check_channels(
            [channels] if isinstance(channels, str) else channels))
        for key in [k for k in self.subscriptions if k[0] in symbols and k[1] in chans]:
            sub = self.subscriptions.pop(key)
            if sub.task is not None:
                sub.task.cancel()
                await asyncio.gather(sub.task, return_exceptions=True)
                await self.watch.unwatch(sub.channel, sub.symbol)
        await self._update_state("unsubscribed")

    def _check_symbol(self, symbol: str) -> None:
        if symbol not in self._markets:
            raise BadSymbol(f"{self.exchange_id} does not list {symbol}")

    def _start(self, sub: Subscription) -> None:
        sub.failures, sub.reconnecting = 0, False
        sub.task = asyncio.create_task(self._run(sub),
                                       name=f"md:{self.exchange_id}:{sub.symbol}:{sub.channel}")

    # -- the loop --------------------------------------------------------------------------
    async def _run(self, sub: Subscription) -> None:
        while True:
            try:
                data = await next_message(self.watch, sub.channel, sub.symbol,
                                          self.heartbeat_s)
            except TimeoutError:
                if not await self._reconnect(sub, f"stale: no message for {self.heartbeat_s}s",
                                             stale=True):
                    return
                continue
            except ExchangeError as exc:
                if not await self._reconnect(sub, f"dropped: {type(exc).__name__}: {exc}"):
                    return
                continue
            sub.last_message, sub.failures = self.clock(), 0
            sub.messages += 1
            if sub.reconnecting:
                sub.reconnecting = False
                await self._update_state(f"{sub.symbol} {sub.channel} receiving again")
            await self._deliver(sub, await with_missed_trades(self.watch, sub, data),
                                catch_up=False)

    async def _deliver(self, sub: Subscription, data: Any, *, catch_up: bool) -> None:
        now = self.clock()
        fresh, rows = new_rows(sub.channel, data, sub.cursor, int(now * 1000))
        if not rows:
            return
        series = self.buffer.series(sub.symbol, sub.channel)
        for ts, values in rows:
            series.append(ts, values)
        self.buffer.mark_received(sub.symbol, sub.channel, now)
        await self.callbacks.fire(Update(self.exchange_id, sub.symbol, sub.channel, fresh, now,
                                         catch_up), sub.channel, sub.symbol)

    async def _reconnect(self, sub: Subscription, reason: str, stale: bool = False) -> bool:
        """Back off, catch up over REST; False when the stream has failed."""
        sub.reconnects, sub.failures, sub.reconnecting = sub.reconnects + 1, sub.failures + 1, True
        log.warning("%s %s %s: %s", self.exchange_id, sub.symbol, sub.channel, reason)
        if self.max_failures is not None and sub.failures > self.max_failures:
            await self._set_state(S.FAILED, f"{sub.symbol} {sub.channel}: {sub.failures - 1} "
                                  f"reconnects failed; last: {reason}")
            current = asyncio.current_task()
            for other in self.subscriptions.values():
                if other.task is not None and other.task is not current:
                    other.task.cancel()
            return False
        await self._set_state(S.RECONNECTING, f"{sub.symbol} {sub.channel} {reason}")
        if stale:
            await self.watch.reset()
        expo = min(self.reconnect_max_s, self.reconnect_base_s * 2 ** (sub.failures - 1))
        await asyncio.sleep(expo * (0.5 + self.rng.random() / 2))
        since = sub.cursor.last_ts if sub.channel == "candles" else (
            None if sub.cursor.last_id is None else sub.cursor.last_id + 1)
        try:
            async for value in self.watch.catch_up(sub.channel, sub.symbol, since):
                sub.catch_ups += 1
                await self._deliver(sub, value, catch_up=True)
        except ExchangeError as exc:
            log.warning("%s %s %s: REST catch-up failed: %s", self.exchange_id, sub.symbol,
                        sub.channel, exc)
        return True

    # -- state -----------------------------------------------------------------------------
    async def _update_state(self, reason: str) -> None:
        if self.state not in (S.CONNECTED, S.RECONNECTING):
            return
        busy = any(s.reconnecting for s in self.subscriptions.values())
        await self._set_state(S.RECONNECTING if busy else S.CONNECTED, reason)

    async def _set_state(self, new: ConnectionState, reason: str) -> None:
        if new == self.state:
            return
        change = Transition(self.exchange_id, self.clock(), self.state, new, reason)
        self.state = new
        self.transitions.append(change)
        log.info("%s: %s -> %s (%s)", self.exchange_id, change.old, new, reason)
        await self.listeners.fire(change)

    def status(self) -> list[SubscriptionStatus]:
        """Per subscription: state, messages, age of the newest message, reconnects."""
        now = self.clock()
        out = []
        for sub in self.subscriptions.values():
            state = S.DISCONNECTED if not self.running else (
                S.RECONNECTING if sub.reconnecting else S.CONNECTED)
            age = None if sub.last_message is None else round(now - sub.last_message, 3)
            out.append(SubscriptionStatus(sub.symbol, sub.channel, state.value, sub.messages,
                                          age if self.running else None, sub.reconnects,
                                          sub.catch_ups))
        return out

