"""Import candle files users have into the market store: one file, or many with read-ahead.

:mod:`tradeflow.market.readers` reads a file of any supported format into one typed frame;
this module decides what it is (symbol and timeframe from ``--symbol``/``--timeframe``, else
the file's name, see :mod:`tradeflow.market.file_names`), checks it whole and stores it whole
or not at all: a file that fails any check commits nothing, and a file imported again changes
nothing. Checks, each named with the file and line: a ``.CHECKSUM`` next to the file
(``<sha256>  <name>``) when present; the candles' spacing agrees with the declared timeframe
(the dominant step between candles; a timeframe nobody declared is inferred from it); times
plausible, on the timeframe's grid and unique. The store then applies the candle contract
(:mod:`tradeflow.market.store`): candles breaking a value rule (a high below the body) are
stored as they are and quarantined.
"""

from __future__ import annotations

import hashlib
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from glob import glob
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from tradeflow import timeframes
from tradeflow.contracts.rules import (
    PLAUSIBLE_FROM_MS,
    PLAUSIBLE_TO_MS,
    grid_offset,
    spacing,
    spacing_agrees,
)
from tradeflow.contracts.schemas import CandlesRefused
from tradeflow.market.file_names import FileNameError, read_name
from tradeflow.market.readers import ImportFileError, ParsedFile, ReadOptions, read_file
from tradeflow.market.store import CandleBatch, MarketStore, SeriesKey, check_batch
from tradeflow.symbols import parse_symbol

__all__ = ["ImportFailure", "ImportFileError", "ImportOptions", "ImportResult", "PreparedFile",
           "expand_paths", "import_file", "import_paths", "prepare_file", "verify_checksum"]

READ_AHEAD = 2  # threads parsing files while earlier ones are written (zlib, pyarrow free the GIL)
_READ_AHEAD_FILES = 4  # files read and checked ahead of the writer (memory: a few files)
# Consecutive files are written together, up to this many candles per transaction: a
# transaction and the file's open and close cost more than writing a month of 1m candles,
# and one INSERT of many row groups is written in parallel (tradeflow.market.bulk_insert).
GROUP_ROWS = 600_000


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """What the command line says about the files: where they go and how to read them."""

    exchange: str = "binance"
    symbol: str | None = None
    timeframe: str | None = None
    read: ReadOptions = field(default_factory=ReadOptions)


@dataclass(frozen=True, slots=True)
class PreparedFile:
    """A file read and checked, ready to be written."""

    path: Path
    key: SeriesKey
    candles: pd.DataFrame
    batch: CandleBatch   # the candles as the store checked them, ready to write
    parsed: ParsedFile
    checksum: str        # verified | absent
    timeframe_from: str  # "name", "--timeframe" or "data" (inferred)


@dataclass(frozen=True, slots=True)
class ImportResult:
    path: Path
    symbol: str
    timeframe: str
    rows: int
    first: int
    last: int
    checksum: str                       # verified | absent
    layout: str = ""                    # what the file was read as
    absent: tuple[str, ...] = ()        # fields the file lacks (stored NULL)
    timeframe_from: str = "name"
    quarantined: dict[str, int] = field(default_factory=dict)  # new entries per rule

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())


@dataclass(frozen=True, slots=True)
class ImportFailure:
    path: Path
    message: str  # one line naming the file


def verify_checksum(path: Path) -> str:
    """Check ``<path>.CHECKSUM`` when it exists; 'verified' or 'absent'."""
    checksum_file = path.with_name(path.name + ".CHECKSUM")
    if not checksum_file.exists():
        return "absent"
    expected = (checksum_file.read_text().split() or [""])[0].strip().lower()
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != expected:
        raise ImportFileError(
            f"{path}: sha256 {actual[:16]}... does not match {checksum_file.name} "
            f"({expected[:16]}...); the download is corrupt"
        )
    return "verified"


def prepare_file(path: Path, options: ImportOptions) -> PreparedFile:
    """Verify, parse and check one file (no store needed); ImportFileError naming file/line."""
    path = Path(path)
    if not path.is_file():
        raise ImportFileError(f"{path}: no such file")
    try:
        named = read_name(path)
    except FileNameError as exc:
        raise ImportFileError(str(exc)) from None
    symbol = options.symbol or named.symbol
    if symbol is None:
        raise ImportFileError(f"{path}: the name does not say the symbol (as "
                              "BTCUSDT-1m-2024-01.zip or BTC_USDT-1m.json do); pass --symbol")
    try:
        parse_symbol(symbol)
    except ValueError as exc:
        raise ImportFileError(f"{path}: {exc}") from None
    checksum = verify_checksum(path)
    parsed = read_file(path, options.read)
    if parsed.frame.empty:
        raise ImportFileError(f"{path}: no rows")
    candles = _ordered(path, parsed)
    _check_plausible(path, candles, parsed)  # a wrong unit says more than its odd spacing
    timeframe, source = _timeframe(path, candles, options.timeframe, named.timeframe)
    _check_grid(path, candles, timeframe, parsed)
    key = SeriesKey(options.exchange, symbol, timeframe)
    # The store's own check, here (in a worker thread) so a refused file is named alone,
    # not with its group, and the writer only writes.
    try:
        batch = check_batch(candles, key, source=_source(path), what=str(path))
    except CandlesRefused as exc:
        raise ImportFileError(str(exc)) from None
    return PreparedFile(path, key, candles, batch, parsed, checksum, source)


