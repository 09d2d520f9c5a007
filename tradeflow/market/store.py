"""The market store: candles in DuckDB, keyed by (exchange, symbol, timeframe, open_time).

The database file is opened only for the length of one short transaction and retried while
another process holds it (:mod:`tradeflow.market.duckdb_file`): a backfill and a reader in
another process take turns and neither fails. ``MarketStore(path, hold=True)`` keeps one
connection open instead (one process owns the file; fastest for benchmarks, in-memory).

Every write checks the candle contract (:mod:`tradeflow.contracts`), whoever writes: a frame
with a candle at an implausible time, off its timeframe's grid or without a positive, finite
price is refused whole with one line naming the rule and the first failing candle, and nothing
is written. Candles breaking the other hard rules (a high below the body, a missing volume)
are stored as received and listed in ``candles_quarantine`` in the same transaction.

Uniqueness of a candle is enforced by the write path rather than by a primary-key index:
DuckDB's ART index costs about 3x on bulk inserts (0.7M vs 2M rows/s here). Every write
replaces the stored candles whose values differ from the batch's and inserts the new ones in
one transaction (a candle written again unchanged keeps its row and ``ingested_at``, so a
re-import changes nothing), batches are de-duplicated first, and writes within a process are
serialised; across processes the file lock serialises them. :meth:`duplicate_count` checks
the invariant.

``read(usable_only=True)`` leaves out candles that are quarantined or excluded by a
validation policy (:mod:`tradeflow.market.quarantine`); validation never rewrites candles.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from tradeflow.contracts.rules import QUARANTINED_AT_STORE
from tradeflow.contracts.schemas import FrameCheck, check_candles, refusal
from tradeflow.errors import UsageError
from tradeflow.market.bulk_insert import insert_new_history, one_thread
from tradeflow.market.duckdb_file import DuckDBFile
from tradeflow.market.ducklake import DuckLakeCatalog
from tradeflow.market.tables import (
    QUARANTINE_VALUES,
    VALUE_COLUMNS,
    CandleBatch,
    SeriesKey,
    atomic,
    create,
    insert_quarantine,
    registered,
)

if TYPE_CHECKING:
    from tradeflow.config import Settings

log = logging.getLogger(__name__)

__all__ = ["CANDLE_VALUES", "CandleBatch", "MarketStore", "SeriesKey", "UnfillableGap",
           "WriteResult", "check_batch", "open_store"]

# What a read returns by default; taker_buy_base and taker_buy_quote are asked for by name.
CANDLE_VALUES = ("open_time", "open", "high", "low", "close", "volume", "quote_volume", "trades")
_FLOATS = tuple(c for c in VALUE_COLUMNS if c != "trades")


@dataclass(frozen=True, slots=True)
class UnfillableGap:
    start_time: int
    end_time: int
    missing: int
    reason: str


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a write stored: the candles the batches hold and new quarantine entries per rule
    (``per_batch``: the same per batch written, in order)."""

    candles: int
    quarantined: dict[str, int]
    per_batch: tuple[dict[str, int], ...] = ()
    series: tuple[str, ...] = ()  # the series written, as ``exchange:symbol:timeframe``


