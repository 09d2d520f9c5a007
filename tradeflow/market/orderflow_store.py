"""Order flow in the market store: trades, order-book snapshots and tickers, in DuckDB.

The tables live in the candles' database file (:mod:`tradeflow.market.orderflow_tables`) and
share its connections (:mod:`tradeflow.market.duckdb_file`): a store opens the file for one
short transaction and takes turns with other processes.

Writes are bulk Arrow inserts, idempotent on the natural key and never row by row: a trade is
unique per (exchange, symbol, id), a snapshot per (exchange, symbol, ts, kind), a ticker per
(exchange, symbol, ts). A row already stored wins (an exchange never changes a trade), rows of
one batch with the same key keep the first. As for candles, uniqueness is the write path's
(an anti-join bounded to the batch's key range, skipped when nothing is stored in it) rather
than an index, which would cost 3x on bulk inserts; :meth:`OrderFlowStore.duplicate_trades`
checks the invariant. Every trade batch meets the trade contract
(:mod:`tradeflow.contracts.trades`) or is refused whole.

Frames in and out use ``ts`` in int64 UTC milliseconds. Reads of a series take
``start <= ts <= end`` (inclusive, either side optional) and return rows ascending.
Retention (``store.retention`` in the profile) is applied by :meth:`OrderFlowStore.prune`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from tradeflow.contracts.trades import TradesRefused, check_trades, refusal_line
from tradeflow.market.duckdb_file import DuckDBFile
from tradeflow.market.orderflow_tables import (
    BOOK_LISTS,
    TICKER_VALUES,
    create,
    snapshot_frame,
    ticker_frame,
    trade_table,
)
from tradeflow.market.tables import atomic, registered

if TYPE_CHECKING:
    from tradeflow.config import RetentionSettings, Settings

__all__ = ["OrderFlowStore", "TradeBounds", "open_orderflow_store"]

DAY_MS = 86_400_000
_SERIES = "exchange = $ex AND symbol = $sym"


@dataclass(frozen=True, slots=True)
class TradeBounds:
    """First and last stored trade id of a series, their times (ms) and the row count."""

    first_id: int
    last_id: int
    first_ts: int
    last_ts: int
    count: int


class OrderFlowStore:
    """Trades, book snapshots and tickers of every (exchange, symbol) in one DuckDB file."""

    def __init__(self, path: str | Path, *, hold: bool = False, lock_retries: int = 50,
                 read_only: bool = False) -> None:
        self.path = str(path)
        self._db = DuckDBFile(self.path, hold=hold, lock_retries=lock_retries,
                              read_only=read_only)
        if not read_only:
            with self._db.connect(write=True) as con:
                create(con)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> OrderFlowStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writes ----------------------------------------------------------------------------
    def write_trades(self, trades: pd.DataFrame | pa.Table, *, exchange: str | None = None,
                     symbol: str | None = None) -> int:
        """Store trades (id, ts ms, price, amount, side) in one transaction; returns how many
        were new. exchange and symbol come from columns or the arguments. Raises
        :class:`~tradeflow.contracts.trades.TradesRefused` (nothing written) when a series
        breaks the trade contract after sorting by id and dropping repeated ids."""
        return self.write(trades=trades, exchange=exchange, symbol=symbol)["trades"]

    def write_book_snapshots(self, snapshots: pd.DataFrame | pa.Table, *,
                             exchange: str | None = None, symbol: str | None = None) -> int:
        """Store book snapshots (ts ms, kind, update_id, bid_price, bid_amount, ask_price,
        ask_amount lists best first); returns how many were new."""
        return self.write(book_snapshots=snapshots, exchange=exchange,
                          symbol=symbol)["book_snapshots"]

    def write_tickers(self, tickers: pd.DataFrame | pa.Table, *, exchange: str | None = None,
                      symbol: str | None = None) -> int:
        """Store tickers (ts ms, bid, bid_qty, ask, ask_qty, last, update_id); returns how
        many were new."""
        return self.write(tickers=tickers, exchange=exchange, symbol=symbol)["tickers"]

    def write(self, *, trades: pd.DataFrame | pa.Table | None = None,
              book_snapshots: pd.DataFrame | pa.Table | None = None,
              tickers: pd.DataFrame | pa.Table | None = None, exchange: str | None = None,
              symbol: str | None = None) -> dict[str, int]:
        """Trades, snapshots and tickers in one transaction (one open of the file); returns
        the new rows per table. Everything is checked and typed before the file is opened."""
        trade_parts = [(ex, sym, _trade_batch(part, f"trades {ex}:{sym}"))
                       for ex, sym, part in _split(_pandas(trades), exchange, symbol)]
        keyed = [(name, [(ex, sym, typed(part)) for ex, sym, part in
                         _split(_pandas(rows), exchange, symbol)], key)
                 for name, rows, typed, key in (
                     ("book_snapshots", book_snapshots, snapshot_frame, ("ts", "kind")),
                     ("tickers", tickers, ticker_frame, ("ts",)))]
        new = {"trades": 0, "book_snapshots": 0, "tickers": 0}
        if not any(t.num_rows for *_, t in trade_parts) and \
                not any(t.num_rows for _, parts, _ in keyed for *_, t in parts):
            return new
        with self._db.connect(write=True) as con, atomic(con):
            for ex, sym, table in trade_parts:
                if table.num_rows:
                    new["trades"] += _insert_trades(con, ex, sym, table)
            for name, parts, key in keyed:
                for ex, sym, table in parts:
                    if table.num_rows:
                        new[name] += _insert_keyed(con, name, ex, sym, table, key)
        return new

    def prune(self, retention: RetentionSettings, now_ms: int) -> dict[str, int]:
        """Delete rows older than each table's retention; returns rows deleted per table."""
        limits = {"trades": retention.trades_days,
                  "book_snapshots": retention.book_snapshots_days,
                  "tickers": retention.tickers_days}
        out: dict[str, int] = {}
        with self._db.connect(write=True) as con:
            for table, days in limits.items():
                if days is None:
                    continue
                cutoff = int(now_ms - days * DAY_MS)
                row = con.execute(f"DELETE FROM {table} WHERE ts < make_timestamp($c * 1000)",
                                  {"c": cutoff}).fetchone()
                out[table] = int(row[0]) if row else 0
        return out

    # -- reads -----------------------------------------------------------------------------
    def trades(self, exchange: str, symbol: str, start: int | None = None,
               end: int | None = None) -> pd.DataFrame:
        """Trades of a series with ``start <= ts <= end``: id, ts (ms), price, amount, side,
        ascending by id."""
        return self._read("id, epoch_ms(ts) AS ts, price, amount, side", "trades", exchange,
                          symbol, start, end, "id")

    def trades_by_id(self, exchange: str, symbol: str, first_id: int,
                     last_id: int) -> pd.DataFrame:
        """Trades of a series with ``first_id <= id <= last_id``, ascending."""
        with self._db.connect() as con:
            return con.execute(
                f"SELECT id, epoch_ms(ts) AS ts, price, amount, side FROM trades WHERE {_SERIES} "
                "AND id BETWEEN $lo AND $hi ORDER BY id",
                {"ex": exchange, "sym": symbol, "lo": first_id, "hi": last_id}).df()

    def book_snapshots(self, exchange: str, symbol: str, start: int | None = None,
                       end: int | None = None, kind: str | None = None) -> pd.DataFrame:
        """Snapshots of a series: ts (ms), kind, update_id and the four level lists (numpy
        arrays, best first), ascending by time; ``kind`` picks 'cadence' or 'close' only."""
        frame = self._read(f"epoch_ms(ts) AS ts, kind, update_id, {', '.join(BOOK_LISTS)}",
                           "book_snapshots", exchange, symbol, start, end, "ts, kind",
                           kind=kind)
        for name in BOOK_LISTS:
            frame[name] = [np.asarray(v, dtype=np.float64) for v in frame[name]]
        return frame

    def tickers(self, exchange: str, symbol: str, start: int | None = None,
                end: int | None = None) -> pd.DataFrame:
        """Tickers of a series: ts (ms), bid, bid_qty, ask, ask_qty, last, update_id."""
        return self._read(f"epoch_ms(ts) AS ts, {', '.join(TICKER_VALUES)}, update_id",
                          "tickers", exchange, symbol, start, end, "ts")

    def _read(self, select: str, table: str, exchange: str, symbol: str, start: int | None,
              end: int | None, order: str, kind: str | None = None) -> pd.DataFrame:
        params: dict[str, Any] = {"ex": exchange, "sym": symbol}
        extra = ""
        # Bounds on the column itself, so DuckDB's zone maps skip row groups out of range.
        if start is not None:
            extra, params["lo"] = " AND ts >= make_timestamp($lo * 1000)", start
        if end is not None:
            extra, params["hi"] = extra + " AND ts <= make_timestamp($hi * 1000)", end
        if kind is not None:
            extra, params["kind"] = extra + " AND kind = $kind", kind
        with self._db.connect() as con:
            return con.execute(
                f"SELECT {select} FROM {table} WHERE {_SERIES}{extra} ORDER BY {order}",
                params).df()

    def trade_bounds(self, exchange: str, symbol: str) -> TradeBounds | None:
        """First/last trade id and time and the count of a series, or None when empty."""
        with self._db.connect() as con:
            row = con.execute(
                "SELECT min(id), max(id), epoch_ms(min(ts)), epoch_ms(max(ts)), count(*) "
                f"FROM trades WHERE {_SERIES}", {"ex": exchange, "sym": symbol}).fetchone()
        if row is None or not row[4]:
            return None
        return TradeBounds(*(int(v) for v in row))

    def trade_holes(self, exchange: str, symbol: str) -> list[tuple[int, int]]:
        """Missing id ranges (first, last) between a series' first and last stored trade."""
        with self._db.connect() as con:
            rows = con.execute(
                "SELECT prev + 1, id - 1 FROM (SELECT id, lag(id) OVER (ORDER BY id) AS prev "
                f"FROM trades WHERE {_SERIES}) WHERE id - prev > 1 ORDER BY id",
                {"ex": exchange, "sym": symbol}).fetchall()
        return [(int(a), int(b)) for a, b in rows]

    def duplicate_trades(self) -> int:
        """Rows beyond the first per (exchange, symbol, id): zero unless the invariant broke."""
        with self._db.connect() as con:
            row = con.execute(
                "SELECT count(*) - (SELECT count(*) FROM (SELECT DISTINCT exchange, symbol, id "
                "FROM trades)) FROM trades").fetchone()
        return int(row[0]) if row else 0

    def counts(self, exchange: str | None = None) -> dict[str, int]:
        """Rows per order-flow table (of one exchange, or all)."""
        where = "" if exchange is None else " WHERE exchange = $ex"
        params = {} if exchange is None else {"ex": exchange}
        out: dict[str, int] = {}
        with self._db.connect() as con:
            for table in ("trades", "book_snapshots", "tickers"):
                row = con.execute(f"SELECT count(*) FROM {table}{where}", params).fetchone()
                out[table] = int(row[0]) if row else 0
        return out


