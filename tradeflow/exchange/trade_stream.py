"""A Binance trade stream read straight off its websocket: the recorder's fast path for trades.

ccxt.pro turns every streamed trade into a unified dict (a dozen ``safe_*`` look-ups, an ISO
date, a ``Precise`` cost) before tradeflow keeps five of its fields; at a few thousand trades
a second that parse was most of the recorder's CPU. :class:`DirectTradeStream` opens the
stream ``<symbol>@aggTrade`` (or ``@trade``) itself, decodes each message with orjson and
keeps the five fields in columns until the next :meth:`~DirectTradeStream.next` hands them
out as one trades frame, the same frame :func:`tradeflow.exchange.parse.trades_frame` makes
of ccxt's parse of the same messages (a test holds the two equal).

It keeps the contract of ccxt's stream that callers rely on: duplicated or reordered messages
pass through as received; a dropped connection raises a retryable error after the trades
received before it are handed out, and the next call connects again; what the drop missed is
the caller's to fetch over REST by id. Trades no caller has taken beyond ``limit`` are dropped
oldest first, as ccxt's cache does, leaving a hole the caller refills.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp
import numpy as np
import orjson
import pandas as pd

from tradeflow.exchange import types as t

# Binance names the trade id ``a`` in aggregated trades and ``t`` in individual ones
_ID_KEY = {"aggTrade": "a", "trade": "t"}


class DirectTradeStream:
    """One Binance trade stream on its own websocket, received into columns."""

    def __init__(self, url: str, name: str, *, limit: int = 20_000,
                 heartbeat_s: float = 20.0, timeout_s: float = 10.0) -> None:
        if name not in _ID_KEY:
            raise ValueError(f"stream name {name!r}: must be one of {', '.join(_ID_KEY)}")
        self.url = url
        self.id_key = _ID_KEY[name]
        self.limit = limit
        self.heartbeat_s = heartbeat_s
        self.timeout_s = timeout_s
        self.connections = 0  # websocket connections opened, the first one included
        self._session: aiohttp.ClientSession | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._error: t.ExchangeError | None = None
        # the columns: appended to by the reader, emptied in place by each take
        self._ids: list[int] = []
        self._ts: list[int] = []
        self._price: list[str] = []
        self._amount: list[str] = []
        self._maker: list[bool] = []

    async def next(self) -> pd.DataFrame:
        """The trades received since the last call (at least one), as a trades frame.

        Connects first when not connected. Raises a retryable
        :class:`~tradeflow.exchange.types.ExchangeError` once the connection is lost and
        every trade received before the loss has been handed out.
        """
        if self._reader is None:
            await self._connect()
        while not self._ids:
            if self._error is not None:
                err, self._error, self._reader = self._error, None, None
                raise err
            self._ready.clear()
            await self._ready.wait()
        return self._take()

    def _take(self) -> pd.DataFrame:
        ids, ts, price, amount, maker = (self._ids, self._ts, self._price, self._amount,
                                         self._maker)
        n = len(ids)
        try:
            frame = pd.DataFrame({
                "id": np.fromiter(ids, np.int64, n), "ts": np.fromiter(ts, np.int64, n),
                "price": np.fromiter(map(float, price), np.float64, n),
                "amount": np.fromiter(map(float, amount), np.float64, n),
                "side": pd.array(np.where(np.fromiter(maker, bool, n), "sell", "buy"),
                                 dtype="str")})
        except (TypeError, ValueError) as exc:
            raise t.BadResponse(f"trade stream {self.url}: a malformed trade: {exc}") from None
        finally:
            for column in (ids, ts, price, amount, maker):
                column.clear()
        return frame

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
            raise t.RequestTimedOut(f"trade stream {self.url}: no connection in "
                                    f"{self.timeout_s:g}s") from None
        except aiohttp.WSServerHandshakeError as exc:
            # 4xx other than a rate limit: the stream does not exist; asking again cannot help
            if 400 <= exc.status < 500 and exc.status not in (418, 429):
                raise t.ExchangeError(f"trade stream {self.url}: refused ({exc.status} "
                                      f"{exc.message})") from None
            raise t.ExchangeUnavailable(f"trade stream {self.url}: {exc.status} "
                                        f"{exc.message}") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise t.ExchangeUnavailable(f"trade stream {self.url}: {exc}") from None
        self.connections += 1
        self._error = None
        self._reader = asyncio.create_task(self._receive(ws), name=f"trades {self.url}")

    async def _receive(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Append every trade message to the columns until the connection ends."""
        loads, key, limit = orjson.loads, self.id_key, self.limit
        ids, ts, price, amount, maker = (self._ids, self._ts, self._price, self._amount,
                                         self._maker)
        try:
            async for msg in ws:
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    if msg.type is aiohttp.WSMsgType.ERROR:
                        raise t.ExchangeUnavailable(f"trade stream {self.url}: {ws.exception()}")
                    continue
                d = None
                try:
                    d = loads(msg.data)
                    trade_id, time_ms, p, q, m = d[key], d["T"], d["p"], d["q"], d["m"]
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    if isinstance(d, dict) and "id" in d:  # the answer to a control message
                        continue
                    raise t.BadResponse(f"trade stream {self.url}: not a trade: "
                                        f"{msg.data[:80]!r}") from None
                ids.append(trade_id)
                ts.append(time_ms)
                price.append(p)
                amount.append(q)
                maker.append(m)
                if len(ids) > limit:  # nobody reads: drop the oldest, a hole to refill
                    extra = len(ids) - limit
                    for column in (ids, ts, price, amount, maker):
                        del column[:extra]
                self._ready.set()
            raise t.ExchangeUnavailable(f"trade stream {self.url}: connection closed "
                                        f"({ws.close_code})")
        except t.ExchangeError as exc:
            self._error = exc
        except (aiohttp.ClientError, OSError) as exc:
            self._error = t.ExchangeUnavailable(f"trade stream {self.url}: {exc}")
        finally:
            with contextlib.suppress(Exception):
                await ws.close()
            if self._error is None:  # cancelled: close() is under way
                self._error = t.ExchangeUnavailable(f"trade stream {self.url}: closed")
            self._ready.set()

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


def direct_trade_url(exchange: Any, symbol: str, name: str) -> str | None:
    """The websocket URL of ``symbol``'s trade stream ``name`` on the ccxt exchange object
    ``exchange`` when it is Binance spot (None elsewhere: those go through ccxt.pro)."""
    if exchange.id != "binance" or symbol not in (exchange.markets or {}):
        return None
    market = exchange.markets[symbol]
    urls = exchange.urls.get("api", {}).get("ws")
    base = urls.get("spot") if isinstance(urls, dict) else None
    if not market.get("spot") or not isinstance(base, str):
        return None
    return f"{base.rstrip('/')}/{str(market['id']).lower()}@{name}"
