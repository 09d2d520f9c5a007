"""Start the everyday setup in the background and keep it running.

The exchange simulator (when the profile's exchange is the local simulator), a Prefect
server, a worker of the tradeflow-local process pool with every deployment of prefect.yaml
(daily retrain at 02:00 UTC, backfill every 15 minutes), the MLflow UI and the paper trader
deployment. With no champion yet, one daily retrain runs first. --monitoring also starts
Prometheus (scraping the trader, the recorder and the Pushgateway, with the alert rules) and
the Pushgateway, where the worker's flow runs push their metrics. Idempotent: what already
runs is left alone. Logs and pids are under <data_dir>/services; `tradeflow down` stops it.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--monitoring", action="store_true",
                        help="also start Prometheus and the Pushgateway (Debian packages "
                             "prometheus, prometheus-pushgateway)")


def run(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from cli.profile import settings_from
    from cli.stack import up
    from tradeflow.config import DEFAULT_CONFIG, ENV_CONFIG_PATH

    settings = settings_from(args, check_exchange=True)
    profile = Path(args.config or os.environ.get(ENV_CONFIG_PATH) or DEFAULT_CONFIG)
    urls = up(settings, profile, monitoring=args.monitoring)
    print("\ntradeflow is up:")
    for label, url in urls.items():
        print(f"  {label:<22} {url}")
    print("\n`tradeflow status` shows services, positions and streams; `tradeflow down` stops.")
    return 0
