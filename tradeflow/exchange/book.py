"""A local order book kept from a snapshot plus Binance depth diffs, faster than ccxt.pro's.

Each side keeps ``price -> amount`` in a dict, so a change costs one dict write, and a list of
its prices in ascending order that is brought up to date only when the side is read: a change
of amount leaves the order as it is; prices that entered or left the book since the last read
are bisected in or out then (or the side is sorted afresh when many moved). Diff levels are
parsed and applied in one loop without a call per level.

:class:`LocalBook` is also shaped as ccxt.pro's ``OrderBook`` (a dict with ``bids``, ``asks``,
``nonce``, ``timestamp``, ``datetime``, ``symbol``; ``cache``, ``reset``, ``limit``,
``copy``; sides with ``store`` that read as lists of ``[price, amount]`` best first), so the
exchange adapter hands it to ccxt.pro as the factory of its books. On its own, for a raw
``@depth`` stream, :meth:`LocalBook.apply_diff` follows Binance's recipe for a local book:
buffer diffs until a snapshot arrives, drop diffs whose last id ``u`` the book already has,
apply a diff whose first id ``U`` continues the book's ``lastUpdateId``, and on a hole in the
ids stop, buffer and say the book needs a new snapshot (:meth:`LocalBook.resync`).
"""

from __future__ import annotations

import sys
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

Level = list[float]  # [price, amount], as ccxt's books hold them
Outcome = Literal["applied", "stale", "gap", "buffered"]
RESORT_SHARE = 8  # sort a side afresh when more than 1/8 of its prices moved since the last read
MAX_BUFFERED = 10_000  # diffs kept while waiting for a snapshot
Before = Callable[["LocalBook", Mapping[str, Any]], None]


def iso8601(timestamp: int | None) -> str | None:
    """``2026-01-01T00:00:00.000Z`` for UTC ms, as ccxt writes a book's ``datetime``."""
    if timestamp is None:
        return None
    dt = datetime.fromtimestamp(timestamp // 1000, UTC)
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{timestamp % 1000:03d}Z"


class BookSide:
    """One side of the book: amounts by price, read best first (highest bid, lowest ask)."""

    __slots__ = ("_depth", "_keys", "_levels", "_moved", "bids")

    def __init__(self, bids: bool, levels: Iterable[Sequence[Any]] = (),
                 depth: int | None = None) -> None:
        self.bids = bids
        self._depth = depth or sys.maxsize
        self._levels: dict[float, float] = {}
        self._keys: list[float] = []  # ascending; valid when ``_moved`` is empty
        self._moved: set[float] = set()  # prices that entered or left since the last sort
        self.replace(levels)

    # -- writing -----------------------------------------------------------------------------
    def replace(self, levels: Iterable[Sequence[Any]]) -> None:
        """Hold exactly ``levels`` (``[price, amount]``, numbers or decimal strings)."""
        self._levels = {p: a for p, a in ((float(lv[0]), float(lv[1])) for lv in levels) if a}
        self._keys = sorted(self._levels)
        self._moved.clear()

    def store(self, price: float, amount: float) -> None:
        """Set the amount at ``price``; 0 removes the level (ccxt's ``OrderBookSide.store``)."""
        levels = self._levels
        if amount:
            if price not in levels:
                self._moved.add(price)
            levels[price] = amount
        elif levels.pop(price, None) is not None:
            self._moved.add(price)

    def store_array(self, delta: Sequence[Any]) -> None:
        self.store(delta[0], delta[1])

    storeArray = store_array  # noqa: N815 - ccxt's name

    def apply(self, changes: Iterable[Sequence[str]]) -> None:
        """Apply diff levels ``[[price, amount], ...]`` given as decimal strings."""
        levels, moved = self._levels, self._moved
        for price_s, amount_s in changes:
            price = float(price_s)
            amount = float(amount_s)
            if amount:
                if price not in levels:
                    moved.add(price)
                levels[price] = amount
            elif levels.pop(price, None) is not None:
                moved.add(price)

    def limit(self) -> None:
        """Forget the levels beyond the side's depth (worst first), as ccxt's books do."""
        keys = self._sorted()
        extra = len(keys) - self._depth
        if extra > 0:
            worst = keys[:extra] if self.bids else keys[-extra:]
            for price in worst:
                del self._levels[price]
            if self.bids:
                del keys[:extra]
            else:
                del keys[-extra:]

    # -- reading -----------------------------------------------------------------------------
    def _sorted(self) -> list[float]:
        moved = self._moved
        if moved:
            keys, levels = self._keys, self._levels
            if len(moved) * RESORT_SHARE > len(keys):
                self._keys = keys = sorted(levels)
            else:
                for price in moved:
                    i = bisect_left(keys, price)
                    there = i < len(keys) and keys[i] == price
                    if price in levels:
                        if not there:
                            keys.insert(i, price)
                    elif there:
                        del keys[i]
            moved.clear()
        return self._keys

    def top(self, n: int | None = None) -> list[Level]:
        """The best ``n`` levels (all when None) as ``[price, amount]``, best first."""
        keys, levels = self._sorted(), self._levels
        n = len(keys) if n is None else max(0, min(n, len(keys)))
        chosen = keys[len(keys) - n:][::-1] if self.bids else keys[:n]
        return [[p, levels[p]] for p in chosen]

    def best(self) -> Level | None:
        keys = self._sorted()
        if not keys:
            return None
        price = keys[-1] if self.bids else keys[0]
        return [price, self._levels[price]]

    def amount(self, price: float) -> float:
        """The amount resting at ``price`` (0 when none)."""
        return self._levels.get(price, 0.0)

    def __len__(self) -> int:
        return len(self._levels)

    def __iter__(self) -> Iterator[Level]:
        return iter(self.top())

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self._levels))
            if step == 1:
                return self.top(stop)[start:]
            return self.top()[index]
        keys = self._sorted()
        price = keys[-1 - index if index >= 0 else -index - 1] if self.bids else keys[index]
        return [price, self._levels[price]]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, BookSide):
            return self.bids == other.bids and self.top() == other.top()
        if isinstance(other, list):
            return self.top() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self.top())

    def copy(self) -> BookSide:
        return BookSide(self.bids, self.top(), None if self._depth == sys.maxsize
                        else self._depth)


