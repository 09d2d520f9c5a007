"""The order-flow tables of the market store (trades, book snapshots, tickers) and the typed
Arrow batches written into them.

Frames in and out use int64 UTC milliseconds for ``ts`` (as candles' ``open_time`` and
ccxt's ``timestamp``); the tables hold ``TIMESTAMP`` (UTC) so SQL reads them as times. A
book snapshot keeps the top N levels as parallel lists (``bid_price[i]``, ``bid_amount[i]``),
best first.
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

SCHEMA = """
CREATE TABLE IF NOT EXISTS trades (          -- unique (exchange, symbol, id): the write path
    exchange  VARCHAR   NOT NULL,
    symbol    VARCHAR   NOT NULL,
    id        BIGINT    NOT NULL,           -- the exchange's trade id, increasing per symbol
    ts        TIMESTAMP NOT NULL,           -- UTC, millisecond precision
    price     DOUBLE    NOT NULL,
    amount    DOUBLE    NOT NULL,           -- base asset
    side      VARCHAR   NOT NULL            -- the taker's side: 'buy' or 'sell'
);
CREATE TABLE IF NOT EXISTS book_snapshots (  -- unique (exchange, symbol, ts, kind)
    exchange   VARCHAR   NOT NULL,
    symbol     VARCHAR   NOT NULL,
    ts         TIMESTAMP NOT NULL,          -- the book's time (UTC, ms)
    kind       VARCHAR   NOT NULL,          -- 'cadence' (every N seconds) or 'close' (candle)
    update_id  BIGINT,                      -- the exchange's last update id in the book
    bid_price  DOUBLE[]  NOT NULL,          -- top N levels, best first
    bid_amount DOUBLE[]  NOT NULL,
    ask_price  DOUBLE[]  NOT NULL,
    ask_amount DOUBLE[]  NOT NULL
);
CREATE TABLE IF NOT EXISTS tickers (         -- unique (exchange, symbol, ts)
    exchange  VARCHAR   NOT NULL,
    symbol    VARCHAR   NOT NULL,
    ts        TIMESTAMP NOT NULL,
    bid       DOUBLE,
    bid_qty   DOUBLE,
    ask       DOUBLE,
    ask_qty   DOUBLE,
    last      DOUBLE,                       -- NULL for a book ticker (best bid/ask only)
    update_id BIGINT                        -- the book ticker's update id, when sent
);
"""

BOOK_LISTS = ("bid_price", "bid_amount", "ask_price", "ask_amount")
TICKER_VALUES = ("bid", "bid_qty", "ask", "ask_qty", "last")
SNAPSHOT_KINDS = ("cadence", "close")
_SIDE = pa.array(["buy", "sell"], type=pa.string())


def create(con: duckdb.DuckDBPyConnection) -> None:
    """Create the order-flow tables if missing (idempotent)."""
    con.execute(SCHEMA)


def ms_times(values: Any) -> pa.Array:
    """int64 milliseconds as an Arrow ``timestamp[ms]`` column, without a copy."""
    arr = np.ascontiguousarray(values, dtype=np.int64)
    return pa.array(arr.view("datetime64[ms]"))


def trade_table(ids: np.ndarray, ts: np.ndarray, price: np.ndarray, amount: np.ndarray,
                is_sell: np.ndarray) -> pa.Table:
    """Typed columns of one series' trades as the Arrow batch the store inserts.

    ``side`` is dictionary-encoded from a boolean, which DuckDB reads as VARCHAR at no cost.
    """
    side = pa.DictionaryArray.from_arrays(pa.array(is_sell.astype(np.int8)), _SIDE)
    return pa.table({"id": pa.array(ids), "ts": ms_times(ts), "price": pa.array(price),
                     "amount": pa.array(amount), "side": side})


def snapshot_frame(frame: pd.DataFrame | pa.Table) -> pa.Table:
    """Book snapshots (ts ms, kind, update_id, the four level lists) as a typed batch."""
    data = frame.to_pandas() if isinstance(frame, pa.Table) else frame
    missing = [c for c in ("ts", "kind", *BOOK_LISTS) if c not in data.columns]
    if missing:
        raise ValueError(f"book snapshots: column(s) {missing} missing")
    data = data.drop_duplicates(["ts", "kind"])  # a batch's repeats: the first wins
    kinds = data["kind"].astype(str)
    bad = kinds[~kinds.isin(SNAPSHOT_KINDS)]
    if len(bad):
        raise ValueError(f"book snapshots: kind {bad.iloc[0]!r} is not one of "
                         f"{', '.join(SNAPSHOT_KINDS)}")
    update = data["update_id"] if "update_id" in data.columns else pd.Series(
        [None] * len(data), dtype="Int64")
    cols: dict[str, Any] = {
        "ts": ms_times(data["ts"].to_numpy(dtype=np.int64)),
        "kind": pa.array(kinds.to_numpy(dtype=object), type=pa.string()),
        "update_id": pa.array(pd.array(update, dtype="Int64"), type=pa.int64()),
    }
    for name in BOOK_LISTS:
        cols[name] = pa.array([np.asarray(v, dtype=np.float64) for v in data[name]],
                              type=pa.list_(pa.float64()))
    return pa.table(cols)


def ticker_frame(frame: pd.DataFrame | pa.Table) -> pa.Table:
    """Tickers (ts ms, bid, bid_qty, ask, ask_qty, last, update_id; absent: NULL) typed."""
    data = frame.to_pandas() if isinstance(frame, pa.Table) else frame
    if "ts" not in data.columns:
        raise ValueError("tickers: column 'ts' missing")
    data = data.drop_duplicates(["ts"])  # a batch's repeats: the first wins
    cols: dict[str, Any] = {"ts": ms_times(data["ts"].to_numpy(dtype=np.int64))}
    for name in TICKER_VALUES:
        values = pd.to_numeric(data[name], errors="coerce") if name in data.columns else \
            pd.Series(np.nan, index=data.index)
        cols[name] = pa.array(values.to_numpy(dtype=np.float64, na_value=np.nan),
                              from_pandas=True)
    update = data["update_id"] if "update_id" in data.columns else pd.Series(
        [None] * len(data), dtype="Int64")
    cols["update_id"] = pa.array(pd.array(update, dtype="Int64"), type=pa.int64())
    return pa.table(cols)
