"""A Binance market stream read straight off its own websocket (aiohttp), not through ccxt.pro.

The recorder's fast paths (:mod:`~tradeflow.exchange.trade_stream`,
:mod:`~tradeflow.exchange.depth_stream`) share this: connect with a timeout, map connection
errors to the adapter's retryable errors, hand every text frame to the subclass, and once the
connection ends keep the error for the reader to raise after what arrived before it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp

from tradeflow.exchange import types as t


class DirectStream:
    """One websocket stream; subclasses take each text frame in :meth:`on_text`."""

    def __init__(self, url: str, *, heartbeat_s: float = 20.0, timeout_s: float = 10.0) -> None:
        self.url = url
        self.heartbeat_s = heartbeat_s
        self.timeout_s = timeout_s
        self.connections = 0  # websocket connections opened, the first one included
        self._session: aiohttp.ClientSession | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._error: t.ExchangeError | None = None

    def on_text(self, data: str) -> bool:
        """Take one text frame; True when it brought something for the reader."""
        raise NotImplementedError

    async def _wait(self) -> None:
        """Wait for the next frame; raise the connection's error once it has ended."""
        if self._error is not None:
            err, self._error, self._reader = self._error, None, None
            raise err
        self._ready.clear()
        await self._ready.wait()

    async def _connect(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.timeout_s))
        try:
            ws = await asyncio.wait_for(
                self._session.ws_connect(self.url, heartbeat=self.heartbeat_s, compress=0,
                                         max_msg_size=0),
                self.timeout_s)
        except TimeoutError:
            raise t.RequestTimedOut(f"stream {self.url}: no connection in "
                                    f"{self.timeout_s:g}s") from None
        except aiohttp.WSServerHandshakeError as exc:
            # 4xx other than a rate limit: the stream does not exist; asking again cannot help
            if 400 <= exc.status < 500 and exc.status not in (418, 429):
                raise t.ExchangeError(f"stream {self.url}: refused ({exc.status} "
                                      f"{exc.message})") from None
            raise t.ExchangeUnavailable(f"stream {self.url}: {exc.status} "
                                        f"{exc.message}") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise t.ExchangeUnavailable(f"stream {self.url}: {exc}") from None
        self.connections += 1
        self._error = None
        self._reader = asyncio.create_task(self._receive(ws), name=f"stream {self.url}")

    async def _receive(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Hand every text frame to :meth:`on_text` until the connection ends."""
        on_text, ready = self.on_text, self._ready
        try:
            async for msg in ws:
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    if msg.type is aiohttp.WSMsgType.ERROR:
                        raise t.ExchangeUnavailable(f"stream {self.url}: {ws.exception()}")
                    continue
                if on_text(msg.data):
                    ready.set()
            raise t.ExchangeUnavailable(f"stream {self.url}: connection closed "
                                        f"({ws.close_code})")
        except t.ExchangeError as exc:
            self._error = exc
        except (aiohttp.ClientError, OSError) as exc:
            self._error = t.ExchangeUnavailable(f"stream {self.url}: {exc}")
        finally:
            with contextlib.suppress(Exception):
                await ws.close()
            if self._error is None:  # cancelled: close() is under way
                self._error = t.ExchangeUnavailable(f"stream {self.url}: closed")
            ready.set()

    async def close(self) -> None:
        """Stop receiving and close the connection."""
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
        if self._session is not None:
            await self._session.close()
            self._session = None


def direct_stream_url(exchange: Any, symbol: str, name: str) -> str | None:
    """The websocket URL of ``symbol``'s stream ``name`` (``aggTrade``, ``depth@100ms``) on the
    ccxt exchange object ``exchange`` when it is Binance spot (None elsewhere: those go
    through ccxt.pro)."""
    if exchange.id != "binance" or symbol not in (exchange.markets or {}):
        return None
    market = exchange.markets[symbol]
    urls = exchange.urls.get("api", {}).get("ws")
    base = urls.get("spot") if isinstance(urls, dict) else None
    if not market.get("spot") or not isinstance(base, str):
        return None
    return f"{base.rstrip('/')}/{str(market['id']).lower()}@{name}"
