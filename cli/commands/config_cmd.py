"""Print the resolved configuration as YAML: the profile, then environment overrides applied.

Secrets are shown as '**********'. Exit code 2 and one line when the configuration is invalid.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check-exchange", action="store_true",
                        help="also check exchange id and timeframes against ccxt")


def run(args: argparse.Namespace) -> int:
    import yaml

    from cli.profile import settings_from

    settings = settings_from(args, check_exchange=args.check_exchange)
    print(yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False), end="")
    return 0
