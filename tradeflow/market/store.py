"""The market store: candles in DuckDB, keyed by (exchange, symbol, timeframe, open_time).

The database file is opened only for the length of one short transaction and retried while
another process holds it (:mod:`tradeflow.market.duckdb_file`): a backfill and a reader in
another process take turns and neither fails. ``MarketStore(path, hold=True)`` keeps one
connection open instead (one process owns the file; fastest for benchmarks, in-memory).

Uniqueness of a candle is enforced by the write path rather than by a primary-key index:
DuckDB's ART index costs about 3x on bulk inserts (0.7M vs 2M rows/s here). Every write
deletes the keys it replaces and inserts the batch in one transaction, batches are
de-duplicated first, and writes within a process are serialised; across processes the file
lock serialises them. :meth:`MarketStore.duplicate_count` checks the invariant.

Candles that break a hard validation rule are stored as received and also listed in
``candles_quarantine`` (key, rule, raw values, when found); ``read(exclude_quarantined=True)``
leaves them out. Validation never rewrites the candles table. When a quarantined candle has
since been replaced by different values that pass (a re-import, a refetch), validation moves
its entries to ``candles_quarantine_released``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from tradeflow.market.duckdb_file import DuckDBFile

if TYPE_CHECKING:
    from tradeflow.config import Settings

log = logging.getLogger(__name__)

QUARANTINE_VALUES = ("open", "high", "low", "close", "volume")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS candles (
    exchange     VARCHAR NOT NULL,
    symbol       VARCHAR NOT NULL,
    timeframe    VARCHAR NOT NULL,
    open_time    BIGINT  NOT NULL,   -- candle open, UTC milliseconds
    open         DOUBLE  NOT NULL,
    high         DOUBLE  NOT NULL,
    low          DOUBLE  NOT NULL,
    close        DOUBLE  NOT NULL,
    volume       DOUBLE,
    quote_volume DOUBLE,
    trades       BIGINT,
    ingested_at  TIMESTAMPTZ NOT NULL,
    source       VARCHAR NOT NULL    -- 'rest', 'import:<file>', ...
);
CREATE TABLE IF NOT EXISTS unfillable_gaps (
    exchange    VARCHAR NOT NULL,
    symbol      VARCHAR NOT NULL,
    timeframe   VARCHAR NOT NULL,
    start_time  BIGINT  NOT NULL,    -- first missing open time
    end_time    BIGINT  NOT NULL,    -- last missing open time
    missing     BIGINT  NOT NULL,
    reason      VARCHAR NOT NULL,
    checked_at  TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS candles_quarantine (
    exchange     VARCHAR NOT NULL,
    symbol       VARCHAR NOT NULL,
    timeframe    VARCHAR NOT NULL,
    open_time    BIGINT  NOT NULL,
    rule         VARCHAR NOT NULL,   -- the hard rule broken (tradeflow.contracts.rules)
    open         DOUBLE,             -- the values as received, NULL where they were missing
    high         DOUBLE,
    low          DOUBLE,
    close        DOUBLE,
    volume       DOUBLE,
    source       VARCHAR NOT NULL,   -- who found it: 'rest', 'import:<file>', 'validate'
    found_at     TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS candles_quarantine_released (  -- entries whose candle was replaced
    exchange     VARCHAR NOT NULL,                          -- by one that passes
    symbol       VARCHAR NOT NULL,
    timeframe    VARCHAR NOT NULL,
    open_time    BIGINT  NOT NULL,
    rule         VARCHAR NOT NULL,
    open         DOUBLE,
    high         DOUBLE,
    low          DOUBLE,
    close        DOUBLE,
    volume       DOUBLE,
    source       VARCHAR NOT NULL,
    found_at     TIMESTAMPTZ NOT NULL,
    released_at  TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS series_state (
    exchange       VARCHAR NOT NULL,
    symbol         VARCHAR NOT NULL,
    timeframe      VARCHAR NOT NULL,
    listed_from    BIGINT,            -- earliest candle the exchange has (none before it)
    updated_at     TIMESTAMPTZ NOT NULL
);
"""

