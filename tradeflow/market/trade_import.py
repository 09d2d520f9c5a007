"""Import Binance Vision ``trades`` and ``aggTrades`` dumps into the market store's trades.

Binance Vision publishes each market's trades per day and month
(``BTCUSDT-trades-2024-01-15.zip``, ``BTCUSDT-aggTrades-2024-01.zip``; spot under ``spot/``,
perpetuals under ``futures/um|cm/``), a CSV inside a zip, with or without a header row:

* ``trades``: id, price, qty, quote_qty, time, is_buyer_maker[, is_best_match]
* ``aggTrades``: agg_id, price, qty, first_id, last_id, time, is_buyer_maker[, is_best_match]

Spot dumps from 2025 on stamp microseconds, older ones and futures milliseconds (told by
magnitude, per file); times are stored in milliseconds. The taker's side is the opposite of
the buyer being the maker. An aggTrade (the fills of one taker order at one price) becomes one
trade row keyed by its first trade id, so ids stay the exchange's trade ids; its amount is the
whole order's. Candles rebuilt from such rows therefore have exact prices and volumes but
count orders, not fills.

A file is read and checked whole (a ``.CHECKSUM`` beside it verified; every cell parsed; ids
unique; times plausible) and then written in one transaction, or not at all: the trade
contract refuses the whole file when one row breaks it. Trades already stored are kept as
they are, so importing a file again adds nothing.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from tradeflow.contracts.rules import PLAUSIBLE_FROM_MS, PLAUSIBLE_TO_MS
from tradeflow.market.file_names import FileNameError, read_trade_dump_name
from tradeflow.market.importer import verify_checksum
from tradeflow.market.readers import ImportFileError, load_bytes

KINDS = ("trades", "aggTrades")
COLUMNS = {
    "trades": ("id", "price", "qty", "quote_qty", "time", "is_buyer_maker", "is_best_match"),
    "aggTrades": ("agg_id", "price", "qty", "first_id", "last_id", "time", "is_buyer_maker",
                  "is_best_match"),
}
_INTS = ("id", "agg_id", "first_id", "last_id", "time")
_BOOLS = ("is_buyer_maker", "is_best_match")


@dataclass(frozen=True, slots=True)
class TradeDump:
    """A dump read and checked: trades (id, ts ms, price, amount, side) ascending by id."""

    path: Path
    symbol: str
    kind: str          # trades | aggTrades
    trades: pd.DataFrame
    time_unit: str     # ms | us, as the file stamps
    header: int        # lines before the first trade
    checksum: str      # verified | absent

    @property
    def layout(self) -> str:
        return f"Binance Vision {self.kind}"


@dataclass(frozen=True, slots=True)
class TradeImportResult:
    path: Path
    symbol: str
    layout: str
    rows: int          # trades in the file
    new: int           # trades not stored before
    first_id: int
    last_id: int
    first_ts: int
    last_ts: int
    checksum: str
    time_unit: str


class TradeWriter(Protocol):
    """The market store's trade writer: one transaction, refuses a batch breaking the trade
    contract whole, keeps trades already stored; returns how many were new."""

    def write_trades(self, trades: pd.DataFrame, *, exchange: str | None = None,
                     symbol: str | None = None) -> int: ...


def import_trade_dump(store: TradeWriter, path: Path, *, exchange: str = "binance",
                      symbol: str | None = None) -> TradeImportResult:
    """Read, check and store one dump in one transaction (nothing of it when it fails)."""
    dump = read_trade_dump(path, symbol)
    try:
        new = store.write_trades(dump.trades, exchange=exchange, symbol=dump.symbol)
    except ValueError as exc:  # the trade contract's refusal names the rule and the trade
        text = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ImportFileError(text if str(path) in text else f"{path}: {text}") from None
    t = dump.trades
    return TradeImportResult(
        dump.path, dump.symbol, dump.layout, len(t), new, int(t["id"].iloc[0]),
        int(t["id"].iloc[-1]), int(t["ts"].min()), int(t["ts"].max()), dump.checksum,
        dump.time_unit)


def is_trade_dump(path: Path) -> bool:
    """True for a file named as a Binance Vision trades or aggTrades dump."""
    try:
        return read_trade_dump_name(Path(path)) is not None
    except FileNameError:
        return True  # its name says trades; reading it names the problem


def read_trade_dump(path: Path, symbol: str | None = None, kind: str | None = None
                    ) -> TradeDump:
    """Parse and check one dump (no store needed); ImportFileError naming file and line."""
    path = Path(path)
    try:
        named = read_trade_dump_name(path)
    except FileNameError as exc:
        raise ImportFileError(f"{path}: {exc}") from None
    kind = kind or (named.kind if named else None)
    symbol = symbol or (named.symbol if named else None)
    if kind not in KINDS:
        raise ImportFileError(f"{path}: not named as a Binance Vision trades or aggTrades "
                              "dump (BTCUSDT-trades-2024-01-15.zip)")
    if symbol is None:
        raise ImportFileError(f"{path}: the name does not say the symbol; pass --symbol")
    checksum = verify_checksum(path)
    data, _ = load_bytes(path)
    header = 0 if data.lstrip()[:1].isdigit() else 1
    table = _parse(path, data, kind, header)
    raw_times = table["time"].to_numpy()
    unit = "us" if raw_times.size and raw_times.max() >= 10**14 else "ms"
    ts = raw_times // 1000 if unit == "us" else raw_times
    ids = table["id" if kind == "trades" else "first_id"].to_numpy()
    frame = pd.DataFrame({
        "id": ids.astype(np.int64), "ts": ts.astype(np.int64),
        "price": table["price"].to_numpy().astype(np.float64),
        "amount": table["qty"].to_numpy().astype(np.float64),
        "side": np.where(table["is_buyer_maker"].to_numpy(zero_copy_only=False), "sell", "buy"),
    })
    if frame.empty:
        raise ImportFileError(f"{path}: no trades")
    odd = np.flatnonzero((frame["ts"] < PLAUSIBLE_FROM_MS) | (frame["ts"] >= PLAUSIBLE_TO_MS))
    if odd.size:
        raise ImportFileError(f"{path}, line {int(odd[0]) + 1 + header}: time "
                              f"{int(raw_times[odd[0]])} read as {unit} is not between 2009 "
                              "and 2100")
    frame = _by_id(path, frame, header)
    return TradeDump(path, symbol, kind, frame, unit, header, checksum)


def _parse(path: Path, data: bytes, kind: str, header: int) -> pa.Table:
    first = next((line for line in data.splitlines()[header:] if line.strip()), b"")
    names = COLUMNS[kind]
    width = first.count(b",") + 1
    if width not in (len(names) - 1, len(names)):  # futures dumps lack is_best_match
        raise ImportFileError(f"{path}, line {header + 1}: expected {len(names) - 1} or "
                              f"{len(names)} columns of a {kind} dump, found {width}")
    names = names[:width]
    types = {c: pa.int64() if c in _INTS else pa.bool_() if c in _BOOLS else pa.float64()
             for c in names}
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=list(names), skip_rows=header),
            convert_options=pacsv.ConvertOptions(column_types=types,
                                                 true_values=["True", "true", "1"],
                                                 false_values=["False", "false", "0"]))
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise _first_bad_line(path, data, names, header, exc) from None
    if any(table[c].null_count for c in names if c != "is_best_match"):
        raise _first_bad_line(path, data, names, header, None)
    return table


def _by_id(path: Path, frame: pd.DataFrame, header: int) -> pd.DataFrame:
    """Trades ascending by id; an id twice is an error unless both rows are the same."""
    ids = frame["id"].to_numpy()
    if ids.size > 1 and not bool((ids[1:] > ids[:-1]).all()):
        order = np.argsort(ids, kind="stable")
        frame = frame.iloc[order].reset_index(drop=True)
        same = np.flatnonzero(frame["id"].to_numpy()[1:] == frame["id"].to_numpy()[:-1])
        if same.size:
            a, b = frame.iloc[same].reset_index(drop=True), frame.iloc[same + 1].reset_index(
                drop=True)
            differ = np.flatnonzero(~(a == b).all(axis=1).to_numpy())
            if differ.size:
                i, j = sorted((int(order[same[differ[0]]]), int(order[same[differ[0]] + 1])))
                raise ImportFileError(f"{path}, lines {i + 1 + header} and {j + 1 + header}: "
                                      f"two different trades with id {int(a['id'][differ[0]])}")
            frame = frame.drop(index=same + 1).reset_index(drop=True)
    return frame


def _first_bad_line(path: Path, data: bytes, names: tuple[str, ...], header: int,
                    exc: BaseException | None) -> ImportFileError:
    """The first line the fast parser could not read, found line by line."""
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return ImportFileError(f"{path}: not a text CSV (not UTF-8)")
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if number <= header or not row:
            continue
        if len(row) != len(names):
            return ImportFileError(f"{path}, line {number}: expected {len(names)} columns, "
                                   f"found {len(row)}")
        for name, cell in zip(names, row, strict=True):
            value = cell.strip()
            if name in _BOOLS:
                if value not in ("True", "true", "1", "False", "false", "0") and (
                        value or name != "is_best_match"):
                    return ImportFileError(f"{path}, line {number}: {name} {value!r} is not "
                                           "true or false")
                continue
            try:
                number_value = float(value)
            except ValueError:
                return ImportFileError(f"{path}, line {number}: {name} {value!r} is not a "
                                       "number")
            if name in _INTS and number_value != int(number_value):
                return ImportFileError(f"{path}, line {number}: {name} {value!r} is not a "
                                       "whole number")
    detail = f" ({str(exc).splitlines()[0]})" if exc is not None and str(exc) else ""
    return ImportFileError(f"{path}: cannot parse as a trades CSV{detail}")
