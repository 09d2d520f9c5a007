"""Bulk import of Binance Vision kline dumps (data.binance.vision).

Files are named ``BTCUSDT-1m-2024-01.zip`` (monthly) or ``BTCUSDT-1m-2024-01-15.zip`` (daily)
and hold one headerless CSV of 12 columns: open time, open, high, low, close, volume,
close time, quote volume, trades, taker buy base, taker buy quote, ignore. Spot dumps from
2025 on stamp times in microseconds; older ones in milliseconds. A ``.CHECKSUM`` file next to
a dump (``<sha256>  <name>``) is verified when present. A file is parsed and checked whole
before anything is written, and written in one transaction: a corrupt file commits nothing.
A well-formed file whose candles break a hard rule (a high below the body, a zero price) is
imported as it is, and those candles are also written to the quarantine.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tradeflow import timeframes
from tradeflow.contracts.schemas import check_candles
from tradeflow.market.quarantine import quarantine_failures
from tradeflow.market.store import MarketStore, SeriesKey

KLINE_COLUMNS = [
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
    "trades", "taker_buy_base", "taker_buy_quote", "ignore",
]
_NAME_RE = re.compile(
    r"^(?P<symbol>[A-Z0-9]+)-(?P<tf>\d+[smhdwM])-(?P<date>\d{4}-\d{2}(?:-\d{2})?)\.(zip|csv)$"
)
# Longest first, so BTCUSDT splits as BTC/USDT and not BTCUSD/T.
QUOTES = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USDP", "DAI", "BTC", "ETH", "BNB", "EUR",
          "TRY", "BRL", "GBP", "AUD", "JPY", "XRP", "TRX", "DOGE")
_MICROS_THRESHOLD = 10**14  # ms timestamps stay below this until the year 5138


class ImportFileError(ValueError):
    """A dump that cannot be imported; the message names the file (and line)."""


@dataclass(frozen=True, slots=True)
class ImportResult:
    path: Path
    symbol: str
    timeframe: str
    rows: int
    first: int
    last: int
    checksum: str  # verified | absent
    quarantined: int = 0  # new quarantine entries: candles breaking hard rules


def split_symbol(raw: str) -> str:
    """``BTCUSDT`` -> ``BTC/USDT`` using the common Binance quote assets."""
    for quote in QUOTES:
        if raw.endswith(quote) and len(raw) > len(quote):
            return f"{raw[: -len(quote)]}/{quote}"
    raise ImportFileError(f"cannot tell base and quote in {raw!r}; pass --symbol BASE/QUOTE")


def parse_name(path: Path) -> tuple[str, str]:
    """(unified symbol, timeframe) from a Binance Vision file name."""
    match = _NAME_RE.match(path.name)
    if not match:
        raise ImportFileError(
            f"{path}: name is not SYMBOL-TIMEFRAME-YYYY-MM[-DD].zip|.csv "
            "(as data.binance.vision names klines); pass --symbol and --timeframe"
        )
    return split_symbol(match.group("symbol")), match.group("tf")


def verify_checksum(path: Path) -> str:
    """Check ``<path>.CHECKSUM`` when it exists; 'verified' or 'absent'."""
    checksum_file = path.with_name(path.name + ".CHECKSUM")
    if not checksum_file.exists():
        return "absent"
    expected = checksum_file.read_text().split()[0].strip().lower()
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != expected:
        raise ImportFileError(
            f"{path}: sha256 {actual[:16]}... does not match {checksum_file.name} "
            f"({expected[:16]}...); the download is corrupt"
        )
    return "verified"


def read_dump(path: Path, timeframe: str) -> pd.DataFrame:
    """Parse a dump into a candle frame; raise ImportFileError naming file and line."""
    text = _read_text(path)
    lines = text.splitlines()
    skip = 1 if lines and lines[0] and not lines[0].lstrip()[:1].isdigit() else 0  # header
    for number, line in enumerate(lines[skip:], start=skip + 1):
        fields = line.count(",") + 1
        if line.strip() and fields != 12:
            raise ImportFileError(f"{path}, line {number}: expected 12 columns, found {fields}")
    raw = pd.read_csv(io.StringIO(text), header=None, names=KLINE_COLUMNS, skiprows=skip,
                      dtype=str, skip_blank_lines=True)
    out: dict[str, np.ndarray] = {}
    for column in ("open_time", "open", "high", "low", "close", "volume", "quote_volume",
                   "trades"):
        values = pd.to_numeric(raw[column], errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            row = int(bad[0])
            raise ImportFileError(
                f"{path}, line {row + skip + 1}: {column} {raw[column].iloc[row]!r} "
                "is not a number"
            )
        out[column] = values
    times = out["open_time"].astype(np.int64)
    if times.size and times.max() >= _MICROS_THRESHOLD:
        times = times // 1000
    frame = pd.DataFrame({
        "open_time": times,
        **{c: out[c] for c in ("open", "high", "low", "close", "volume", "quote_volume")},
        "trades": out["trades"].astype(np.int64),
    })
    _check_grid(path, frame, timeframe, skip)
    return frame


def _read_text(path: Path) -> str:
    try:
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                members = [n for n in archive.namelist() if n.endswith(".csv")]
                if len(members) != 1:
                    raise ImportFileError(f"{path}: expected one .csv inside, found {members}")
                return archive.read(members[0]).decode()
        return path.read_text()
    except zipfile.BadZipFile:
        raise ImportFileError(f"{path}: not a valid zip archive") from None
    except UnicodeDecodeError:
        raise ImportFileError(f"{path}: not a text CSV") from None
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read ({exc.strerror})") from None


def _check_grid(path: Path, frame: pd.DataFrame, timeframe: str, skip: int) -> None:
    times = frame["open_time"].to_numpy()
    if timeframes.is_calendar(timeframe):
        on_grid = np.array([timeframes.floor(int(t), timeframe) == t for t in times])
    else:
        step = timeframes.duration_ms(timeframe)
        offset = timeframes.floor(0, timeframe) % step
        on_grid = (times - offset) % step == 0
    bad = np.flatnonzero(~on_grid)
    if bad.size:
        row = int(bad[0])
        raise ImportFileError(
            f"{path}, line {row + skip + 1}: open time {times[row]} is not on the {timeframe} grid"
        )
    order = np.flatnonzero(np.diff(times) <= 0)
    if order.size:
        row = int(order[0]) + 1
        raise ImportFileError(
            f"{path}, line {row + skip + 1}: open time {times[row]} is not after the previous row"
        )


def import_file(store: MarketStore, path: Path, *, exchange: str = "binance",
                symbol: str | None = None, timeframe: str | None = None) -> ImportResult:
    """Verify, parse and store one dump in one transaction."""
    path = Path(path)
    if not path.exists():
        raise ImportFileError(f"{path}: no such file")
    if symbol is None or timeframe is None:
        name_symbol, name_tf = parse_name(path)
        symbol, timeframe = symbol or name_symbol, timeframe or name_tf
    checksum = verify_checksum(path)
    frame = read_dump(path, timeframe)
    if frame.empty:
        raise ImportFileError(f"{path}: no rows")
    source = f"import:{path.name}"
    # Grid and order were enforced above; this adds the value rules (OHLC body, signs).
    check = check_candles(frame, timeframe)
    quarantined = quarantine_failures(store, SeriesKey(exchange, symbol, timeframe), frame,
                                      check, source=source)
    store.upsert(frame, exchange=exchange, symbol=symbol, timeframe=timeframe, source=source)
    return ImportResult(path, symbol, timeframe, len(frame), int(frame["open_time"].iloc[0]),
                        int(frame["open_time"].iloc[-1]), checksum, quarantined)