def open_orderflow_store(settings: Settings) -> OrderFlowStore:
    """The order-flow store of a profile: the market store's DuckDB file, or with
    ``store.engine: ducklake`` (candles in the lake) a DuckDB file ``orderflow.duckdb`` under
    data_dir: order flow has one writer, the recorder, and the lake holds candles only so far."""
    path = (str(settings.data_dir / "orderflow.duckdb") if settings.store.engine == "ducklake"
            else settings.store_path)
    return OrderFlowStore(path, lock_retries=settings.store.lock_retries)


def _split(frame: pd.DataFrame, exchange: str | None,
           symbol: str | None) -> Iterator[tuple[str, str, pd.DataFrame]]:
    """One part per (exchange, symbol); key columns win over the arguments."""
    if frame.empty:
        return
    present = [c for c in ("exchange", "symbol") if c in frame.columns]
    defaults = {"exchange": exchange, "symbol": symbol}
    missing = [c for c in defaults if c not in present and defaults[c] is None]
    if missing:
        raise ValueError(f"order flow: column(s) {missing} missing and no default given")
    if not present:
        yield str(exchange), str(symbol), frame
        return
    for values, part in frame.groupby(present, sort=False):
        named = dict(zip(present, values if isinstance(values, tuple) else (values,),
                         strict=True))
        key = {**defaults, **named}
        yield str(key["exchange"]), str(key["symbol"]), part


