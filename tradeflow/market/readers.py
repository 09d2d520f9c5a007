"""Candle files read into one typed frame, whatever their format: detection and parsing.

Formats, told apart by content and extension (``ImportOptions.format`` forces one):

* ``binance``: Binance Vision klines, spot and futures (12 columns: open time, OHLCV, close
  time, quote volume, trades, taker buy base and quote, ignore), with or without the header
  row futures files carry, in milliseconds or microseconds, as ``.csv`` or ``.zip``; also a
  captured ``/api/v3/klines`` body (JSON rows of the same 12 fields).
* ``json``: freqtrade's OHLCV JSON (``[[ms, o, h, l, c, v], ...]``), plain or ``.json.gz``.
* ``feather`` and ``parquet``: freqtrade's files (``date, open, high, low, close, volume``) or
  any table whose columns the mapping finds.
* ``csv``: any CSV with a header row whose columns the mapping finds (``timestamp``, ``open``,
  ...; ``--columns`` names them otherwise), or a headerless 6-column ``time,o,h,l,c,v`` file.

Times may be seconds, milliseconds, microseconds or nanoseconds (told by magnitude unless
``time_unit`` says) or ISO 8601 text; naive times are UTC. Fields a file lacks are NaN here and
NULL in the store: nothing is invented. Parsing is pyarrow's (multi-threaded, typed); when it
fails, a plain line-by-line pass finds the first bad line to name.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import struct
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from zlib_ng import zlib_ng

FORMATS = ("binance", "json", "csv", "parquet", "feather")
TIME_UNITS = ("s", "ms", "us", "ns", "iso")
FIELDS = ("open_time", "open", "high", "low", "close", "volume", "quote_volume", "trades",
          "taker_buy_base", "taker_buy_quote")
REQUIRED = ("open_time", "open", "high", "low", "close")
KLINE_COLUMNS = ("open_time", "open", "high", "low", "close", "volume", "close_time",
                 "quote_volume", "trades", "taker_buy_base", "taker_buy_quote", "ignore")
# Column names tried, lower-cased, when a file's columns are not mapped explicitly.
ALIASES: dict[str, tuple[str, ...]] = {
    "open_time": ("open_time", "date", "timestamp", "time", "datetime", "ts", "open time",
                  "unix", "opentime", "start"),
    "open": ("open", "o"), "high": ("high", "h"), "low": ("low", "l"),
    "close": ("close", "c"),
    "volume": ("volume", "vol", "v", "base_volume", "volume_base"),
    "quote_volume": ("quote_volume", "quote volume", "quote asset volume", "quote_asset_volume",
                     "volume_quote", "quotevolume"),
    "trades": ("trades", "count", "number of trades", "number_of_trades", "tradecount"),
    "taker_buy_base": ("taker_buy_base", "taker_buy_volume", "taker buy base asset volume",
                       "taker_buy_base_asset_volume"),
    "taker_buy_quote": ("taker_buy_quote", "taker_buy_quote_volume",
                        "taker buy quote asset volume", "taker_buy_quote_asset_volume"),
}
_UNIT_MS = {"s": 1000, "ms": 1, "us": 1 / 1000, "ns": 1 / 1_000_000}


class ImportFileError(ValueError):
    """A file that cannot be imported; the message names the file (and line or row)."""


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """How to read a file: the format (None: detect), column mapping, time and volume units."""

    format: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)  # field -> the file's column
    time_unit: str | None = None                              # None: by magnitude / text
    volume_unit: Literal["base", "quote"] = "base"


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """A file's candles: every field of :data:`FIELDS` (NaN where absent), ascending or not."""

    frame: pd.DataFrame
    layout: str                 # what was read: "Binance Vision klines", "freqtrade json", ...
    absent: tuple[str, ...]     # fields the file does not have (stored NULL)
    time_unit: str
    lines: bool                 # positions are text lines (CSV), not rows
    header: int = 0             # lines before the first candle

    def where(self, position: int) -> str:
        """``line N`` (CSV) or ``row N`` of the ``position``-th candle (1-based) as read."""
        return f"line {position + self.header}" if self.lines else f"row {position}"


def parse_columns(text: str) -> dict[str, str]:
    """``open_time=ts,close=last`` -> a mapping; ValueError naming a bad entry."""
    out: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, sep, column = (s.strip() for s in item.partition("="))
        if not sep or not column or name not in FIELDS:
            raise ValueError(f"--columns entry {item!r}: allowed FIELD=COLUMN with FIELD one "
                             f"of {', '.join(FIELDS)}")
        out[name] = column
    return out


