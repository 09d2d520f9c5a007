"""A bounded, columnar in-memory buffer of market data per symbol and channel.

Each (symbol, channel) series is a ring of NumPy columns: an int64 time column (UTC ms: trade
time, ticker time, candle open time, book time) and one float64 block holding the channel's
value columns (:data:`COLUMNS`). A series is bounded by a row count (``max_rows``: the oldest
rows are overwritten) and/or an age (``max_age_ms``: rows older than the newest row minus the
age are dropped); with no count bound the ring grows by doubling. Memory is 8 bytes per column
per row of capacity: ``nbytes()`` says what a buffer holds (a ticker row is 40 bytes, so 10,000
tickers take 400,000 bytes).

Queries copy out of the ring and return pandas (indexed by ``ts``), Arrow or plain NumPy. The
pandas result is one float64 block plus an int64 index built from prepared column labels, which
keeps a latest-100 query in the tens of microseconds (``bench/marketdata.py``). The Arrow result
is read as one IPC record-batch message (Arrow's stable columnar format): a header prepared
once per (columns, row count) followed by the columns copied straight out of the ring, so one
call builds all columns instead of one ``pa.array`` per column (about a third of the time).

Times within a series must not go backwards; a row older than the newest is dropped and
counted in ``out_of_order``. A candle row with the newest open time replaces it (the stream
sends a candle many times while it is open).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa

Channel = Literal["candles", "trades", "ticker", "book"]
Output = Literal["pandas", "arrow", "numpy"]
CHANNELS: tuple[str, ...] = ("candles", "trades", "ticker", "book")
# value columns after ``ts``; trades' side is +1 buy, -1 sell, 0 unknown (the taker's side)
COLUMNS: dict[str, tuple[str, ...]] = {
    "candles": ("open", "high", "low", "close", "volume"),
    "trades": ("id", "price", "amount", "side"),
    "ticker": ("last", "bid", "ask", "volume"),
    "book": ("bid", "ask", "bid_size", "ask_size"),
}
# the column that is "the price" of a channel
PRICE_COLUMN = {"candles": "close", "trades": "price", "ticker": "last", "book": "bid"}
_INITIAL = 1024


@functools.lru_cache(maxsize=32)
def arrow_schema(columns: tuple[str, ...]) -> pa.Schema:
    """``ts`` (int64) and the value columns (float64) of an Arrow result."""
    return pa.schema([pa.field("ts", pa.int64()), *(pa.field(c, pa.float64()) for c in columns)])


@functools.lru_cache(maxsize=256)
def _ipc_header(columns: tuple[str, ...], n: int) -> np.ndarray:
    """The bytes before the body of an IPC record-batch message of ``n`` rows without nulls.

    Its body is then the columns' data one after another (``n * 8`` bytes each, already
    8-byte aligned, validity buffers empty): checked here once on a batch of known values.
    """
    schema = arrow_schema(columns)
    block = np.arange((1 + len(columns)) * n, dtype=np.float64).reshape(1 + len(columns), n)
    batch = pa.RecordBatch.from_arrays([pa.array(block[0].astype(np.int64)),
                                        *map(pa.array, block[1:])], schema=schema)
    raw = batch.serialize().to_pybytes()
    header = np.frombuffer(raw[: len(raw) - block.nbytes], np.uint8).copy()
    body = np.frombuffer(raw[len(header):], np.float64).reshape(block.shape)
    if len(header) % 8 or not np.array_equal(body[1:], block[1:]) or \
            not np.array_equal(body[0].view(np.int64), block[0].astype(np.int64)):
        raise RuntimeError(f"pyarrow {pa.__version__}: unexpected IPC body layout")
    return header


class Series:
    """One ring of rows: ``ts`` (int64) and a float64 block of value columns."""

    def __init__(self, columns: Sequence[str], *, max_rows: int | None = None,
                 max_age_ms: int | None = None, replace_same_ts: bool = False) -> None:
        if max_rows is not None and max_rows < 1:
            raise ValueError(f"max_rows {max_rows}: must be at least 1")
        if max_age_ms is not None and max_age_ms <= 0:
            raise ValueError(f"max_age_ms {max_age_ms}: must be positive")
        self.columns = tuple(columns)
        self.max_rows, self.max_age_ms = max_rows, max_age_ms
        self.replace_same_ts = replace_same_ts
        self.out_of_order = 0
        cap = min(_INITIAL, max_rows) if max_rows else _INITIAL
        self._ts = np.empty(cap, np.int64)
        self._vals = np.empty((len(self.columns), cap), np.float64)
        self._start = self._size = 0
        self._labels = pd.Index(self.columns)  # built once: a query reuses it
        self._schema = arrow_schema(self.columns)

    def __len__(self) -> int:
        return self._size

    @property
    def capacity(self) -> int:
        return len(self._ts)

    @property
    def nbytes(self) -> int:
        return int(self._ts.nbytes + self._vals.nbytes)

    @property
    def newest_ts(self) -> int | None:
        if not self._size:
            return None
        return int(self._ts[(self._start + self._size - 1) % self.capacity])

    # -- writing ---------------------------------------------------------------------------
    def append(self, ts: int, values: Sequence[float]) -> bool:
        """Add one row; False when it was older than the newest row (dropped)."""
        cap = self.capacity
        if self._size:
            last = (self._start + self._size - 1) % cap
            newest = int(self._ts[last])
            if ts < newest:
                self.out_of_order += 1
                return False
            if ts == newest and self.replace_same_ts:
                self._vals[:, last] = values
                return True
        if self._size == cap and not self._grow():
            self._start = (self._start + 1) % cap
            self._size -= 1
        cap = self.capacity
        pos = (self._start + self._size) % cap
        self._ts[pos] = ts
        self._vals[:, pos] = values
        self._size += 1
        if self.max_age_ms is not None:
            self._trim(ts - self.max_age_ms)
        return True

    def extend(self, ts: Iterable[int], rows: Iterable[Sequence[float]]) -> int:
        """Add rows in order; the number kept."""
        return sum(self.append(int(t), r) for t, r in zip(ts, rows, strict=True))

    def clear(self) -> None:
        self._start = self._size = 0

    def _grow(self) -> bool:
        cap = self.capacity
        if self.max_rows is not None and cap >= self.max_rows:
            return False
        new = cap * 2 if self.max_rows is None else min(cap * 2, self.max_rows)
        order = (self._start + np.arange(self._size)) % cap
        ts, vals = np.empty(new, np.int64), np.empty((len(self.columns), new), np.float64)
        ts[: self._size], vals[:, : self._size] = self._ts[order], self._vals[:, order]
        self._ts, self._vals, self._start = ts, vals, 0
        return True

    def _trim(self, cutoff: int) -> None:
        drop = self._search(cutoff, "left")
        if drop:
            self._start = (self._start + drop) % self.capacity
            self._size -= drop

    # -- reading ---------------------------------------------------------------------------
    def _search(self, value: int, side: Literal["left", "right"]) -> int:
        """Logical index where ``value`` would go in the (sorted) ts column."""
        cap, start, size = self.capacity, self._start, self._size
        first = min(size, cap - start)  # rows before the ring wraps
        head = self._ts[start:start + first]
        pos = int(np.searchsorted(head, value, side))
        if pos < first or first == size:
            return pos
        return first + int(np.searchsorted(self._ts[: size - first], value, side))

    def _take(self, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        """Copies of logical rows [a, b)."""
        cap, n = self.capacity, b - a
        p = (self._start + a) % cap
        if p + n <= cap:
            return self._ts[p:p + n].copy(), self._vals[:, p:p + n].copy()
        k = cap - p
        return (np.concatenate((self._ts[p:], self._ts[: n - k])),
                np.concatenate((self._vals[:, p:], self._vals[:, : n - k]), axis=1))

    def _arrow(self, a: int, b: int) -> pa.RecordBatch:
        """Logical rows [a, b) as a record batch owning a copy of them."""
        cap, n = self.capacity, b - a
        header = _ipc_header(self.columns, n)
        h = len(header)
        message = np.empty(h + (1 + len(self.columns)) * n * 8, np.uint8)
        message[:h] = header
        body = message[h:].view(np.float64).reshape(1 + len(self.columns), n)
        ts = body[0].view(np.int64)
        p = (self._start + a) % cap
        k = min(n, cap - p)  # rows before the ring wraps
        ts[:k], body[1:, :k] = self._ts[p:p + k], self._vals[:, p:p + k]
        if k < n:
            ts[k:], body[1:, k:] = self._ts[: n - k], self._vals[:, : n - k]
        return pa.ipc.read_record_batch(pa.py_buffer(message), self._schema)

    def latest(self, limit: int, output: Output = "pandas") -> Any:
        """The newest ``limit`` rows, oldest first."""
        n = min(max(int(limit), 0), self._size)
        if output == "arrow":
            return self._arrow(self._size - n, self._size)
        return self._out(*self._take(self._size - n, self._size), output)

    def between(self, start: int, end: int, output: Output = "pandas") -> Any:
        """Rows with ``start <= ts <= end``."""
        a, b = self._search(start, "left"), self._search(end, "right")
        if output == "arrow":
            return self._arrow(a, max(a, b))
        return self._out(*self._take(a, max(a, b)), output)

    def last_values(self) -> tuple[int, np.ndarray] | None:
        if not self._size:
            return None
        i = (self._start + self._size - 1) % self.capacity
        return int(self._ts[i]), self._vals[:, i]

    def column(self, name: str, limit: int) -> np.ndarray:
        """The newest ``limit`` values of one column, oldest first."""
        n = min(limit, self._size)
        _, vals = self._take(self._size - n, self._size)
        return vals[self.columns.index(name)]

    def _out(self, ts: np.ndarray, vals: np.ndarray, output: Output) -> Any:
        if output == "pandas":
            return pd.DataFrame(vals.T, index=pd.Index(ts, name="ts", copy=False),
                                columns=self._labels, copy=False)
        if output == "numpy":
            return {"ts": ts, **dict(zip(self.columns, vals, strict=True))}
        raise ValueError(f"output {output!r}: must be one of pandas, arrow, numpy")


@dataclass(frozen=True, slots=True)
class Price:
    """A symbol's newest price, when it was received (``time.time()``) and its age."""

    symbol: str
    price: float
    ts: int  # exchange time, UTC ms
    channel: str
    received: float
    age_s: float