@dataclass(frozen=True, slots=True)
class SeriesKey:
    exchange: str
    symbol: str
    timeframe: str

    def __str__(self) -> str:
        return f"{self.exchange}:{self.symbol}:{self.timeframe}"


@dataclass(frozen=True, slots=True)
class UnfillableGap:
    start_time: int
    end_time: int
    missing: int
    reason: str


class MarketStore:
    """Candles, unfillable gaps and per-series state in one DuckDB database."""

    def __init__(self, path: str | Path, *, hold: bool = False, lock_retries: int = 50,
                 read_only: bool = False) -> None:
        self.path = str(path)
        self.read_only = read_only
        self._db = DuckDBFile(self.path, hold=hold, lock_retries=lock_retries,
                              read_only=read_only)
        self._connect = self._db.connect
        if not read_only:
            with self._connect(write=True) as con:
                con.execute(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> MarketStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writes ----------------------------------------------------------------------------
    def upsert(self, candles: pd.DataFrame | pa.Table, *, exchange: str | None = None,
               symbol: str | None = None, timeframe: str | None = None,
               source: str = "rest") -> int:
        """Insert or replace candles in one transaction; returns the number of rows written.

        ``candles`` carries open_time, open, high, low, close, volume and optionally
        quote_volume, trades and source; exchange, symbol and timeframe come from its columns
        or from the arguments. Rows of one batch with the same key keep the last occurrence.
        """
        frame = candles.to_pandas() if isinstance(candles, pa.Table) else candles
        batches = [(key, _series_table(part)) for key, part in
                   _split_series(frame, exchange, symbol, timeframe)]
        batches = [(key, table) for key, table in batches if table.num_rows]
        if not batches:
            return 0
        with self._connect(write=True) as con:
            try:
                with _atomic(con):
                    for key, table in batches:
                        _write_series(con, key, table, source)
            finally:
                # Unregistering inside an aborted transaction fails and would hide the error.
                con.unregister("batch")
        return sum(table.num_rows for _, table in batches)

    def record_unfillable(self, key: SeriesKey, start: int, end: int, missing: int,
                          reason: str) -> None:
        """Remember a range the exchange has no candles for, so runs stop asking."""
        with self._connect(write=True) as con:
            con.execute(
                "DELETE FROM unfillable_gaps WHERE exchange=? AND symbol=? AND timeframe=? "
                "AND start_time=? AND end_time=?",
                [key.exchange, key.symbol, key.timeframe, start, end],
            )
            con.execute(
                "INSERT INTO unfillable_gaps VALUES (?, ?, ?, ?, ?, ?, ?, now())",
                [key.exchange, key.symbol, key.timeframe, start, end, missing, reason],
            )

    def forget_unfillable(self, key: SeriesKey, start: int, end: int | None = None) -> int:
        """Drop recorded unfillable gaps that overlap [start, end], so the next backfill asks
        the exchange for them again; returns how many were dropped."""
        where = ("exchange=? AND symbol=? AND timeframe=? AND end_time>=?"
                 + ("" if end is None else " AND start_time<=?"))
        params = [key.exchange, key.symbol, key.timeframe, start]
        if end is not None:
            params.append(end)
        with self._connect(write=True) as con:
            return len(con.execute(f"DELETE FROM unfillable_gaps WHERE {where} RETURNING 1",
                                   params).fetchall())

    def quarantine(self, key: SeriesKey, rows: pd.DataFrame, *, source: str) -> int:
        """Record candles that broke a hard rule; returns how many entries are new.

        ``rows`` carries open_time, rule and the raw open, high, low, close, volume. An entry
        already recorded with the same key, rule and values is not added again, so validating
        the same data twice changes nothing. The candles table is never touched.
        """
        if rows.empty:
            return 0
        batch = pd.DataFrame({
            "open_time": rows["open_time"].to_numpy(dtype=np.int64),
            "rule": rows["rule"].astype(str).to_numpy(dtype=object),
            **{c: pd.to_numeric(rows[c], errors="coerce").to_numpy(dtype=np.float64)
               for c in QUARANTINE_VALUES},
        }).drop_duplicates()
        same_values = " AND ".join(f"q.{c} IS NOT DISTINCT FROM b.{c}" for c in QUARANTINE_VALUES)
        with self._connect(write=True) as con, _registered(con, "qbatch", batch):
            row = con.execute(
                "INSERT INTO candles_quarantine SELECT ?, ?, ?, b.open_time, b.rule, "
                f"{', '.join('b.' + c for c in QUARANTINE_VALUES)}, ?, now() FROM qbatch b "
                "WHERE NOT EXISTS (SELECT 1 FROM candles_quarantine q WHERE q.exchange = ? "
                "AND q.symbol = ? AND q.timeframe = ? AND q.open_time = b.open_time "
                f"AND q.rule = b.rule AND {same_values})",
                [key.exchange, key.symbol, key.timeframe, source,
                 key.exchange, key.symbol, key.timeframe],
            ).fetchone()
        return int(row[0]) if row else 0

    def release_quarantine(self, key: SeriesKey, start: int, end: int | None,
                           still_failing: np.ndarray) -> int:
        """Release quarantine entries in [start, end] whose candle was corrected.

        An entry is released when a candle is stored at its open time with values other than
        the quarantined raw ones and that open time is not in ``still_failing`` (the open
        times that break a hard rule now). The entry moves to ``candles_quarantine_released``
        with the time of release; returns how many entries moved.
        """
        changed = " OR ".join(f"q.{c} IS DISTINCT FROM c.{c}" for c in QUARANTINE_VALUES)
        window = "q.open_time >= ?" + ("" if end is None else " AND q.open_time <= ?")
        params: list[object] = [key.exchange, key.symbol, key.timeframe, start]
        if end is not None:
            params.append(end)
        failing = pd.DataFrame({"open_time": np.asarray(still_failing, dtype=np.int64)})
        picked = (
            "SELECT q.* FROM candles_quarantine q JOIN candles c ON c.exchange = q.exchange "
            "AND c.symbol = q.symbol AND c.timeframe = q.timeframe AND c.open_time = "
            "q.open_time WHERE q.exchange = ? AND q.symbol = ? AND q.timeframe = ? AND "
            f"{window} AND ({changed}) AND q.open_time NOT IN (SELECT open_time FROM failing)")
        columns = ("exchange, symbol, timeframe, open_time, rule, "
                   f"{', '.join(QUARANTINE_VALUES)}, source, found_at")
        with self._connect(write=True) as con:
            with _registered(con, "failing", failing):
                released = con.execute(picked, params).df()
            if released.empty:
                return 0
            with _registered(con, "released", released), _atomic(con):
                con.execute(f"INSERT INTO candles_quarantine_released SELECT {columns}, now() "
                            "FROM released")
                con.execute(
                    "DELETE FROM candles_quarantine q USING released r WHERE "
                    "q.exchange = r.exchange AND q.symbol = r.symbol AND q.timeframe = "
                    "r.timeframe AND q.open_time = r.open_time AND q.rule = r.rule AND "
                    "q.source = r.source AND q.found_at = r.found_at")
        return len(released)

    def set_listed_from(self, key: SeriesKey, listed_from: int) -> None:
        """Record the first candle the exchange has for a series (a later listing)."""
        with self._connect(write=True) as con:
            con.execute(
                "DELETE FROM series_state WHERE exchange=? AND symbol=? AND timeframe=?",
                [key.exchange, key.symbol, key.timeframe],
            )
            con.execute(
                "INSERT INTO series_state VALUES (?, ?, ?, ?, now())",
                [key.exchange, key.symbol, key.timeframe, listed_from],
            )

    # -- reads -----------------------------------------------------------------------------
    def read(self, key: SeriesKey, start: int | None = None, end: int | None = None,
             columns: tuple[str, ...] = ("open_time", "open", "high", "low", "close",
                                         "volume", "quote_volume", "trades"),
             *, exclude_quarantined: bool = False) -> pd.DataFrame:
        """Candles of one series with ``start <= open_time <= end``, ascending.

        ``exclude_quarantined`` leaves out every candle whose key is in the quarantine, for
        whatever rule (training reads this way).
        """
        lo, hi = -(2**62) if start is None else start, 2**62 if end is None else end
        where = "exchange=? AND symbol=? AND timeframe=? AND open_time BETWEEN ? AND ?"
        params = [key.exchange, key.symbol, key.timeframe, lo, hi]
        anti = ""
        if exclude_quarantined:
            anti = (f"ANTI JOIN (SELECT DISTINCT open_time FROM candles_quarantine WHERE {where})"
                    " AS q USING (open_time) ")
            params = params + params
        sql = (f"SELECT {', '.join(columns)} FROM candles {anti}WHERE {where} "
               "ORDER BY open_time")
        with self._connect() as con:
            return con.execute(sql, params).df()

    def sql(self, query: str, params: list[Any] | None = None) -> pd.DataFrame:
        """Run a read-only query and return a frame (for reports and tools)."""
        with self._connect() as con:
            return con.execute(query, params or []).df()

    def bounds(self, key: SeriesKey) -> tuple[int, int, int] | None:
        """(first open_time, last open_time, count) of a series, or None when empty."""
        with self._connect() as con:
            row = con.execute(
                "SELECT min(open_time), max(open_time), count(*) FROM candles "
                "WHERE exchange=? AND symbol=? AND timeframe=?",
                [key.exchange, key.symbol, key.timeframe],
            ).fetchone()
        if row is None or row[2] == 0:
            return None
        return int(row[0]), int(row[1]), int(row[2])

    def listed_from(self, key: SeriesKey) -> int | None:
        with self._connect() as con:
            row = con.execute(
                "SELECT listed_from FROM series_state WHERE exchange=? AND symbol=? "
                "AND timeframe=?",
                [key.exchange, key.symbol, key.timeframe],
            ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def unfillable(self, key: SeriesKey) -> list[UnfillableGap]:
        with self._connect() as con:
            rows = con.execute(
                "SELECT start_time, end_time, missing, reason FROM unfillable_gaps "
                "WHERE exchange=? AND symbol=? AND timeframe=? ORDER BY start_time",
                [key.exchange, key.symbol, key.timeframe],
            ).fetchall()
        return [UnfillableGap(int(a), int(b), int(m), r) for a, b, m, r in rows]

    def quarantined(self, key: SeriesKey) -> pd.DataFrame:
        """Quarantine entries of one series (open_time, rule, raw values, source, found_at)."""
        with self._connect() as con:
            return con.execute(
                "SELECT open_time, rule, open, high, low, close, volume, source, found_at "
                "FROM candles_quarantine WHERE exchange=? AND symbol=? AND timeframe=? "
                "ORDER BY open_time, rule",
                [key.exchange, key.symbol, key.timeframe],
            ).df()

    def series(self) -> list[SeriesKey]:
        """Every series that has at least one candle."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT DISTINCT exchange, symbol, timeframe FROM candles ORDER BY ALL"
            ).fetchall()
        return [SeriesKey(*r) for r in rows]

    def duplicate_count(self) -> int:
        """Rows beyond the first per key: zero unless the uniqueness invariant broke."""
        with self._connect() as con:
            row = con.execute(
                "SELECT count(*) - (SELECT count(*) FROM (SELECT DISTINCT exchange, symbol, "
                "timeframe, open_time FROM candles)) FROM candles"
            ).fetchone()
        return int(row[0]) if row else 0

    @contextlib.contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read connection for the length of a ``with`` block (gap scans, coverage)."""
        with self._connect() as con:
            yield con


def open_store(settings: Settings) -> MarketStore:
    """The market store of a profile (``store.path`` under ``data_dir``, by default)."""
    return MarketStore(settings.store_path, lock_retries=settings.store.lock_retries)


def _split_series(frame: pd.DataFrame, exchange: str | None, symbol: str | None,
                  timeframe: str | None) -> list[tuple[SeriesKey, pd.DataFrame]]:
    """One part per series; key columns win over the defaults given as arguments."""
    defaults = {"exchange": exchange, "symbol": symbol, "timeframe": timeframe}
    present = [c for c in defaults if c in frame.columns]
    missing = [c for c in defaults if c not in present and defaults[c] is None]
    if missing:
        raise ValueError(f"upsert: column(s) {missing} missing and no default given")
    if not present:
        return [(SeriesKey(exchange, symbol, timeframe), frame)]  # type: ignore[arg-type]
    parts = []
    for values, part in frame.groupby(present, sort=False):
        named = dict(zip(present, values if isinstance(values, tuple) else (values,),
                         strict=True))
        parts.append((SeriesKey(**{**defaults, **named}), part))  # type: ignore[arg-type]
    return parts


def _series_table(frame: pd.DataFrame) -> pa.Table:
    """A series' rows as an Arrow table: ascending open_time, last occurrence of a key kept."""
    times = frame["open_time"].to_numpy(dtype=np.int64)
    order: np.ndarray | None = None
    if times.size > 1 and not bool((np.diff(times) > 0).all()):
        reverse = times[::-1]
        _, first_in_reverse = np.unique(reverse, return_index=True)
        order = times.size - 1 - first_in_reverse  # ascending times, last occurrence

    def column(name: str, dtype: Any) -> pa.Array:
        if name not in frame.columns:
            return pa.nulls(len(times) if order is None else len(order), type=dtype)
        values = frame[name]
        if order is not None:
            values = values.iloc[order]
        return pa.array(values, type=dtype, from_pandas=True)  # NaN/NA -> NULL

    fields = {
        "open_time": pa.array(times if order is None else times[order], type=pa.int64()),
        **{c: column(c, pa.float64()) for c in ("open", "high", "low", "close", "volume",
                                               "quote_volume")},
        "trades": column("trades", pa.int64()),
        "source": column("source", pa.string()),
    }
    return pa.table(fields)


def _write_series(con: duckdb.DuckDBPyConnection, key: SeriesKey, table: pa.Table,
                  source: str) -> None:
    lo = table["open_time"][0].as_py()
    hi = table["open_time"][-1].as_py()
    con.register("batch", table)
    # Replace semantics: drop the stored rows this batch supersedes, bounded by time so
    # DuckDB's zone maps skip untouched row groups.
    con.execute(
        "DELETE FROM candles WHERE exchange = $ex AND symbol = $sym AND timeframe = $tf "
        "AND open_time BETWEEN $lo AND $hi AND open_time IN (SELECT open_time FROM batch)",
        {"ex": key.exchange, "sym": key.symbol, "tf": key.timeframe, "lo": lo, "hi": hi},
    )
    con.execute(
        "INSERT INTO candles SELECT $ex, $sym, $tf, open_time, open, high, low, close, "
        "volume, quote_volume, trades, now(), coalesce(source, $src) FROM batch",
        {"ex": key.exchange, "sym": key.symbol, "tf": key.timeframe, "src": source},
    )


@contextlib.contextmanager
def _atomic(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One transaction: committed at the end of the block, rolled back by any exception."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


@contextlib.contextmanager
def _registered(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame
                ) -> Iterator[None]:
    """``frame`` visible to SQL as ``name`` for the block (entered outside any transaction
    block it wraps: unregistering inside an aborted transaction fails)."""
    con.register(name, frame)
    try:
        yield
    finally:
        con.unregister(name)