class LocalBook(dict):  # type: ignore[type-arg]
    """An order book from a snapshot and diffs; a dict shaped as ccxt.pro's ``OrderBook``."""

    def __init__(self, snapshot: Mapping[str, Any] | None = None, depth: int | None = None):
        snapshot = snapshot or {}
        super().__init__(
            bids=BookSide(True, snapshot.get("bids", ()), depth),
            asks=BookSide(False, snapshot.get("asks", ()), depth),
            timestamp=snapshot.get("timestamp"),
            datetime=iso8601(snapshot.get("timestamp")),
            nonce=snapshot.get("nonce"),
            symbol=snapshot.get("symbol"),
        )
        self.cache: list[Any] = []  # ccxt.pro buffers diffs here until its snapshot arrives
        self.needs_resync = False
        self.depth = depth

    @classmethod
    def from_binance(cls, body: Mapping[str, Any], symbol: str | None = None,
                     depth: int | None = None) -> LocalBook:
        """A book from Binance's ``GET /api/v3/depth`` body (decimal strings, lastUpdateId)."""
        return cls({"bids": body["bids"], "asks": body["asks"], "symbol": symbol,
                    "nonce": int(body["lastUpdateId"])}, depth)

    @property
    def bids(self) -> BookSide:
        return self["bids"]  # type: ignore[no-any-return]

    @property
    def asks(self) -> BookSide:
        return self["asks"]  # type: ignore[no-any-return]

    @property
    def last_update_id(self) -> int | None:
        return self["nonce"]  # type: ignore[no-any-return]

    # -- ccxt.pro's OrderBook ---------------------------------------------------------------
    def reset(self, snapshot: Mapping[str, Any] | None = None) -> None:
        """Replace everything with ``snapshot`` (levels, nonce, timestamp, symbol)."""
        snapshot = snapshot or {}
        self.bids.replace(snapshot.get("bids", ()))
        self.asks.replace(snapshot.get("asks", ()))
        self["nonce"] = snapshot.get("nonce")
        self["timestamp"] = snapshot.get("timestamp")
        self["datetime"] = iso8601(self["timestamp"])
        self["symbol"] = snapshot.get("symbol")

    def limit(self) -> LocalBook:
        self.bids.limit()
        self.asks.limit()
        return self

    def copy(self) -> LocalBook:
        book = LocalBook({"symbol": self.get("symbol"), "nonce": self.get("nonce"),
                          "timestamp": self.get("timestamp")}, self.depth)
        book["bids"], book["asks"] = self.bids.copy(), self.asks.copy()
        return book

    def update(self, snapshot: Any = (), /, **_: Any) -> None:  # type: ignore[override]
        """ccxt's meaning: a newer snapshot replaces the book, an older one is ignored."""
        nonce = snapshot.get("nonce")
        if nonce is not None and self["nonce"] is not None and nonce < self["nonce"]:
            return
        self.reset(snapshot)

    # -- Binance diffs ----------------------------------------------------------------------
    def apply_levels(self, message: Mapping[str, Any]) -> None:
        """Apply a ``depthUpdate``'s levels and take its ``u`` and time, ids unchecked (ccxt.pro
        checks them before calling its ``handle_order_book_message``). With ``flat`` true its
        ``b`` and ``a`` are flat lists ``[price, amount, price, ...]`` of decimal strings."""
        bids, asks = message.get("b") or (), message.get("a") or ()
        if message.get("flat"):  # paired as applied: zip reuses its tuple, no list of pairs
            bids = zip(bids[0::2], bids[1::2], strict=True)
            asks = zip(asks[0::2], asks[1::2], strict=True)
        self.bids.apply(bids)
        self.asks.apply(asks)
        self["nonce"] = message.get("u")
        timestamp = message.get("E")
        self["timestamp"] = timestamp
        self["datetime"] = iso8601(timestamp)

    def apply_diff(self, message: Mapping[str, Any], before: Before | None = None) -> Outcome:
        """Apply one ``depthUpdate`` if it continues the book; say what happened.

        ``stale``: the book already has its last id (a repeat or an event from before the
        snapshot). ``gap``: its first id skips ids the book never saw; the book keeps its
        state, buffers this and later diffs and needs :meth:`resync`. ``buffered``: waiting
        for a snapshot. ``before(book, message)`` is called just before a diff is applied,
        while the book still shows the state the diff ends.
        """
        nonce = self["nonce"]
        if nonce is None or self.needs_resync:
            self._buffer(message)
            return "buffered"
        if message["u"] <= nonce:
            return "stale"
        if message["U"] > nonce + 1:
            self.needs_resync = True
            self.cache = []
            self._buffer(message)
            return "gap"
        if before is not None:
            before(self, message)
        self.apply_levels(message)
        return "applied"

    def resync(self, snapshot: Mapping[str, Any], before: Before | None = None) -> Outcome:
        """Start again from a REST snapshot (ccxt's shape, or Binance's body with
        ``lastUpdateId`` and decimal strings), then replay the buffered diffs. Returns
        ``gap`` when the snapshot is too old for them (ask for another), else ``applied``."""
        if "lastUpdateId" in snapshot:
            snapshot = {"bids": snapshot["bids"], "asks": snapshot["asks"],
                        "nonce": int(snapshot["lastUpdateId"]), "symbol": self.get("symbol")}
        self.reset({"symbol": self.get("symbol"), **snapshot})
        self.needs_resync = False
        buffered, self.cache = self.cache, []
        for i, message in enumerate(buffered):
            if self.apply_diff(message, before) == "gap":
                self.cache.extend(buffered[i + 1:])
                return "gap"
        return "applied"

    def _buffer(self, message: Mapping[str, Any]) -> None:
        self.cache.append(message)
        if len(self.cache) > MAX_BUFFERED:
            del self.cache[: len(self.cache) - MAX_BUFFERED]

    def top(self, n: int) -> tuple[list[Level], list[Level]]:
        """The best ``n`` bids and asks."""
        return self.bids.top(n), self.asks.top(n)
