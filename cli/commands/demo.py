"""Run the whole platform once, from an empty data/demo, and say where to look.

Starts the exchange simulator (accelerated: one 1m candle per second, a learnable edge),
a local Prefect server with the repository's deployments and a process worker, then runs
daily-retrain (backfill, validate, train, promote) and the paper trader on the champion for
an hour of simulated market, as Prefect flow runs. Prints the Prefect UI URL, how to open
the MLflow UI, the report files and a ledger summary, then stops everything it started.
Takes 3-4 minutes on 2 cores. Everything lives under data/demo (wiped at the start).
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--candles", type=int, default=60,
                        help="candles (simulated minutes) the paper trader runs (default 60)")
    parser.add_argument("--keep", action="store_true",
                        help="leave the simulator, Prefect server and worker running")


def run(args: argparse.Namespace) -> int:
    from cli.demo_run import print_report, run_demo
    from tradeflow.errors import UsageError

    if args.candles <= 0:
        raise UsageError(f"--candles {args.candles}: must be a positive number")
    report = run_demo(trade_candles=args.candles, keep=args.keep)
    print_report(report)
    if args.keep:
        print("\nservices kept running; stop them with: tradeflow down --services data/demo")
    return 0
