"""Several exchanges at once: one :class:`~tradeflow.marketdata.streams.MarketDataStream` per
exchange, started and stopped together, with the same callbacks and one place to ask for a
symbol's price on any of them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tradeflow.config import ExchangeSettings
from tradeflow.exchange.types import ConnectionState
from tradeflow.marketdata.buffer import Price
from tradeflow.marketdata.events import Listener, Update
from tradeflow.marketdata.streams import MarketDataStream


class MarketDataManager:
    """Streams by exchange id. ``async with MarketDataManager() as m`` connects every stream
    added so far; streams added later connect on :meth:`add` when the manager runs."""

    def __init__(self, settings: Mapping[str, ExchangeSettings] | None = None,
                 **stream_kwargs: Any) -> None:
        self.stream_kwargs = stream_kwargs
        self.streams: dict[str, MarketDataStream] = {}
        self._callbacks: list[tuple[Callable[[Update], Any], dict[str, Any]]] = []
        self._listeners: list[Listener] = []
        self._running = False
        for exchange_id, exchange_settings in (settings or {}).items():
            self._make(exchange_id, exchange_settings)

    def _make(self, exchange_id: str, settings: ExchangeSettings | None,
              **kwargs: Any) -> MarketDataStream:
        if exchange_id in self.streams:
            raise ValueError(f"exchange {exchange_id!r} already has a stream")
        stream = MarketDataStream(exchange_id, settings=settings,
                                  **{**self.stream_kwargs, **kwargs})
        for fn, filters in self._callbacks:
            stream.add_callback(fn, **filters)
        for listener in self._listeners:
            stream.on_state_change(listener)
        self.streams[exchange_id] = stream
        return stream

    async def add(self, exchange_id: str, settings: ExchangeSettings | None = None,
                  **kwargs: Any) -> MarketDataStream:
        """Add (and, when running, connect) the stream of one exchange."""
        stream = self._make(exchange_id, settings, **kwargs)
        if self._running:
            await stream.connect()
        return stream

    async def remove(self, exchange_id: str) -> None:
        """Stop and forget one exchange's stream."""
        await self.streams.pop(exchange_id).close()

    def __getitem__(self, exchange_id: str) -> MarketDataStream:
        return self.streams[exchange_id]

    def _pick(self, exchanges: Iterable[str] | str | None) -> list[MarketDataStream]:
        if exchanges is None:
            return list(self.streams.values())
        names = [exchanges] if isinstance(exchanges, str) else list(exchanges)
        missing = [n for n in names if n not in self.streams]
        if missing:
            raise KeyError(f"no stream for {', '.join(missing)}; "
                           f"known: {', '.join(self.streams) or 'none'}")
        return [self.streams[n] for n in names]

    # -- subscriptions and callbacks -------------------------------------------------------
    async def subscribe(self, symbols: Iterable[str] | str, channels: Iterable[str] | str,
                        exchanges: Iterable[str] | str | None = None) -> None:
        """Subscribe on the given exchanges (default: all)."""
        for stream in self._pick(exchanges):
            await stream.subscribe(symbols, channels)

    async def unsubscribe(self, symbols: Iterable[str] | str,
                          channels: Iterable[str] | str | None = None,
                          exchanges: Iterable[str] | str | None = None) -> None:
        for stream in self._pick(exchanges):
            await stream.unsubscribe(symbols, channels)

    def add_callback(self, fn: Callable[[Update], Any], **filters: Any) -> None:
        """``fn(update)`` for updates of every stream, present and future (``update.exchange``
        says which)."""
        self._callbacks.append((fn, filters))
        for stream in self.streams.values():
            stream.add_callback(fn, **filters)

    def on_state_change(self, fn: Listener) -> None:
        self._listeners.append(fn)
        for stream in self.streams.values():
            stream.on_state_change(fn)

    # -- lifecycle -------------------------------------------------------------------------
    async def __aenter__(self) -> MarketDataManager:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Connect every stream; if one fails, the others are closed and the error raised."""
        self._running = True
        try:
            await asyncio.gather(*(s.connect() for s in self.streams.values()))
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        self._running = False
        await asyncio.gather(*(s.close() for s in self.streams.values()),
                             return_exceptions=True)

    # -- queries ---------------------------------------------------------------------------
    def states(self) -> dict[str, ConnectionState]:
        return {name: s.state for name, s in self.streams.items()}

    def current_price(self, symbol: str, exchange: str | None = None,
                      now: float | None = None) -> Price | None:
        """The newest price of ``symbol`` on one exchange, or the newest over all of them."""
        now = time.time() if now is None else now
        prices = [s.buffer.current_price(symbol, now) for s in self._pick(exchange)]
        found = [p for p in prices if p is not None]
        return max(found, key=lambda p: p.received) if found else None