class MarketBuffer:
    """Series per (symbol, channel), created on first write, with the same bounds."""

    def __init__(self, *, max_rows: int | None = 10_000, max_age_ms: int | None = None) -> None:
        if max_rows is None and max_age_ms is None:
            raise ValueError("a buffer needs max_rows and/or max_age_ms")
        self.max_rows, self.max_age_ms = max_rows, max_age_ms
        self._series: dict[tuple[str, str], Series] = {}
        self._received: dict[tuple[str, str], float] = {}

    def series(self, symbol: str, channel: str) -> Series:
        key = (symbol, channel)
        found = self._series.get(key)
        if found is None:
            if channel not in COLUMNS:
                raise ValueError(f"channel {channel!r}: must be one of {', '.join(CHANNELS)}")
            found = self._series[key] = Series(COLUMNS[channel], max_rows=self.max_rows,
                                               max_age_ms=self.max_age_ms,
                                               replace_same_ts=channel == "candles")
        return found

    def add(self, symbol: str, channel: str, ts: int, values: Sequence[float],
            received: float) -> bool:
        """Add one row received at ``received`` (``time.time()``)."""
        kept = self.series(symbol, channel).append(ts, values)
        if kept:
            self.mark_received(symbol, channel, received)
        return kept

    def mark_received(self, symbol: str, channel: str, received: float) -> None:
        """Note that rows of a series arrived at ``received`` (``time.time()``)."""
        self._received[(symbol, channel)] = received

    def get_latest(self, symbol: str, limit: int = 100, channel: str = "trades",
                   output: Output = "pandas") -> Any:
        """The newest ``limit`` rows of a symbol's channel, oldest first."""
        return self.series(symbol, channel).latest(limit, output)

    def get_range(self, symbol: str, start: int, end: int, channel: str = "trades",
                  output: Output = "pandas") -> Any:
        """Rows of a symbol's channel with ``start <= ts <= end`` (UTC ms)."""
        return self.series(symbol, channel).between(start, end, output)

    def clear(self, symbol: str | None = None, channel: str | None = None) -> None:
        """Empty every series, or those of one symbol and/or channel."""
        for (s, c), series in self._series.items():
            if (symbol is None or s == symbol) and (channel is None or c == channel):
                series.clear()

    def symbols(self) -> list[str]:
        return sorted({s for (s, _), series in self._series.items() if len(series)})

    def nbytes(self) -> int:
        """Bytes held by every series' columns (their capacity, not just the rows in use)."""
        return sum(s.nbytes for s in self._series.values())

    def current_price(self, symbol: str, now: float) -> Price | None:
        """The newest price of ``symbol`` over its channels, with its age at ``now``
        (``time.time()``); None before any data."""
        best: Price | None = None
        for channel in CHANNELS:
            series = self._series.get((symbol, channel))
            last = series.last_values() if series is not None else None
            if last is None:
                continue
            received = self._received[(symbol, channel)]
            if best is None or received > best.received:
                price = float(last[1][series.columns.index(PRICE_COLUMN[channel])])  # type: ignore[union-attr]
                best = Price(symbol, price, last[0], channel, received, max(0.0, now - received))
        return best

    def volatility(self, symbol: str, window: int = 100, channel: str = "trades") -> float | None:
        """Standard deviation of the log returns of the last ``window`` prices of a channel
        (per step, not annualised); None with fewer than three prices."""
        series = self._series.get((symbol, channel))
        if series is None or len(series) < 3:
            return None
        prices = series.column(PRICE_COLUMN[channel], window + 1)
        prices = prices[prices > 0]
        if len(prices) < 3:
            return None
        value = float(np.std(np.diff(np.log(prices)), ddof=1))
        return value if math.isfinite(value) else None