def read_file(path: Path, options: ReadOptions) -> ParsedFile:
    """Read one candle file; :class:`ImportFileError` naming the file and line on failure."""
    data, inner = _load(path)
    fmt = options.format or detect(data, inner)
    if fmt == "binance":
        if data.lstrip()[:1] == b"[":
            return _from_rows(path, _json_rows(path, data), KLINE_COLUMNS, "Binance klines json")
        return _binance_csv(path, data)
    if fmt == "json":
        return _from_rows(path, _json_rows(path, data), FIELDS[:6], "OHLCV json (freqtrade)",
                          options)
    if fmt in ("parquet", "feather"):
        return _from_table(path, _arrow_file(path, data, fmt), options, fmt)
    return _generic_csv(path, data, options)


def detect(data: bytes, name: str) -> str:
    """The format of a file's bytes (its inner name for zips and gzip)."""
    lower = name.lower()
    if data[:4] == b"PAR1" or lower.endswith(".parquet"):
        return "parquet"
    if data[:6] == b"ARROW1" or lower.endswith((".feather", ".arrow")):
        return "feather"
    head = data[:65536].lstrip()
    if head[:1] == b"[":
        first = head[1:].lstrip()
        return "binance" if first[:1] == b"[" and _json_width(head) == 12 else "json"
    lines = head.split(b"\n", 2)
    first = lines[0].strip()
    fields = first.count(b",") + 1
    if first[:1].isdigit() and fields == 12:
        return "binance"
    if first.lower().replace(b" ", b"").startswith(b"open_time,open,high,low,close,volume,"
                                                   b"close_time,quote_volume"):
        return "binance"  # Binance Vision futures files carry this header
    return "csv"


# -- loading ------------------------------------------------------------------------------
def _load(path: Path) -> tuple[bytes, str]:
    """The file's bytes (the one member of a zip, gzip decompressed) and their name."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read ({exc.strerror})") from None
    if raw[:4] == b"PK\x03\x04" or path.suffix == ".zip":
        try:
            with zipfile.ZipFile(io.BytesIO(raw)) as archive:
                members = [n for n in archive.namelist() if not n.endswith("/")]
                if len(members) != 1:
                    raise ImportFileError(f"{path}: expected one file inside, found {members}")
                return _member(raw, archive, archive.getinfo(members[0])), members[0]
        except ImportFileError:
            raise
        except Exception as exc:  # noqa: BLE001 - a damaged archive fails in many ways
            # zipfile raises BadZipFile, zlib.error, EOFError, ValueError, struct.error,
            # UnicodeDecodeError... depending on which byte is damaged.
            raise ImportFileError(f"{path}: not a valid zip archive ({_first_line(exc)})") \
                from None
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw), path.name.removesuffix(".gz")
        except (OSError, zlib.error, EOFError) as exc:
            raise ImportFileError(f"{path}: not a valid gzip file ({_first_line(exc)})") \
                from None
    return raw, path.name


load_bytes = _load  # for the other dumps users have (trade dumps: trade_import)


def _member(raw: bytes, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """A zip member's bytes, its size and CRC-32 checked. A deflated one is inflated by
    zlib-ng (about twice zlib's speed on a month of klines: unzipping was the import's
    largest cost after the store's write); others are left to zipfile."""
    if info.compress_type != zipfile.ZIP_DEFLATED or info.flag_bits & 0x1:  # 0x1: encrypted
        return archive.read(info)
    at = info.header_offset
    header = raw[at:at + 30]
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"bad local header of {info.filename}")
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    start = at + 30 + name_length + extra_length
    data = zlib_ng.decompress(raw[start:start + info.compress_size], -15,
                              max(info.file_size, 1))
    if len(data) != info.file_size or zlib_ng.crc32(data) != info.CRC:
        raise zipfile.BadZipFile(f"bad CRC-32 or size of {info.filename}")
    return data


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