def _pandas(rows: pd.DataFrame | pa.Table | None) -> pd.DataFrame:
    if rows is None:
        return _EMPTY
    return rows.to_pandas() if isinstance(rows, pa.Table) else rows


_EMPTY = pd.DataFrame()


def _insert_keyed(con: Any, table_name: str, exchange: str, symbol: str, table: pa.Table,
                  key: tuple[str, ...]) -> int:
    """Insert the rows whose key is not stored (the first of a batch's repeats)."""
    same = " AND ".join(f"s.{c} = b.{c}" for c in key)
    columns = ", ".join(table.column_names)
    with registered(con, "ofbatch", table):
        row = con.execute(
            f"INSERT INTO {table_name} (exchange, symbol, {columns}) "
            f"SELECT $ex, $sym, {', '.join('b.' + c for c in table.column_names)} "
            "FROM ofbatch b "
            f"WHERE NOT EXISTS (SELECT 1 FROM {table_name} s WHERE "
            f"s.exchange = $ex AND s.symbol = $sym AND {same})",
            {"ex": exchange, "sym": symbol}).fetchone()
    return int(row[0]) if row else 0


def _trade_batch(part: pd.DataFrame, what: str) -> pa.Table:
    """One series' trades sorted by id, repeated ids dropped (first kept), checked against
    the contract and typed for the table."""
    missing = [c for c in ("id", "ts", "price", "amount", "side") if c not in part.columns]
    if missing:
        raise ValueError(f"{what}: column(s) {missing} missing")
    ids, ts = _int64(part["id"]), _times(part["ts"])
    order = None
    if ids.size > 1 and not bool((ids[1:] > ids[:-1]).all()):
        order = np.argsort(ids, kind="stable")
        keep = np.ones(order.size, dtype=bool)
        keep[1:] = ids[order][1:] != ids[order][:-1]
        order = order[keep]
    frame = pd.DataFrame({"id": ids, "ts": ts, "price": _floats(part["price"]),
                          "amount": _floats(part["amount"]),
                          "side": part["side"].astype(str).to_numpy()})
    if order is not None:
        frame = frame.iloc[order].reset_index(drop=True)
    check = check_trades(frame)
    if not check.ok:
        raise TradesRefused(what, check, refusal_line(check, what))
    return trade_table(frame["id"].to_numpy(), frame["ts"].to_numpy(),
                       frame["price"].to_numpy(), frame["amount"].to_numpy(),
                       (frame["side"] == "sell").to_numpy())


