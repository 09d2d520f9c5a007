"""Import Binance Vision kline dumps (.zip or .csv, monthly or daily) into the market store.

Symbol and timeframe come from the file name (BTCUSDT-1m-2024-01.zip) unless given. A
.CHECKSUM file next to a dump is verified. Each file is checked whole and written in one
transaction: a corrupt file is reported with its line number and nothing of it is stored.
Exit code 1 when any file failed.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help=".zip or .csv kline dumps")
    parser.add_argument("--symbol", help="unified symbol, e.g. BTC/USDT (default: from name)")
    parser.add_argument("--timeframe", help="e.g. 1m (default: from name)")
    parser.add_argument("--exchange", default="binance", help="exchange id to file under")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cli.profile import settings_from
    from tradeflow import timeframes
    from tradeflow.market.importer import ImportFileError, import_file
    from tradeflow.market.store import MarketStore

    settings = settings_from(args)
    store = MarketStore(settings.store_path, lock_retries=settings.store.lock_retries)
    failed = 0
    for raw in args.paths:
        try:
            res = import_file(store, Path(raw), exchange=args.exchange, symbol=args.symbol,
                              timeframe=args.timeframe)
        except ImportFileError as exc:
            failed += 1
            print(f"FAILED {exc}")
            continue
        bad = f", {res.quarantined} quarantined" if res.quarantined else ""
        print(f"imported {res.path.name}: {res.rows} candles {res.symbol} {res.timeframe} "
              f"{timeframes.iso(res.first)} .. {timeframes.iso(res.last)} "
              f"(checksum {res.checksum}{bad})")
    print(f"{len(args.paths) - failed} of {len(args.paths)} files imported into "
          f"{settings.store_path}")
    return 1 if failed else 0