# -- Binance Vision CSV ---------------------------------------------------------------------
def _binance_csv(path: Path, data: bytes) -> ParsedFile:
    header = 0 if data.lstrip()[:1].isdigit() else 1
    types = {c: pa.float64() for c in KLINE_COLUMNS}
    types.update(open_time=pa.int64(), close_time=pa.int64(), trades=pa.int64(),
                 ignore=pa.string())
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=list(KLINE_COLUMNS), skip_rows=header),
            convert_options=pacsv.ConvertOptions(
                column_types=types, include_columns=[c for c in FIELDS]),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise _diagnose_csv(path, data, header, KLINE_COLUMNS, exc) from None
    frame = pd.DataFrame({c: table[c].to_numpy(zero_copy_only=False) for c in FIELDS[1:]
                          if c != "trades"})
    frame["trades"] = pd.array(table["trades"].to_pandas().to_numpy(
        dtype=np.float64, na_value=np.nan), dtype="Int64")
    times = table["open_time"]
    if times.null_count:
        raise _diagnose_csv(path, data, header, KLINE_COLUMNS, None)
    raw = times.to_numpy()
    # Spot dumps from 2025 on stamp microseconds; older ones and futures milliseconds.
    unit = "us" if raw.size and raw.max() >= 10**14 else "ms"
    frame.insert(0, "open_time", raw // 1000 if unit == "us" else raw)
    parsed = ParsedFile(frame, "Binance Vision klines", (), unit, lines=True, header=header)
    return _require(path, parsed, ("volume",), lambda: _diagnose_csv(
        path, data, header, KLINE_COLUMNS, None))


def _diagnose_csv(path: Path, data: bytes, header: int, columns: tuple[str, ...],
                  exc: BaseException | None) -> ImportFileError:
    """The first bad line, found by reading line by line (the fast parser failed)."""
    required = {*REQUIRED, "volume"}
    numeric = set(FIELDS) | {"close_time"}
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return ImportFileError(f"{path}: not a text CSV (not UTF-8)")
    reader = csv.reader(io.StringIO(text))
    for number, row in enumerate(reader, start=1):
        if number <= header or not row:
            continue
        if len(row) != len(columns):
            return ImportFileError(f"{path}, line {number}: expected {len(columns)} columns, "
                                   f"found {len(row)}")
        for name, cell in zip(columns, row, strict=True):
            problem = _cell_problem(name, cell, name in required, name in numeric)
            if problem:
                return ImportFileError(f"{path}, line {number}: {problem}")
    detail = f" ({_first_line(exc)})" if exc is not None else ""
    return ImportFileError(f"{path}: cannot parse as CSV{detail}")


def _cell_problem(name: str, cell: str, required: bool, numeric: bool) -> str | None:
    value = cell.strip()
    if not value:
        return f"{name} is empty" if required else None
    if numeric:
        try:
            number = float(value)
        except ValueError:
            return f"{name} {value!r} is not a number"
        if name in ("open_time", "close_time", "trades") and number != int(number):
            return f"{name} {value!r} is not a whole number"
    return None


# -- JSON rows ------------------------------------------------------------------------------
def _json_width(head: bytes) -> int:
    """Fields in the first row of a JSON array of arrays (from its first bytes)."""
    start = head.find(b"[", head.find(b"[") + 1)
    end = head.find(b"]", start)
    return head[start:end].count(b",") + 1 if start >= 0 and end > start else 0


def _json_rows(path: Path, data: bytes) -> list[Any]:
    try:
        rows = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImportFileError(f"{path}: not valid JSON ({_first_line(exc)})") from None
    if not isinstance(rows, list) or any(not isinstance(r, list) for r in rows[:1]):
        raise ImportFileError(f"{path}: expected a JSON array of candle arrays "
                              "([[ms, open, high, low, close, volume], ...])")
    return rows


def _from_rows(path: Path, rows: list[Any], columns: tuple[str, ...], layout: str,
               options: ReadOptions | None = None) -> ParsedFile:
    """Candles from JSON arrays whose positions are ``columns``."""
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, list) or len(row) != len(columns):
            found = len(row) if isinstance(row, list) else type(row).__name__
            raise ImportFileError(f"{path}, row {number}: expected {len(columns)} fields, "
                                  f"found {found}")
    values = np.array(rows, dtype=object).reshape(len(rows), len(columns))
    cells = {name: values[:, i] for i, name in enumerate(columns) if name in FIELDS}
    frame, absent, unit = _typed(path, cells, options or ReadOptions(), lines=False)
    return ParsedFile(frame, layout, absent, unit, lines=False)


# -- tables: parquet, feather, CSV with a header -------------------------------------------
def _arrow_file(path: Path, data: bytes, fmt: str) -> pa.Table:
    import pyarrow.feather as feather
    import pyarrow.parquet as pq

    try:
        if fmt == "parquet":
            return pq.read_table(io.BytesIO(data))
        return feather.read_table(io.BytesIO(data))
    except (pa.ArrowInvalid, OSError) as exc:
        raise ImportFileError(f"{path}: not a valid {fmt} file ({_first_line(exc)})") from None