class MarketStore:
    """Candles, unfillable gaps and per-series state in one DuckDB database."""

    def __init__(self, path: str | Path, *, hold: bool = False, lock_retries: int = 50,
                 read_only: bool = False, catalog: str | None = None) -> None:
        """``catalog`` (a PostgreSQL DSN) puts the store on DuckLake with its Parquet files
        under ``path`` (:mod:`tradeflow.market.ducklake`); without it ``path`` is one DuckDB
        file (or ``:memory:``)."""
        self.path = str(path)
        self.read_only = read_only
        self._db: DuckDBFile | DuckLakeCatalog = (
            DuckLakeCatalog(catalog, self.path, read_only=read_only) if catalog else
            DuckDBFile(self.path, hold=hold, lock_retries=lock_retries, read_only=read_only))
        self._connect = self._db.connect
        if not read_only:
            self._db.ensure_schema(create)

    @property
    def location(self) -> str:
        """Where the candles live, for messages: the file, or the lake and its data path."""
        return str(self._db)

    def compact(self, *, keep_hours: float = 1.0) -> dict[str, int]:
        """DuckLake maintenance (:meth:`DuckLakeCatalog.compact`); a DuckDB file has none."""
        if not isinstance(self._db, DuckLakeCatalog):
            raise UsageError(f"market store {self.path} is one DuckDB file: only "
                            "store.engine ducklake has small files to compact")
        return self._db.compact(keep_hours=keep_hours)

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
        """:meth:`write`, returning the number of candles the batch holds."""
        return self.write(candles, exchange=exchange, symbol=symbol, timeframe=timeframe,
                          source=source).candles

    def write(self, candles: pd.DataFrame | pa.Table, *, exchange: str | None = None,
              symbol: str | None = None, timeframe: str | None = None,
              source: str = "rest") -> WriteResult:
        """Check and store candles in one transaction.

        ``candles`` carries open_time, open, high, low, close and optionally volume,
        quote_volume, trades, taker_buy_base, taker_buy_quote and source (absent or NaN:
        NULL); exchange, symbol and timeframe come from its columns or from the arguments.
        Rows of one batch with the same key keep the last occurrence. Raises
        :class:`~tradeflow.contracts.schemas.CandlesRefused` (nothing written) when a candle
        breaks a rule the store refuses; candles breaking the other hard rules are stored
        and quarantined with their row's source (else ``source``).
        """
        frame = candles.to_pandas() if isinstance(candles, pa.Table) else candles
        return self._write([check_batch(part, key, source=source) for key, part in
                            _split_series(frame, exchange, symbol, timeframe)], stream=False)

    def write_batches(self, batches: Iterable[CandleBatch]) -> WriteResult:
        """Store checked batches (:func:`check_batch`) in one transaction, in order: a later
        batch's candle replaces an earlier one's as if each were written alone.

        ``batches`` may be a generator that makes them while earlier ones are written: new
        history is streamed into one INSERT (:mod:`tradeflow.market.bulk_insert`) and the
        rest goes through the replace path. The first batch is made before the store is
        opened and the later ones while it is held: a caller keeps the generator short
        (the importer: up to ``GROUP_ROWS`` candles, about a second of parsing).
        """
        return self._write(batches, stream=True)

    def _write(self, batches: Iterable[CandleBatch], *, stream: bool) -> WriteResult:
        """Batches in one transaction: new history streamed (``stream``), the rest (all of
        them without ``stream``: the plain path, one replace per batch) in order."""
        if isinstance(self._db, DuckLakeCatalog):
            batches = list(batches)  # its series locks are taken before the transaction
        pending = iter(batches)
        first = next(pending, None)
        if first is None:
            return WriteResult(0, {})
        replay = isinstance(batches, list)  # a generator runs once (a DuckDB file: one try)

        def transaction() -> WriteResult:
            items = iter(batches) if replay else itertools.chain([first], pending)
            return _write_all(con, items, stream=stream)

        # Writers of one series take turns across processes (DuckLake: an advisory lock in
        # its catalog, on every series of the list; a DuckDB file: its file lock), each in
        # one transaction.
        names = [str(b.key) for b in batches] if replay else []
        # Batches still being made by Python threads: DuckDB's own threads would wait on them.
        waits = stream and not replay
        with self._connect(write=True) as con, self._db.series_lock(names), \
                one_thread(con) if waits else contextlib.nullcontext():
            written = self._db.retrying(transaction)
        if written.quarantined:
            log.warning("%s: candles stored and quarantined: %s", ", ".join(written.series),
                        ", ".join(f"{r} {n}" for r, n in written.quarantined.items()))
        return written

    def record_unfillable(self, key: SeriesKey, start: int, end: int, missing: int,
                          reason: str) -> None:
        """Remember a range the exchange has no candles for, so runs stop asking."""
        def transaction() -> None:
            with atomic(con):
                con.execute(
                    "DELETE FROM unfillable_gaps WHERE exchange=? AND symbol=? AND timeframe=? "
                    "AND start_time=? AND end_time=?",
                    [key.exchange, key.symbol, key.timeframe, start, end],
                )
                con.execute(
                    "INSERT INTO unfillable_gaps VALUES (?, ?, ?, ?, ?, ?, ?, now())",
                    [key.exchange, key.symbol, key.timeframe, start, end, missing, reason],
                )

        with self._connect(write=True) as con, self._db.series_lock([str(key)]):
            self._db.retrying(transaction)

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

    def set_listed_from(self, key: SeriesKey, listed_from: int) -> None:
        """Record the first candle the exchange has for a series (a later listing)."""
        def transaction() -> None:
            with atomic(con):
                con.execute(
                    "DELETE FROM series_state WHERE exchange=? AND symbol=? AND timeframe=?",
                    [key.exchange, key.symbol, key.timeframe],
                )
                con.execute(
                    "INSERT INTO series_state VALUES (?, ?, ?, ?, now())",
                    [key.exchange, key.symbol, key.timeframe, listed_from],
                )

        with self._connect(write=True) as con, self._db.series_lock([str(key)]):
            self._db.retrying(transaction)

    # -- reads -----------------------------------------------------------------------------
    def read(self, key: SeriesKey, start: int | None = None, end: int | None = None,
             columns: tuple[str, ...] = CANDLE_VALUES, *,
             usable_only: bool = False) -> pd.DataFrame:
        """Candles of one series with ``start <= open_time <= end``, ascending.

        ``usable_only`` leaves out every candle that is quarantined (for whatever rule) or
        excluded by a validation policy: training and backtests read this way.
        """
        lo, hi = -(2**62) if start is None else start, 2**62 if end is None else end
        where = "exchange=? AND symbol=? AND timeframe=? AND open_time BETWEEN ? AND ?"
        params = [key.exchange, key.symbol, key.timeframe, lo, hi]
        anti = ""
        if usable_only:
            anti = (f"ANTI JOIN (SELECT open_time FROM candles_quarantine WHERE {where} "
                    f"UNION SELECT open_time FROM candles_excluded WHERE {where}) AS q "
                    "USING (open_time) ")
            params = params * 3
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
    def connection(self, *, write: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection for the length of a ``with`` block: reads (gap scans, coverage), or
        with ``write`` the bookkeeping of quarantine and validation, serialised like upserts."""
        with self._connect(write=write) as con:
            yield con


def open_store(settings: Settings, *, read_only: bool = False) -> MarketStore:
    """The market store of a profile: the DuckDB file ``store.path`` under ``data_dir`` by
    default, DuckLake on ``store.catalog`` with ``store.engine: ducklake``."""
    return MarketStore(settings.store_path, lock_retries=settings.store.lock_retries,
                       read_only=read_only, catalog=settings.store_catalog)


def _write_all(con: duckdb.DuckDBPyConnection, items: Iterator[CandleBatch], *,
               stream: bool) -> WriteResult:
    """One transaction: the candles of every batch, then their quarantine entries."""
    quarantined: dict[str, int] = {}
    seen: list[CandleBatch] = []
    per_batch: list[dict[str, int]] = []
    with atomic(con):
        if stream:
            rest = insert_new_history(con, items, seen)
        else:
            seen.extend(items)
            rest = seen
        for batch in rest:
            if len(batch.frame):
                _write_series(con, batch.key, batch.table, batch.source)
        for batch in seen:
            counts: dict[str, int] = {}
            per_batch.append(counts)
            rows = batch.quarantine.assign(source=batch.quarantine["source"].fillna(batch.source))
            for (rule, origin), part in rows.groupby(["rule", "source"], sort=True):
                found = insert_quarantine(con, batch.key, part, str(origin))
                if found:
                    quarantined[str(rule)] = quarantined.get(str(rule), 0) + found
                    counts[str(rule)] = counts.get(str(rule), 0) + found
    series = tuple(sorted({str(b.key) for b in seen}))
    return WriteResult(sum(len(b.frame) for b in seen), quarantined, tuple(per_batch), series)


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


def check_batch(candles: pd.DataFrame, key: SeriesKey, *, source: str = "rest",
                what: str | None = None) -> CandleBatch:
    """One series' candles typed for the table and checked against the contract.

    Raises :class:`~tradeflow.contracts.schemas.CandlesRefused` naming ``what`` (default:
    the series) when a candle breaks a rule the store refuses; candles breaking the other
    hard rules are kept and listed for quarantine. ``candles`` as for :meth:`MarketStore.write`
    (one series; a ``source`` column overrides ``source`` per row).
    """
    frame = _series_frame(candles)
    check = check_candles(frame, key.timeframe)
    quarantine = _NO_ROWS
    if not check.ok:
        error = refusal(check, what or str(key))
        if error is not None:
            raise error
        quarantine = _quarantine_rows(frame, check)
    return CandleBatch(key, frame, quarantine, pa.Table.from_pandas(frame, preserve_index=False),
                       source)


def _series_frame(part: pd.DataFrame) -> pd.DataFrame:
    """A series' rows typed for the table: ascending open_time, last occurrence of a key kept,
    absent columns NaN (NULL in the store)."""
    times = part["open_time"]
    if not pd.api.types.is_integer_dtype(times) or times.isna().any():
        times = pd.to_numeric(times, errors="coerce")
        whole = times.notna().all() and bool((times == np.floor(times)).all())
        # Whole numbers in a float column are times; anything else is left for the contract
        # to name (a float open_time fails its dtype rule).
        times = times.astype(np.int64) if whole else times
    t = times.to_numpy()
    cols: dict[str, Any] = {"open_time": t}
    for name in _FLOATS:
        if name not in part.columns:
            cols[name] = np.nan
        elif part[name].dtype == np.float64:
            cols[name] = part[name].to_numpy()  # no copy: the typical frame
        else:
            cols[name] = pd.to_numeric(part[name], errors="coerce").to_numpy(
                dtype=np.float64, na_value=np.nan)
    trades = pd.to_numeric(part["trades"], errors="coerce") if "trades" in part.columns \
        else pd.Series(np.nan, index=part.index)
    cols["trades"] = pd.array(trades.to_numpy(dtype=np.float64, na_value=np.nan),
                              dtype="Int64")
    if "source" in part.columns:  # rows from several sources (else: the batch's source)
        cols["source"] = part["source"].astype(object).to_numpy()
    frame = pd.DataFrame(cols)
    if t.size > 1 and not bool((np.diff(t) > 0).all()):
        _, first_in_reverse = np.unique(t[::-1], return_index=True)
        frame = frame.iloc[t.size - 1 - first_in_reverse].reset_index(drop=True)
    return frame


def _quarantine_rows(frame: pd.DataFrame, check: FrameCheck) -> pd.DataFrame:
    """(open_time, rule, raw values) of the candles the store keeps but quarantines."""
    failures = check.failures
    picked = failures[failures["rule"].isin(QUARANTINED_AT_STORE) & (failures["row"] >= 0)]
    picked = picked.drop_duplicates(["row", "rule"])
    rows = picked["row"].to_numpy(dtype=np.int64)
    out = {"open_time": frame["open_time"].to_numpy()[rows],
           "rule": picked["rule"].to_numpy(dtype=object),
           "source": frame["source"].to_numpy(dtype=object)[rows] if "source" in frame
           else np.full(rows.size, None, dtype=object)}
    for col in QUARANTINE_VALUES:
        out[col] = frame[col].to_numpy()[rows]
    return pd.DataFrame(out)


_NO_ROWS = pd.DataFrame(columns=["open_time", "rule", "source", *QUARANTINE_VALUES])
_CHANGED = " OR ".join(f"c.{c} IS DISTINCT FROM b.{c}" for c in VALUE_COLUMNS)
_SERIES = ("c.exchange = $ex AND c.symbol = $sym AND c.timeframe = $tf "
           "AND c.open_time BETWEEN $lo AND $hi")


def _write_series(con: duckdb.DuckDBPyConnection, key: SeriesKey, table: pa.Table,
                  source: str) -> None:
    lo = table["open_time"][0].as_py()
    hi = table["open_time"][-1].as_py()
    params = {"ex": key.exchange, "sym": key.symbol, "tf": key.timeframe, "lo": lo, "hi": hi}
    # A constant source costs DuckDB nothing per row; a column of them, strings to scan.
    origin = "coalesce(b.source, $src)" if "source" in table.column_names else "$src"
    insert = (f"INSERT INTO candles (exchange, symbol, timeframe, open_time, "
              f"{', '.join(VALUE_COLUMNS)}, ingested_at, source) SELECT $ex, $sym, $tf, "
              f"b.open_time, {', '.join('b.' + c for c in VALUE_COLUMNS)}, now(), "
              f"{origin} FROM batch b")
    with registered(con, "batch", table):
        stored = con.execute(f"SELECT count(*) FROM candles c WHERE {_SERIES}",
                             params).fetchone()
        if not stored or not stored[0]:  # new history: nothing to compare with
            con.execute(insert, {"ex": key.exchange, "sym": key.symbol, "tf": key.timeframe,
                                 "src": source})
            return
        # Replace semantics: drop the stored rows whose values the batch changes, bounded by
        # time so DuckDB's zone maps skip untouched row groups; then insert what is not
        # stored as is. An unchanged candle keeps its row (and ingested_at).
        con.execute(
            f"DELETE FROM candles c USING batch b WHERE {_SERIES} "
            f"AND c.open_time = b.open_time AND ({_CHANGED})", params)
        con.execute(f"{insert} WHERE NOT EXISTS (SELECT 1 FROM candles c WHERE {_SERIES} "
                    "AND c.open_time = b.open_time)", {**params, "src": source})
