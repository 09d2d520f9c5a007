"""A Binance diff-depth stream read straight off its websocket into a :class:`LocalBook`: the
recorder's fast path for the order book.

ccxt.pro decodes every ``depthUpdate`` frame with the standard ``json`` module into lists of
``[price, amount]`` strings before its book takes them; on a busy book the frames are large (a
diff can list thousands of levels) and that decode was most of the recorder's CPU.
:func:`decode_depth` decodes only the frame's few scalar fields with orjson and cuts its two
level arrays into flat lists of decimal strings with two string operations, about half the
cost of a JSON decode of the same frame; :class:`LocalBook` then parses and applies them.

:class:`DirectDepthStream` keeps Binance's recipe for a local book: open the stream and buffer
its diffs, fetch a REST snapshot (``lastUpdateId``), drop the diffs it already holds, apply the
first diff with ``U <= lastUpdateId + 1 <= u`` and each next one only when its ``U`` is the
previous ``u + 1``. A hole in the ids (a diff lost) counts as a resync and the book starts
again from a new snapshot; a repeat or an older diff is dropped; a dropped connection raises a
retryable error and the next call connects and syncs again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson

from tradeflow.exchange import types as t
from tradeflow.exchange.book import MAX_BUFFERED, Before, LocalBook
from tradeflow.exchange.direct_ws import DirectStream

_STRIP = str.maketrans("", "", '[]"')
SNAPSHOT_TRIES = 5  # snapshots asked for in a row while each is older than the buffered diffs


def _levels(text: str) -> list[str]:
    """``[["p","q"],...]`` (the array's text) as a flat list ``[p, q, p, q, ...]``."""
    flat = text.translate(_STRIP).split(",") if len(text) > 2 else []
    if len(flat) % 2:
        raise ValueError("a level without its amount")
    return flat


def _array(frame: str, key: str) -> tuple[int, int] | None:
    """Where the array of ``"key":[[..],..]`` starts and ends in ``frame``."""
    at = frame.find(f'"{key}":[')
    if at < 0:
        return None
    start = at + len(key) + 3
    if frame.startswith("[]", start):
        return start, start + 2
    end = frame.find("]]", start)
    return None if end < 0 else (start, end + 2)


def decode_depth(frame: str) -> dict[str, Any] | None:
    """A ``depthUpdate`` frame as a dict with ``b``/``a`` as flat lists of decimal strings
    ``[price, amount, ...]`` and ``flat`` true (as :meth:`LocalBook.apply_levels` takes them);
    None for the answer to a control message. Raises ``ValueError`` on anything else."""
    bids, asks = _array(frame, "b"), _array(frame, "a")
    if bids is None or asks is None or bids[0] > asks[0]:
        d = orjson.loads(frame)  # not the usual layout: decode it all
        if isinstance(d, dict) and "id" in d and "e" not in d:
            return None
        if not isinstance(d, dict) or d.get("e") != "depthUpdate":
            raise ValueError("not a depthUpdate")
        d["b"] = [str(x) for level in d["b"] for x in level]
        d["a"] = [str(x) for level in d["a"] for x in level]
        d["flat"] = True
        return d
    d = orjson.loads(frame[:bids[0]] + "[]" + frame[bids[1]:asks[0]] + "[]" + frame[asks[1]:])
    if not isinstance(d, dict) or d.get("e") != "depthUpdate":
        raise ValueError("not a depthUpdate")
    d["b"] = _levels(frame[bids[0]:bids[1]])
    d["a"] = _levels(frame[asks[0]:asks[1]])
    d["flat"] = True
    return d


class DirectDepthStream(DirectStream):
    """One Binance ``@depth`` stream on its own websocket, kept as a local book."""

    def __init__(self, url: str, snapshot: Callable[[], Awaitable[Mapping[str, Any]]], *,
                 symbol: str | None = None, depth: int | None = None,
                 heartbeat_s: float = 20.0, timeout_s: float = 10.0) -> None:
        super().__init__(url, heartbeat_s=heartbeat_s, timeout_s=timeout_s)
        self._snapshot = snapshot  # the REST depth body (``lastUpdateId``, bids, asks)
        self.book = LocalBook({"symbol": symbol}, depth)
        self.resyncs = 0  # books rebuilt after a hole in the update ids
        self._diffs: list[dict[str, Any]] = []

    def on_text(self, data: str) -> bool:
        try:
            message = decode_depth(data)
            if message is not None:
                message["U"], message["u"] = int(message["U"]), int(message["u"])
        except (ValueError, KeyError, TypeError) as exc:
            raise t.BadResponse(f"depth stream {self.url}: not a depth diff ({exc}): "
                                f"{data[:80]!r}") from None
        if message is None:
            return False
        self._diffs.append(message)
        if len(self._diffs) > MAX_BUFFERED:  # nobody reads: the hole makes the next a resync
            del self._diffs[: len(self._diffs) - MAX_BUFFERED]
        return True

    async def next(self, before: Before | None = None) -> LocalBook:
        """The local book after the diffs received since the last call (at least one applied).

        ``before(book, diff)`` is called just before each diff is applied. Connects and syncs
        from a snapshot first when needed. Raises a retryable
        :class:`~tradeflow.exchange.types.ExchangeError` once the connection is lost (the
        diffs received before it are applied first).
        """
        book = self.book
        if self._reader is None:
            book.reset({"symbol": book.get("symbol")})  # buffer until a snapshot
            book.needs_resync = False
            book.cache = []
            await self._connect()
        while True:
            while not self._diffs:
                await self._wait()
            diffs, self._diffs = self._diffs, []
            applied = False
            for diff in diffs:
                outcome = book.apply_diff(diff, before)
                applied = applied or outcome == "applied"
                if outcome == "gap":
                    self.resyncs += 1
            if book.cache:  # waiting for a snapshot: the first one, or after a gap
                applied = await self._sync(before) or applied
            if applied and book["timestamp"] is not None:
                return book

    async def _sync(self, before: Before | None) -> bool:
        """Rebuild the book from a snapshot and the buffered diffs; True once it is in sync."""
        for _ in range(SNAPSHOT_TRIES):
            body = await self._snapshot()
            if int(body["lastUpdateId"]) + 1 < self.book.cache[0]["U"]:
                continue  # older than the first buffered diff: ask again
            if self.book.resync(body, before) == "applied":
                return True
            self.resyncs += 1  # a hole among the buffered diffs themselves
        return False  # still buffering: the next call asks again