def _generic_csv(path: Path, data: bytes, options: ReadOptions) -> ParsedFile:
    first = data.lstrip()[:64].split(b",", 1)[0].strip()
    if first[:1].isdigit() and not options.columns:
        width = data.split(b"\n", 1)[0].count(b",") + 1
        if width != 6:
            raise ImportFileError(
                f"{path}: no header row and {width} columns; allowed: a header naming the "
                "columns (or --columns FIELD=COLUMN,...), 12 Binance kline columns, or "
                "6 columns time,open,high,low,close,volume")
        names = list(FIELDS[:6])
        read = pacsv.ReadOptions(column_names=names)
    else:
        names, read = [], pacsv.ReadOptions()
    try:
        table = pacsv.read_csv(io.BytesIO(data), read_options=read,
                               convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        header = 0 if names else 1
        columns = tuple(names) if names else tuple(next(csv.reader(io.StringIO(
            data.decode(errors="replace")))))
        raise _diagnose_csv(path, data, header, columns, exc) from None
    return _from_table(path, table, options, "csv", lines=True, header=0 if names else 1)


def _from_table(path: Path, table: pa.Table, options: ReadOptions, layout: str, *,
                lines: bool = False, header: int = 0) -> ParsedFile:
    mapping = _map_columns(path, table.column_names, options)
    cells: dict[str, Any] = {name: table[column] for name, column in mapping.items()}
    frame, absent, unit = _typed(path, cells, options, lines=lines, header=header)
    if layout != "csv" and set(table.column_names) >= {"date", "open", "close", "volume"}:
        layout = f"freqtrade {layout}"
    return ParsedFile(frame, layout, absent, unit, lines=lines, header=header)


def _map_columns(path: Path, names: list[str], options: ReadOptions) -> dict[str, str]:
    """Field -> the file's column: the explicit mapping first, then the aliases."""
    by_lower = {str(n).strip().lower(): n for n in names}
    out: dict[str, str] = {}
    for name, column in options.columns.items():
        if column not in names:
            raise ImportFileError(f"{path}: --columns {name}={column}: no such column; the "
                                  f"file has {', '.join(map(str, names))}")
        out[name] = column
    for name, aliases in ALIASES.items():
        if name in out:
            continue
        found = next((by_lower[a] for a in aliases if a in by_lower), None)
        if found is not None and found not in out.values():
            out[name] = found
    missing = [f for f in REQUIRED if f not in out]
    if missing:
        raise ImportFileError(
            f"{path}: no column for {', '.join(missing)}; the file has "
            f"{', '.join(map(str, names))}; map them with --columns FIELD=COLUMN,...")
    return out


# -- typing ---------------------------------------------------------------------------------
def _typed(path: Path, cells: Mapping[str, Any], options: ReadOptions, *, lines: bool,
           header: int = 0) -> tuple[pd.DataFrame, tuple[str, ...], str]:
    """The frame of :data:`FIELDS` from raw columns (arrow arrays or object arrays)."""
    cells = dict(cells)
    if options.volume_unit == "quote" and "volume" in cells:
        # The file's only volume is in the quote asset: the base volume stays unknown.
        cells["quote_volume"] = cells.pop("volume")
    n = len(next(iter(cells.values())))
    where = "line" if lines else "row"
    frame: dict[str, Any] = {}
    for name in FIELDS[1:]:
        if name not in cells:
            frame[name] = np.full(n, np.nan)
            continue
        values = _numbers(cells[name])
        bad = np.flatnonzero(np.isnan(values) & _present(cells[name]))
        if bad.size:
            raw = _cell(cells[name], int(bad[0]))
            raise ImportFileError(f"{path}, {where} {int(bad[0]) + 1 + header}: {name} "
                                  f"{raw!r} is not a number")
        frame[name] = values
    trades = frame["trades"]
    fraction = np.flatnonzero(np.isfinite(trades) & (trades != np.round(trades)))
    if fraction.size:
        raise ImportFileError(f"{path}, {where} {int(fraction[0]) + 1 + header}: trades "
                              f"{trades[fraction[0]]!r} is not a whole number")
    frame["trades"] = pd.array(trades, dtype="Int64")
    times, unit = _times(path, cells["open_time"], options.time_unit, where, header)
    out = pd.DataFrame({"open_time": times, **frame})
    for name in (*REQUIRED[1:], *(("volume",) if "volume" in cells else ())):
        empty = np.flatnonzero(out[name].isna().to_numpy())
        if empty.size:
            raise ImportFileError(f"{path}, {where} {int(empty[0]) + 1 + header}: "
                                  f"{name} is empty")
    absent = tuple(f for f in FIELDS if f not in cells)
    return out, absent, unit


def _numbers(values: Any) -> np.ndarray:
    if isinstance(values, pa.ChunkedArray | pa.Array):
        if pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
            return values.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False)
        values = values.to_numpy(zero_copy_only=False)
    return pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan)


