"""Trade and aggTrade look-ups on the tape: by id, by time, the latest; Binance's paging rules.

Trades and aggTrades are numbered without holes from minute to minute (``first_trade_id`` and
``first_agg_id`` of the series), so a look-up by id finds its minute by binary search and reads
on; a look-up by time starts at the minute of that time. Minutes in an outage or before the
listing have no trades.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from simulator.candles import Span
from simulator.market import MINUTE_MS, MinuteSeries
from simulator.trades import CandleTrades, TradeBook

SCAN_LIMIT = 3 * 1440  # minutes a search walks before giving up


@dataclass(frozen=True, slots=True)
class TradeRows:
    """Public trades as parallel arrays in id order (prices in ticks, qty in lot steps)."""

    ids: np.ndarray
    times: np.ndarray
    prices: np.ndarray
    qty: np.ndarray
    buyer_maker: np.ndarray

    def __len__(self) -> int:
        return int(self.ids.size)

    def take(self, sel: slice | np.ndarray) -> TradeRows:
        return TradeRows(*(getattr(self, f)[sel] for f in TradeRows.__slots__))


@dataclass(frozen=True, slots=True)
class AggRows:
    """aggTrades: id, first and last trade id, time, price, quantity, buyer was maker."""

    ids: np.ndarray
    first: np.ndarray
    last: np.ndarray
    times: np.ndarray
    prices: np.ndarray
    qty: np.ndarray
    buyer_maker: np.ndarray

    def __len__(self) -> int:
        return int(self.ids.size)

    def take(self, sel: slice | np.ndarray) -> AggRows:
        return AggRows(*(getattr(self, f)[sel] for f in AggRows.__slots__))


def _concat(parts: list, cls: type) -> object:
    if not parts:
        e = np.empty(0, dtype=np.int64)
        fields = cls.__slots__
        return cls(*(np.empty(0, bool) if f == "buyer_maker" else e for f in fields))
    return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in cls.__slots__))


def trade_rows(t: CandleTrades, now_ms: int) -> TradeRows:
    """The trades of one minute up to ``now_ms``."""
    m = t.count_until(now_ms)
    return TradeRows(t.ids[:m], t.times[:m], t.prices[:m], t.qty[:m], t.buyer_maker[:m])


def agg_rows(t: CandleTrades, now_ms: int) -> AggRows:
    """The aggTrades of one minute up to ``now_ms``."""
    m = t.groups_until(now_ms)
    first = t.first_id + t.g_first[:m]
    return AggRows(
        ids=t.first_agg_id + np.arange(m, dtype=np.int64),
        first=first,
        last=first + t.g_fills[:m] - 1,
        times=t.open_time + t.g_offset[:m],
        prices=t.g_price[:m],
        qty=t.g_qty[:m],
        buyer_maker=~t.g_buy[:m],
    )


class History:
    """Look-ups over the tape of one market."""

    def __init__(self, series: MinuteSeries, tape: TradeBook):
        self.series, self.tape = series, tape

    def _minutes(self, span: Span, k: int, stop: int, step: int) -> Iterator[int]:
        """Minutes with trades from ``k`` towards ``stop`` (inclusive), at most SCAN_LIMIT."""
        s = self.series
        end = stop + step
        for kk in range(k, end, step)[:SCAN_LIMIT]:
            if kk < 0:
                return
            start = s.anchor_ms + kk * MINUTE_MS
            if start < span.lo_ms and step < 0:
                return
            if bool(span.valid(np.array([start], dtype=np.int64))[0]):
                yield kk

    def _collect(
        self,
        rows_of: Callable[[CandleTrades, int], TradeRows | AggRows],
        span: Span,
        k: int,
        stop: int,
        limit: int,
        keep: Callable[[TradeRows | AggRows], np.ndarray] | None,
        forward: bool,
    ) -> list:
        parts: list = []
        got = 0
        for kk in self._minutes(span, k, stop, 1 if forward else -1):
            rows = rows_of(self.tape.minute(kk), span.now_ms)
            if keep is not None:
                rows = rows.take(keep(rows))
            parts.append(rows)
            got += len(rows)
            if got >= limit:
                break
        return parts if forward else parts[::-1]

    def _first_minute(self, ids: np.ndarray, wanted: int, now_k: int) -> int:
        self.series.ensure(now_k)
        return max(int(np.searchsorted(ids[: now_k + 1], wanted, side="right")) - 1, 0)

    def trades(
        self,
        span: Span,
        limit: int,
        from_id: int | None = None,
        start: int | None = None,
        end: int | None = None,
    ) -> TradeRows:
        """Trades with id >= ``from_id`` or time in [start, end] (oldest first), or the latest."""
        s, now_k = self.series, self.series.index_of(span.now_ms)
        stop = min(span.now_ms, end) if end is not None else span.now_ms
        if from_id is None and start is None:
            parts = self._collect(trade_rows, span, s.index_of(stop), 0, limit,
                                  lambda r: r.times <= stop, forward=False)  # fmt: skip
            rows = _concat(parts, TradeRows)
            return rows.take(slice(max(0, len(rows) - limit), None))  # type: ignore[arg-type]
        if from_id is not None:
            k = self._first_minute(s.first_trade_id, from_id, now_k)
            keep = lambda r: (r.ids >= from_id) & (r.times <= stop)  # noqa: E731
        else:
            assert start is not None
            k = max(s.index_of(start), 0)
            keep = lambda r: (r.times >= start) & (r.times <= stop)  # noqa: E731
        parts = self._collect(trade_rows, span, k, s.index_of(stop), limit, keep, forward=True)
        return _concat(parts, TradeRows).take(slice(0, limit))  # type: ignore[attr-defined]

    def agg_trades(
        self,
        span: Span,
        limit: int,
        from_id: int | None = None,
        start: int | None = None,
        end: int | None = None,
    ) -> AggRows:
        """Binance's aggTrades: from an id, from a time, up to a time, in a window, or latest.

        ``end`` alone gives the last ``limit`` before it; ``start`` (with or without ``end``)
        the first ``limit`` from it; neither, the latest ``limit``.
        """
        s, now_k = self.series, self.series.index_of(span.now_ms)
        stop = min(span.now_ms, end) if end is not None else span.now_ms
        if from_id is None and start is None:
            parts = self._collect(agg_rows, span, s.index_of(stop), 0, limit,
                                  lambda r: r.times <= stop, forward=False)  # fmt: skip
            rows = _concat(parts, AggRows)
            return rows.take(slice(max(0, len(rows) - limit), None))  # type: ignore[attr-defined]
        if from_id is not None:
            k = self._first_minute(s.first_agg_id, from_id, now_k)
            keep = lambda r: r.ids >= from_id  # noqa: E731
        else:
            assert start is not None
            k = max(s.index_of(start), 0)
            keep = lambda r: (r.times >= start) & (r.times <= stop)  # noqa: E731
        parts = self._collect(agg_rows, span, k, s.index_of(stop), limit, keep, forward=True)
        return _concat(parts, AggRows).take(slice(0, limit))  # type: ignore[attr-defined]
