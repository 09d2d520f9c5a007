"""The market store's tables: their DDL, the migration of older files, the series key, and the
few statements the store, the quarantine and validation's bookkeeping share.

Columns a source does not deliver are NULL, never invented: a Binance Vision dump carries
quote volume, trade count and taker-buy volumes, ccxt's OHLCV rows carry none of them, a
freqtrade file only OHLCV. Files written before a column existed gain it (NULL) when a store
opens them for writing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import duckdb
import pandas as pd
import pyarrow as pa

SCHEMA = """
CREATE TABLE IF NOT EXISTS candles (
    exchange        VARCHAR NOT NULL,
    symbol          VARCHAR NOT NULL,
    timeframe       VARCHAR NOT NULL,
    open_time       BIGINT  NOT NULL,   -- candle open, UTC milliseconds
    open            DOUBLE  NOT NULL,
    high            DOUBLE  NOT NULL,
    low             DOUBLE  NOT NULL,
    close           DOUBLE  NOT NULL,
    volume          DOUBLE,             -- base asset; NULL when the source had none
    quote_volume    DOUBLE,
    trades          BIGINT,
    ingested_at     TIMESTAMPTZ NOT NULL,
    source          VARCHAR NOT NULL,   -- 'rest', 'import:<file>', ...
    taker_buy_base  DOUBLE,             -- added after the first release: kept last
    taker_buy_quote DOUBLE
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
    rule         VARCHAR NOT NULL,   -- the rule broken (tradeflow.contracts.rules)
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
CREATE TABLE IF NOT EXISTS candles_excluded (  -- kept in the store, left out of training and
    exchange     VARCHAR NOT NULL,              -- backtests by a rule's `exclude` policy;
    symbol       VARCHAR NOT NULL,              -- rewritten for every window validation judges
    timeframe    VARCHAR NOT NULL,
    open_time    BIGINT  NOT NULL,
    rule         VARCHAR NOT NULL,
    found_at     TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS series_state (
    exchange       VARCHAR NOT NULL,
    symbol         VARCHAR NOT NULL,
    timeframe      VARCHAR NOT NULL,
    listed_from    BIGINT,            -- earliest candle the exchange has (none before it)
    updated_at     TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS validation_state (  -- validation's watermark per series
    exchange          VARCHAR NOT NULL,
    symbol            VARCHAR NOT NULL,
    timeframe         VARCHAR NOT NULL,
    ingested_through  TIMESTAMPTZ NOT NULL,  -- every candle ingested up to here was judged
    validated_at      TIMESTAMPTZ NOT NULL
);
"""

# Columns added since the first release; ALTER ... IF NOT EXISTS makes opening idempotent.
MIGRATIONS = (
    "ALTER TABLE candles ADD COLUMN IF NOT EXISTS taker_buy_base DOUBLE",
    "ALTER TABLE candles ADD COLUMN IF NOT EXISTS taker_buy_quote DOUBLE",
)
VALUE_COLUMNS = ("open", "high", "low", "close", "volume", "quote_volume", "trades",
                 "taker_buy_base", "taker_buy_quote")
QUARANTINE_VALUES = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True, slots=True)
class SeriesKey:
    exchange: str
    symbol: str
    timeframe: str

    def __str__(self) -> str:
        return f"{self.exchange}:{self.symbol}:{self.timeframe}"


@dataclass(frozen=True, slots=True)
class CandleBatch:
    """One series' candles that passed the store's contract check, typed for the table.

    Made only by :func:`check_batch`; :meth:`MarketStore.write_batches` stores it. Checking
    apart from writing lets a caller check in worker threads while the store writes earlier
    batches (the importer does).
    """

    key: SeriesKey
    frame: pd.DataFrame       # ascending open_time, one row per key, absent values NaN
    quarantine: pd.DataFrame  # candles stored but listed in candles_quarantine, by rule
    table: pa.Table           # ``frame`` as Arrow, what DuckDB scans
    source: str               # the rows' source, unless a ``source`` column says otherwise


def create(con: duckdb.DuckDBPyConnection) -> None:
    """Create missing tables and add missing columns (a file of an older release)."""
    con.execute(SCHEMA)
    for statement in MIGRATIONS:
        con.execute(statement)


def insert_quarantine(con: duckdb.DuckDBPyConnection, key: SeriesKey, rows: pd.DataFrame,
                      source: str) -> int:
    """Add quarantine entries (open_time, rule, raw values); returns how many are new.

    An entry already recorded with the same key, rule and values is not added again. Runs
    inside the caller's transaction, if any.
    """
    if rows.empty:
        return 0
    batch = pd.DataFrame({
        "open_time": rows["open_time"].to_numpy(dtype="int64"),
        "rule": rows["rule"].astype(str).to_numpy(dtype=object),
        **{c: pd.to_numeric(rows[c], errors="coerce").to_numpy(dtype="float64")
           for c in QUARANTINE_VALUES},
    }).drop_duplicates()
    same_values = " AND ".join(f"q.{c} IS NOT DISTINCT FROM b.{c}" for c in QUARANTINE_VALUES)
    with registered(con, "qbatch", batch):
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


@contextlib.contextmanager
def atomic(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One transaction: committed at the end of the block, rolled back by any exception."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        # A COMMIT that failed (a full device, say) has already ended the transaction: its
        # error, not ROLLBACK's "no transaction is active", is the one to report.
        with contextlib.suppress(duckdb.TransactionException):
            con.execute("ROLLBACK")
        raise


@contextlib.contextmanager
def registered(con: duckdb.DuckDBPyConnection, name: str, frame: object) -> Iterator[None]:
    """``frame`` (pandas or Arrow) visible to SQL as ``name`` for the block.

    Unregistering inside an aborted transaction fails and would hide the error, so a block
    that may abort registers outside the transaction it opens.
    """
    con.register(name, frame)
    try:
        yield
    finally:
        with contextlib.suppress(duckdb.Error):
            con.unregister(name)