def _present(values: Any) -> np.ndarray:
    """True where a cell holds something (not null, not an empty string)."""
    if isinstance(values, pa.ChunkedArray | pa.Array):
        values = values.to_numpy(zero_copy_only=False)
    series = pd.Series(values, dtype=object)
    return (series.notna() & (series.astype(str).str.strip() != "")).to_numpy()


def _cell(values: Any, i: int) -> Any:
    if isinstance(values, pa.ChunkedArray | pa.Array):
        return values[i].as_py()
    return values[i]


def _times(path: Path, values: Any, unit: str | None, where: str,
           header: int) -> tuple[np.ndarray, str]:
    """Open times as int64 UTC milliseconds, and the unit they were read in."""
    if isinstance(values, pa.ChunkedArray | pa.Array) and pa.types.is_timestamp(values.type):
        tz = values.type.tz
        ms = pc.cast(values if tz else pc.assume_timezone(values, "UTC"),
                     pa.timestamp("ms", tz="UTC"), safe=False)
        return _no_nulls(path, ms.cast(pa.int64()).to_numpy(zero_copy_only=False), where,
                         header), "timestamp"
    exact = isinstance(values, pa.ChunkedArray | pa.Array) and \
        pa.types.is_integer(values.type) and not values.null_count
    if unit == "iso" or (unit is None and not exact and not np.isfinite(_numbers(values)).any()):
        return _iso_times(path, values, where, header), "iso"
    numbers = values.to_numpy(zero_copy_only=False).astype(np.int64) if exact else \
        _no_nulls(path, _numbers(values), where, header)
    if unit is None:
        top = float(np.abs(numbers).max()) if numbers.size else 0.0
        unit = "s" if top < 1e11 else "ms" if top < 1e14 else "us" if top < 1e17 else "ns"
    if numbers.dtype.kind in "iu" and unit in ("ms", "us", "ns"):
        return numbers.astype(np.int64) // {"ms": 1, "us": 1000, "ns": 1_000_000}[unit], unit
    ms = numbers * _UNIT_MS[unit]
    whole = np.round(ms)
    off = np.flatnonzero(np.abs(ms - whole) > 0.01)  # float seconds carry some noise
    if off.size:
        raise ImportFileError(f"{path}, {where} {int(off[0]) + 1 + header}: open_time "
                              f"{numbers[off[0]]!r} is not a whole millisecond in {unit}")
    return whole.astype(np.int64), unit


def _iso_times(path: Path, values: Any, where: str, header: int) -> np.ndarray:
    if isinstance(values, pa.ChunkedArray | pa.Array):
        values = values.to_numpy(zero_copy_only=False)
    text = pd.Series(values, dtype=object)
    parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if bad.size:
        row = int(bad[0])
        shown = "empty" if not str(text.iloc[row] or "").strip() else repr(text.iloc[row])
        raise ImportFileError(f"{path}, {where} {row + 1 + header}: open_time {shown} is "
                              "not a time; allowed: numbers (--time-unit s|ms|us|ns) or "
                              "ISO 8601 text")
    return ((parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(1, "ms")).to_numpy(
        dtype=np.int64)


def _no_nulls(path: Path, values: np.ndarray, where: str, header: int) -> np.ndarray:
    bad = np.flatnonzero(np.isnan(values)) if values.dtype.kind == "f" else np.empty(0, int)
    if bad.size:
        raise ImportFileError(f"{path}, {where} {int(bad[0]) + 1 + header}: open_time is empty")
    return values


def _require(path: Path, parsed: ParsedFile, columns: tuple[str, ...],
             diagnose: Any) -> ParsedFile:
    """``parsed`` when REQUIRED and ``columns`` have no empty cell; else the diagnosis."""
    for name in (*REQUIRED[1:], *columns):
        if parsed.frame[name].isna().any():
            raise diagnose()
    return parsed