def write_prepared(store: MarketStore, prepared: PreparedFile) -> ImportResult:
    """Store a prepared file in one transaction."""
    written = store.write_batches([prepared.batch])
    return _result(prepared, written.per_batch[0])


def _result(p: PreparedFile, quarantined: dict[str, int]) -> ImportResult:
    times = p.candles["open_time"]
    return ImportResult(p.path, p.key.symbol, p.key.timeframe, len(p.candles),
                        int(times.iloc[0]), int(times.iloc[-1]), p.checksum, p.parsed.layout,
                        p.parsed.absent, p.timeframe_from, quarantined)


def _source(path: Path) -> str:
    return f"import:{path.name}"


def import_file(store: MarketStore, path: Path, options: ImportOptions | None = None, *,
                exchange: str | None = None, symbol: str | None = None,
                timeframe: str | None = None) -> ImportResult:
    """Verify, parse, check and store one file in one transaction."""
    options = options or ImportOptions()
    overrides = {k: v for k, v in (("exchange", exchange), ("symbol", symbol),
                                   ("timeframe", timeframe)) if v is not None}
    if overrides:
        options = ImportOptions(**{**_fields(options), **overrides})
    return write_prepared(store, prepare_file(Path(path), options))


def import_paths(store: MarketStore, paths: Iterable[Path], options: ImportOptions, *,
                 done: Callable[[ImportResult | ImportFailure], None] | None = None,
                 read_ahead: int = READ_AHEAD,
                 group_rows: int = GROUP_ROWS) -> list[ImportResult | ImportFailure]:
    """Import many files; a bad file is a failure line and the others still import.

    Files are read and checked in ``read_ahead`` threads while earlier ones are written.
    Consecutive good files are written together, up to ``group_rows`` candles in one
    transaction, each streamed to the store as soon as it is ready: each file is stored
    whole or not at all (a failed transaction fails every file of it), and a later file's
    candle replaces an earlier one's as if written one by one. ``done`` is called for each
    file, in the order of the files, as its transaction ends.
    """
    out: list[ImportResult | ImportFailure] = []
    with ThreadPoolExecutor(max_workers=max(1, read_ahead)) as pool:
        ahead = _ahead(pool, list(paths), options, _READ_AHEAD_FILES)
        while True:
            group: list[PreparedFile | ImportFailure] = []
            try:
                written = store.write_batches(_group(ahead, group, group_rows))
                outcomes = [g if isinstance(g, ImportFailure) else _result(g, q)
                            for g, q in zip(group, _per_file(group, written.per_batch),
                                            strict=True)]
            except _FILE_ERRORS as exc:
                outcomes = [g if isinstance(g, ImportFailure) else
                            ImportFailure(g.path, _one_line(g.path, exc)) for g in group]
            if not group:
                break
            out.extend(outcomes)
            for outcome in outcomes:
                if done is not None:
                    done(outcome)
    return out


def _group(ahead: Iterator[tuple[Path, Future[PreparedFile]]],
           group: list[PreparedFile | ImportFailure], rows: int) -> Iterator[CandleBatch]:
    """The batches of the next files, up to ``rows`` candles, as each is ready; ``group``
    gets every file taken, prepared or failed, in order."""
    total = 0
    for path, future in ahead:
        try:
            prepared = future.result()
        except _FILE_ERRORS as exc:
            group.append(ImportFailure(path, _one_line(path, exc)))
            continue
        group.append(prepared)
        yield prepared.batch
        total += len(prepared.candles)
        if total >= rows:
            return


def _per_file(group: list[PreparedFile | ImportFailure],
              per_batch: tuple[dict[str, int], ...]) -> list[dict[str, int]]:
    """Quarantine counts lined up with ``group`` (failed files have none)."""
    counts = iter(per_batch)
    return [{} if isinstance(g, ImportFailure) else next(counts) for g in group]


def expand_paths(raw: Iterable[str]) -> tuple[list[Path], list[ImportFailure]]:
    """Files named by paths, directories (searched recursively) and glob patterns, in order;
    in directories and globs only candle file types (.zip .csv .json .gz .feather .arrow
    .parquet), not hidden ones. A path matching nothing is a failure."""
    files: list[Path] = []
    missing: list[ImportFailure] = []
    for item in raw:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and _candle_file(p))
        elif path.is_file():
            found = [path]
        else:
            found = sorted(Path(p) for p in glob(item, recursive=True)
                           if Path(p).is_file() and _candle_file(Path(p)))
        if not found:
            what = "no candle files in it" if path.is_dir() else "no such file"
            missing.append(ImportFailure(path, f"{path}: {what}"))
        files.extend(p for p in found if p not in files)
    return files, missing


