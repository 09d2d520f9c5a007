"""Import candle and trade files into the market store: Binance Vision dumps (klines, trades,
aggTrades), freqtrade data, any CSV.

PATH may be files, directories (searched recursively) or glob patterns ("data/*.zip").
Formats are told by content and extension (--format forces one): Binance Vision klines
(spot or futures, .zip or .csv, with or without header, ms or us times; a .CHECKSUM file
beside a dump is verified) and captured /api/v3/klines bodies; freqtrade OHLCV files (.json,
.json.gz, .feather, .parquet); any CSV or Parquet whose columns are found by name
(timestamp/date/time, open, high, low, close, volume, ...) or mapped with --columns.

Symbol and timeframe come from the file name (BTCUSDT-1m-2024-01.zip, BTC_USDT-1m.json,
BTC_USDT_USDT-1h-futures.feather; futures/um/ and futures/cm/ folders of Binance Vision give
perpetuals such as BTC/USDT:USDT) unless --symbol/--timeframe say. The timeframe is also read
from the data (the dominant spacing of the candles): a file whose spacing disagrees with its
declared timeframe is refused, and a file that declares none takes the one read. Fields a
file lacks (quote volume, trade count, taker buy volumes) are stored as NULL, never invented.

Each file is checked whole and stored whole or not at all (consecutive files share a
transaction): a bad file is reported in one line naming it (and the line or row) and nothing
of it is stored; the other files still import. Importing a file again changes nothing.
Candles breaking a value rule (a high below the body) are stored as they are and
quarantined.

Binance Vision trade dumps (BTCUSDT-trades-2024-01-15.zip, BTCUSDT-aggTrades-2024-01.zip;
spot or futures, header or not, ms or us times) go into the trades table, each file in one
transaction or not at all; trades already stored are kept, so a re-import adds nothing. An
aggTrade is stored as one trade keyed by its first trade id. Exit code 1 when any file failed.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tradeflow.config import Settings
    from tradeflow.market.importer import ImportResult
    from tradeflow.market.trade_import import TradeImportResult


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tradeflow.market.readers import FORMATS, TIME_UNITS

    parser.add_argument("paths", nargs="+", metavar="PATH", help="files, directories, globs")
    parser.add_argument("--symbol", help="unified symbol, e.g. BTC/USDT or BTC/USDT:USDT "
                                         "(default: from the file name)")
    parser.add_argument("--timeframe", help="e.g. 1m (default: from the name, else the data)")
    parser.add_argument("--exchange", default="binance", help="exchange id to file under")
    parser.add_argument("--format", choices=FORMATS, help="read every file as this format")
    parser.add_argument("--columns", metavar="FIELD=COLUMN,...",
                        help="map the file's columns: open_time=ts,open=o,...,volume=vol")
    parser.add_argument("--time-unit", choices=TIME_UNITS,
                        help="unit of numeric times (default: by magnitude); iso for text; "
                             "naive times are UTC")
    parser.add_argument("--volume-unit", choices=("base", "quote"), default="base",
                        help="quote: the file's volume is in the quote asset (stored as "
                             "quote volume; base volume stays NULL)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from cli.profile import settings_from
    from tradeflow import timeframes
    from tradeflow.errors import UsageError
    from tradeflow.market.importer import (
        ImportFailure,
        ImportOptions,
        expand_paths,
        import_paths,
    )
    from tradeflow.market.readers import ReadOptions, parse_columns
    from tradeflow.market.store import open_store
    from tradeflow.market.trade_import import is_trade_dump
    from tradeflow.symbols import parse_symbol

    if args.timeframe is not None:
        timeframes.parse(args.timeframe)  # a TimeframeError is a one-line usage error
    try:
        if args.symbol is not None:
            parse_symbol(args.symbol)
        columns = parse_columns(args.columns) if args.columns else {}
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    options = ImportOptions(args.exchange, args.symbol, args.timeframe, ReadOptions(
        args.format, columns, args.time_unit, args.volume_unit))
    settings = settings_from(args)
    files, missing = expand_paths(args.paths)
    for failure in missing:
        print(f"FAILED {failure.message}")
    dumps = [f for f in files if is_trade_dump(f)]
    files = [f for f in files if f not in dumps]
    store = open_store(settings)
    # A bar only on a terminal; each file's line is printed above it (else to stdout).
    show = not args.no_progress and len(files) > 1 and sys.stderr.isatty()
    progress, task = _progress(len(files), show)

    def done(outcome: ImportResult | ImportFailure) -> None:
        if isinstance(outcome, ImportFailure):
            line = f"FAILED {outcome.message}"
        else:
            line = _imported(outcome)
        if progress is not None:
            progress.console.print(line, highlight=False, markup=False, soft_wrap=True)
            progress.advance(task)
        else:
            print(line)

    try:
        outcomes = import_paths(store, files, options, done=done) if files else []
    finally:
        if progress is not None:
            progress.stop()
        store.close()
    failed = len(missing) + sum(isinstance(o, ImportFailure) for o in outcomes)
    failed += _import_trade_dumps(settings, dumps, args.exchange, args.symbol)
    total = len(files) + len(dumps) + len(missing)
    print(f"{total - failed} of {total} files imported into {settings.store_path}")
    return 1 if failed else 0


def _import_trade_dumps(settings: Settings, dumps: list, exchange: str,
                        symbol: str | None) -> int:
    """Store each trade dump in its own transaction; returns how many failed."""
    if not dumps:
        return 0
    from tradeflow.market.orderflow_store import OrderFlowStore
    from tradeflow.market.readers import ImportFileError
    from tradeflow.market.trade_import import import_trade_dump

    failed = 0
    store = OrderFlowStore(settings.store_path, lock_retries=settings.store.lock_retries)
    try:
        for path in dumps:
            try:
                print(_trades_imported(import_trade_dump(store, path, exchange=exchange,
                                                         symbol=symbol)))
            except (ImportFileError, OSError) as exc:
                failed += 1
                text = (str(exc).splitlines() or [type(exc).__name__])[0]
                print(f"FAILED {text if str(path) in text else f'{path}: {text}'}")
    finally:
        store.close()
    return failed


def _trades_imported(r: TradeImportResult) -> str:
    from tradeflow import timeframes

    notes = [r.layout, f"{r.new:,} new", f"checksum {r.checksum}", f"times in {r.time_unit}"]
    return (f"imported {r.path.name}: {r.rows:,} trades {r.symbol} ids {r.first_id}.."
            f"{r.last_id} {timeframes.iso(r.first_ts)} .. {timeframes.iso(r.last_ts)} "
            f"({'; '.join(notes)})")


def _imported(r: ImportResult) -> str:
    from tradeflow import timeframes

    notes = [r.layout, f"checksum {r.checksum}"]
    if r.timeframe_from == "data":
        notes.append("timeframe read from the data")
    if r.absent:
        notes.append(f"NULL: {', '.join(r.absent)}")
    if r.quarantined:
        notes.append("quarantined " + ", ".join(f"{k} {n}" for k, n in r.quarantined.items()))
    return (f"imported {r.path.name}: {r.rows} candles {r.symbol} {r.timeframe} "
            f"{timeframes.iso(r.first)} .. {timeframes.iso(r.last)} ({'; '.join(notes)})")


def _progress(total: int, show: bool):  # noqa: ANN202 - rich types stay local
    if not show:
        return None, None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    progress = Progress(TextColumn("importing"), BarColumn(), MofNCompleteColumn(),
                        console=Console(stderr=True), transient=True)
    task = progress.add_task("files", total=total)
    progress.start()
    return progress, task
