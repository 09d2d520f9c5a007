"""Stop what `tradeflow up` (or `tradeflow demo --keep`) started.

Cancels the trader's flow run (it books its last candle and publishes its summary), then
stops the worker, the MLflow UI, the Prefect server, the simulator, Prometheus and the
Pushgateway. Data stays.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--services", metavar="DIR",
                        help="services directory (default: <data_dir>/services; the demo's "
                             "is data/demo/services)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cli.profile import settings_from
    from cli.stack import down

    settings = settings_from(args)
    stopped = down(settings, Path(args.services) if args.services else None)
    print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    return 0
