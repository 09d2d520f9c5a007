"""Check stored candles: pandera hard rules, the Great Expectations suite, and quarantine.

For every symbol and timeframe of the profile (or --symbols/--timeframes), the last
validation.window_days days (or --days) of candles are checked. Hard rules (positive prices,
high/low around the body, volume >= 0 and present, open times on the grid, unique and
increasing) send failing candles to the quarantine table, which training reads around;
nothing is repaired. Soft rules (extreme returns, volume spikes, runs of flat zero-volume
candles, a stale last candle) are warnings. Prints pass/fail counts per series and rule and
the paths of a summary page (plain HTML, works offline) and of the Data Docs (under
<data_dir>/gx).

Exit code 0 when the share of candles breaking hard rules is within
validation.max_hard_failure_share, 1 when it is exceeded.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--symbols", nargs="+", metavar="SYM", help="e.g. BTC/USDT ETH/USDT")
    parser.add_argument("--timeframes", nargs="+", metavar="TF", help="e.g. 1m 5m 1h")
    parser.add_argument("--days", type=float,
                        help="window in days (default: validation.window_days)")


def run(args: argparse.Namespace) -> int:
    from cli.profile import settings_from
    from tradeflow.errors import UsageError
    from tradeflow.validation.run import run_validation

    if args.days is not None and args.days <= 0:
        raise UsageError(f"--days {args.days}: must be a positive number of days")
    overrides: dict[str, object] = {}
    if args.symbols:
        overrides["symbols"] = args.symbols
    if args.timeframes:
        overrides["timeframes"] = args.timeframes
    settings = settings_from(args, overrides=overrides)
    report = run_validation(settings, window_days=args.days)
    print(report.text())
    return 1 if report.exceeded else 0
