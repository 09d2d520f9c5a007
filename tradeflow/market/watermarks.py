"""Validation's watermark per series: which stored candles have been judged.

The watermark is an ``ingested_at`` time: every candle of the series ingested up to it was
judged by a validation run. A candle written later (appended by a backfill, or older history
imported afterwards) is newer than the watermark whatever its open time, so the default
validation run judges exactly what it has not seen. The store keeps an unchanged candle's
row when it is written again, so re-importing a file does not make its candles new.
Writes are serialised (one writing process at a time, one write at a time in a process), so
no candle can commit with an ``ingested_at`` at or below a watermark taken after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tradeflow.market.store import MarketStore, SeriesKey
from tradeflow.market.tables import atomic

_KEY = "exchange = ? AND symbol = ? AND timeframe = ?"
_AFTER = (f"ingested_at > coalesce((SELECT max(ingested_through) FROM validation_state WHERE "
          f"{_KEY}), '-infinity'::TIMESTAMPTZ)")


@dataclass(frozen=True, slots=True)
class Unjudged:
    """Candles of a series not judged yet: their open-time span, count and newest ingest."""

    first: int
    last: int
    count: int
    through: datetime  # the watermark once they are judged


def unjudged(store: MarketStore, key: SeriesKey) -> Unjudged | None:
    """The candles ingested after the series' watermark, or None when there are none."""
    params = [key.exchange, key.symbol, key.timeframe]
    with store.connection() as con:
        row = con.execute(
            "SELECT min(open_time), max(open_time), count(*), max(ingested_at) FROM candles "
            f"WHERE {_KEY} AND {_AFTER}", params * 2).fetchone()
    if row is None or not row[2]:
        return None
    return Unjudged(int(row[0]), int(row[1]), int(row[2]), row[3])


def newest_ingest(store: MarketStore, key: SeriesKey) -> datetime | None:
    """The newest ``ingested_at`` of a series (the watermark after judging all of it)."""
    with store.connection() as con:
        row = con.execute(f"SELECT max(ingested_at) FROM candles WHERE {_KEY}",
                          [key.exchange, key.symbol, key.timeframe]).fetchone()
    return None if row is None else row[0]


def unjudged_count(store: MarketStore, key: SeriesKey, start: int | None = None,
                   end: int | None = None) -> int:
    """Candles with ``start <= open_time <= end`` that no validation run has judged."""
    lo, hi = -(2**62) if start is None else start, 2**62 if end is None else end
    params = [key.exchange, key.symbol, key.timeframe]
    with store.connection() as con:
        row = con.execute(f"SELECT count(*) FROM candles WHERE {_KEY} AND open_time BETWEEN ? "
                          f"AND ? AND {_AFTER}", [*params, lo, hi, *params]).fetchone()
    return int(row[0]) if row else 0


def mark_judged(store: MarketStore, key: SeriesKey, through: datetime) -> None:
    """Move the series' watermark to ``through`` (never back)."""
    params = [key.exchange, key.symbol, key.timeframe]
    with store.connection(write=True) as con, atomic(con):
        row = con.execute(f"SELECT max(ingested_through) FROM validation_state WHERE {_KEY}",
                          params).fetchone()
        newest = through if row is None or row[0] is None else max(row[0], through)
        con.execute(f"DELETE FROM validation_state WHERE {_KEY}", params)
        con.execute("INSERT INTO validation_state VALUES (?, ?, ?, ?, now())",
                    [*params, newest])
