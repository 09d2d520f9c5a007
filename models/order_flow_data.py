"""Recorded order flow onto stored candles: what training and evaluation feed the pipeline.

The market store's order-flow tables (trades, book snapshots) are read through the small
:class:`OrderFlowReader` protocol, per symbol, over the candles' span, and aggregated with
:func:`models.order_flow.attach`. How far the recording reaches is read from the data itself:
trades are read one candle beyond both ends of the span, so a candle counts as recorded only
when trades were stored before it opened and after it closed; a hole in the trade ids makes
the candles it spans missing. Missing is NaN, never zero, and the coverage is reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np
import pandas as pd

from models.order_flow import BOOK_INPUTS, TRADE_INPUTS, attach, coverage
from tradeflow import timeframes

__all__ = ["OrderFlowReader", "attach_recorded", "coverage_metrics"]


class OrderFlowReader(Protocol):
    """Stored trades and book snapshots of a series, ``start <= ts <= end``, ascending."""

    def trades(self, exchange: str, symbol: str, start: int | None = None,
               end: int | None = None) -> pd.DataFrame:
        """id, ts (UTC ms), price, amount, side ('buy'/'sell', the taker's)."""
        ...

    def book_snapshots(self, exchange: str, symbol: str, start: int | None = None,
                       end: int | None = None, kind: str | None = None) -> pd.DataFrame:
        """ts (UTC ms), kind, update_id, bid_price, bid_amount, ask_price, ask_amount."""
        ...


def attach_recorded(reader: OrderFlowReader, exchange: str, timeframe: str,
                    candles: Mapping[str, pd.DataFrame], inputs: Sequence[str], *,
                    max_book_age_ms: int | None = None) -> dict[str, pd.DataFrame]:
    """Each symbol's candles with the order-flow ``inputs`` from the store (NaN where none)."""
    period = timeframes.duration_ms(timeframe)
    max_age = period if max_book_age_ms is None else max_book_age_ms
    out: dict[str, pd.DataFrame] = {}
    for symbol, frame in candles.items():
        if frame.empty or not inputs:
            out[symbol] = frame
            continue
        first = int(frame["open_time"].iloc[0])
        last_close = int(frame["open_time"].iloc[-1]) + period
        trades = snapshots = None
        covered: tuple[int | None, int | None] = (None, None)
        if any(c in TRADE_INPUTS for c in inputs):
            trades = reader.trades(exchange, symbol, first - period, last_close + period - 1)
            if not trades.empty:
                ts = trades["ts"].to_numpy(dtype=np.int64)
                # Recorded from the first trade read to just after the last one.
                covered = (int(ts[0]), int(ts[-1]) + 1)
        if any(c in BOOK_INPUTS for c in inputs):
            snapshots = reader.book_snapshots(exchange, symbol, first + period - max_age + 1,
                                              last_close)
        out[symbol] = attach(frame, timeframe, inputs, trades, snapshots, covered=covered,
                             max_book_age_ms=max_age)
    return out


def coverage_metrics(candles: Mapping[str, pd.DataFrame], start_ms: int) -> dict[str, float]:
    """``data.orderflow.*`` metrics: the share of candles from ``start_ms`` with trades / a book,
    over all symbols and per symbol (empty when the candles carry no order-flow inputs)."""
    out: dict[str, float] = {}
    totals: dict[str, list[float]] = {}
    for symbol, frame in candles.items():
        part = frame.loc[frame["open_time"].to_numpy(dtype=np.int64) >= start_ms]
        for name, share in coverage(part).items():
            out[f"data.orderflow.{symbol}.{name}_coverage"] = share
            totals.setdefault(name, []).extend([share * len(part), len(part)])
    for name, pairs in totals.items():
        covered, rows = sum(pairs[0::2]), sum(pairs[1::2])
        out[f"data.orderflow.{name}_coverage"] = covered / rows if rows else float("nan")
    return out
