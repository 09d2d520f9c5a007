"""Judge stored candles: pandera hard rules, soft rules with policies, the GX suite, gaps.

For every symbol and timeframe of the profile (or --symbols/--timeframes), judges the candles
no run has judged before (a watermark per series: appended or newly imported history alike),
or every stored candle (--all), or a range of open times (--timerange 20200101-20201231,
open ends allowed), or the last --days. Prints how many candles were judged per series.

Hard rules (positive prices, high/low around the body, volume >= 0 and present, open times
plausible, on the grid, unique and increasing) send failing candles to the quarantine.
Soft rules have a policy each (validation.policies: warn | quarantine | exclude; exclude
keeps a candle in the store but out of training and backtests): extreme returns and wicks,
volume spikes, synthetic fills (zero volume, open = high = low = close = the previous close:
forward-filled, excluded by default; flat candles that traded are counted apart), a series
whose spacing is not its timeframe (quarantined), gaps (counted, longest listed, repairable
or recorded unfillable) and a stale last candle. Nothing is repaired.

Prints the counts per series and rule and the paths of a summary page (plain HTML, works
offline) and of the Data Docs (under <data_dir>/gx). Exit code 0 when the share of judged
candles quarantined is within validation.max_hard_failure_share, 1 when it is exceeded.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--symbols", nargs="+", metavar="SYM",
                        help="e.g. BTC/USDT ETH/USDT BTC/USDT:USDT")
    parser.add_argument("--timeframes", nargs="+", metavar="TF", help="e.g. 1m 5m 1h")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--all", action="store_true", dest="all_candles",
                      help="judge every stored candle (and move the watermark)")
    what.add_argument("--timerange", metavar="START-END",
                      help="open times to judge: YYYYMMDD-YYYYMMDD, START- or -END")
    what.add_argument("--days", type=float, help="judge the last N days before now")


def run(args: argparse.Namespace) -> int:
    from cli.profile import settings_from
    from tradeflow.validation.run import run_validation

    overrides: dict[str, object] = {}
    if args.symbols:
        overrides["symbols"] = args.symbols
    if args.timeframes:
        overrides["timeframes"] = args.timeframes
    settings = settings_from(args, overrides=overrides)
    report = run_validation(settings, window_days=args.days, all_candles=args.all_candles,
                            timerange=args.timerange)
    print(report.text())
    return 1 if report.exceeded else 0