# -- checks ---------------------------------------------------------------------------------
_FILE_ERRORS = (ValueError, OSError, pa.ArrowException, zlib.error, EOFError)


def _fields(options: ImportOptions) -> dict[str, object]:
    return {"exchange": options.exchange, "symbol": options.symbol,
            "timeframe": options.timeframe, "read": options.read}


_SUFFIXES = (".zip", ".csv", ".json", ".gz", ".feather", ".arrow", ".parquet")


def _candle_file(path: Path) -> bool:
    """A file a directory or glob holds that may be candles (checksums and others skipped)."""
    return not path.name.startswith(".") and path.name.lower().endswith(_SUFFIXES)


def _one_line(path: Path, exc: BaseException) -> str:
    text = (str(exc).splitlines() or [type(exc).__name__])[0]
    return text if str(path) in text else f"{path}: {text}"


def _ahead(pool: ThreadPoolExecutor, paths: list[Path], options: ImportOptions,
           depth: int) -> Iterator[tuple[Path, Future[PreparedFile]]]:
    queue: deque[tuple[Path, Future[PreparedFile]]] = deque()
    pending = iter(paths)
    for path in pending:
        queue.append((path, pool.submit(prepare_file, path, options)))
        if len(queue) > depth:
            yield queue.popleft()
    while queue:
        yield queue.popleft()


def _ordered(path: Path, parsed: ParsedFile) -> pd.DataFrame:
    """Candles ascending (files written newest first are sorted); a time twice is an error
    unless both rows are the same candle."""
    frame = parsed.frame
    times = frame["open_time"].to_numpy()
    if times.size > 1 and not bool((times[1:] > times[:-1]).all()):
        order = np.argsort(times, kind="stable")
        sorted_times = times[order]
        same = np.flatnonzero(sorted_times[1:] == sorted_times[:-1])
        if same.size:
            values = frame.drop(columns="open_time").to_numpy(dtype=np.float64, na_value=np.nan)
            a, b = values[order[same]], values[order[same + 1]]
            differ = np.flatnonzero(~((a == b) | (np.isnan(a) & np.isnan(b))).all(axis=1))
            if differ.size:
                i, j = sorted((int(order[same[differ[0]]]), int(order[same[differ[0]] + 1])))
                raise ImportFileError(
                    f"{path}, {parsed.where(i + 1)} and {parsed.where(j + 1)}: "
                    f"two different candles at open time {int(times[i])}")
        keep = np.ones(order.size, dtype=bool)
        keep[same + 1] = False
        frame = frame.iloc[order[keep]].reset_index(drop=True)
    return frame


def _timeframe(path: Path, candles: pd.DataFrame, given: str | None,
               named: str | None) -> tuple[str, str]:
    """The declared timeframe checked against the data's spacing, or the inferred one."""
    found = spacing(candles["open_time"].to_numpy())
    declared, source = (given, "--timeframe") if given else (named, "name")
    if declared is None:
        if found is None:
            raise ImportFileError(f"{path}: one candle does not tell its timeframe; "
                                  "pass --timeframe")
        try:
            timeframes.parse(found.label)
        except timeframes.TimeframeError:
            raise ImportFileError(f"{path}: candles are spaced {found.label} apart, not a "
                                  "timeframe; pass --timeframe") from None
        return found.label, "data"
    if not spacing_agrees(found, declared):
        assert found is not None
        said = "--timeframe" if source == "--timeframe" else "the file name"
        raise ImportFileError(
            f"{path}: candles are spaced {found.label} apart ({found.dominant_share:.0%} of "
            f"steps), but {said} says {declared}; allowed: {declared} candles, or "
            f"--timeframe {found.label} if the data is right")
    return declared, source


def _check_plausible(path: Path, candles: pd.DataFrame, parsed: ParsedFile) -> None:
    times = candles["open_time"].to_numpy()
    odd = np.flatnonzero((times < PLAUSIBLE_FROM_MS) | (times >= PLAUSIBLE_TO_MS))
    if odd.size:
        at = int(times[odd[0]])
        raise ImportFileError(
            f"{path}: open time {at} ({np.datetime64(at, 'ms')}) read as "
            f"{parsed.time_unit}; allowed: times from 2009 to 2100 "
            "(--time-unit s|ms|us|ns|iso tells the unit)")


def _check_grid(path: Path, candles: pd.DataFrame, timeframe: str, parsed: ParsedFile) -> None:
    times = candles["open_time"].to_numpy()
    off = np.flatnonzero(grid_offset(times, timeframe) != 0)
    if off.size:
        row = int(np.flatnonzero(parsed.frame["open_time"].to_numpy() == times[off[0]])[0])
        raise ImportFileError(f"{path}, {parsed.where(row + 1)}: open time {int(times[off[0]])} "
                              f"is not on the {timeframe} grid")