def _int64(values: pd.Series) -> Any:
    """Integers (exchange ids may come as strings) as int64; anything else as it is, for the
    contract to name."""
    if pd.api.types.is_integer_dtype(values) and not values.isna().any():
        return values.to_numpy(dtype=np.int64)
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.notna().all() and bool((numbers == np.floor(numbers)).all()):
        return numbers.to_numpy(dtype=np.int64)
    return numbers.to_numpy()


def _times(values: pd.Series) -> Any:
    if pd.api.types.is_datetime64_any_dtype(values):
        stamps = values.dt.tz_convert("UTC").dt.tz_localize(None) if values.dt.tz is not None \
            else values
        return stamps.to_numpy().astype("datetime64[ms]").astype(np.int64)
    return _int64(values)


def _floats(values: pd.Series) -> np.ndarray:
    if values.dtype == np.float64:
        return values.to_numpy()
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _insert_trades(con: Any, exchange: str, symbol: str, table: pa.Table) -> int:
    lo, hi = table["id"][0].as_py(), table["id"][-1].as_py()
    params = {"ex": exchange, "sym": symbol, "lo": lo, "hi": hi}
    insert = ("INSERT INTO trades SELECT $ex, $sym, b.id, b.ts, b.price, b.amount, b.side "
              "FROM tbatch b")
    with registered(con, "tbatch", table):
        stored = con.execute(f"SELECT count(*) FROM trades WHERE {_SERIES} "
                             "AND id BETWEEN $lo AND $hi", params).fetchone()
        if not stored or not stored[0]:  # the usual append: nothing to compare with
            row = con.execute(insert, {"ex": exchange, "sym": symbol}).fetchone()
        else:
            row = con.execute(f"{insert} WHERE NOT EXISTS (SELECT 1 FROM trades s WHERE "
                              "s.exchange = $ex AND s.symbol = $sym AND s.id BETWEEN $lo "
                              "AND $hi AND s.id = b.id)", params).fetchone()
    return int(row[0]) if row else 0
