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

import numpy as np
import orjson
import pandas as pd

from tradeflow.exchange import types as t
from tradeflow.exchange.direct_ws import DirectStream

# Binance names the trade id ``a`` in aggregated trades and ``t`` in individual ones
_ID_KEY = {"aggTrade": "a", "trade": "t"}


class DirectTradeStream(DirectStream):
    """One Binance trade stream on its own websocket, received into columns."""

    def __init__(self, url: str, name: str, *, limit: int = 20_000,
                 heartbeat_s: float = 20.0, timeout_s: float = 10.0) -> None:
        if name not in _ID_KEY:
            raise ValueError(f"stream name {name!r}: must be one of {', '.join(_ID_KEY)}")
        super().__init__(url, heartbeat_s=heartbeat_s, timeout_s=timeout_s)
        self.id_key = _ID_KEY[name]
        self.limit = limit
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
            await self._wait()
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

    def on_text(self, data: str) -> bool:
        """Append one trade message to the columns (a control message's answer is skipped)."""
        d = None
        try:
            d = orjson.loads(data)
            trade_id, time_ms, p, q, m = d[self.id_key], d["T"], d["p"], d["q"], d["m"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            if isinstance(d, dict) and "id" in d:  # the answer to a control message
                return False
            raise t.BadResponse(f"trade stream {self.url}: not a trade: "
                                f"{data[:80]!r}") from None
        ids = self._ids
        ids.append(trade_id)
        self._ts.append(time_ms)
        self._price.append(p)
        self._amount.append(q)
        self._maker.append(m)
        if len(ids) > self.limit:  # nobody reads: drop the oldest, a hole to refill
            extra = len(ids) - self.limit
            for column in (ids, self._ts, self._price, self._amount, self._maker):
                del column[:extra]
        return True
