"""Maintain the market store: ``tradeflow store compact``.

On DuckLake (``store.engine: ducklake``, the scale profile) every write adds Parquet files and
a replace adds delete files; ``compact`` merges small files, folds deletes into rewritten
files, expires snapshots older than --keep-hours and deletes the files no snapshot needs any
more, so gap scans and coverage queries read a few large files. Writers and readers keep
running meanwhile. The daily retrain flow runs it after validation. A DuckDB file store has
nothing to compact: the command says so in one line (exit 2).
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    action = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    compact = action.add_parser("compact", help="merge small files, expire old snapshots")
    compact.add_argument("--keep-hours", type=float, default=1.0, metavar="H",
                         help="keep snapshots (time travel, open readers) this young "
                              "(default 1)")


def run(args: argparse.Namespace) -> int:
    from cli.profile import settings_from
    from tradeflow.errors import UsageError
    from tradeflow.market.store import open_store

    if args.keep_hours < 0:
        raise UsageError(f"--keep-hours {args.keep_hours:g}: must be 0 or more")
    store = open_store(settings_from(args))
    counts = store.compact(keep_hours=args.keep_hours)
    print(f"compacted {store.location}: {counts['files_before']} data files before, "
          f"{counts['files_after']} after")
    return 0
