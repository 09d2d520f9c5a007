"""Run the exchange simulator: a Binance-compatible REST and websocket server on loopback.

ccxt's own binance classes talk to it unchanged, so tests, benchmarks and the demo use ccxt's
real request, parsing and error paths offline. Defaults come from the 'simulator' section of
the profile; flags override them. Serves until Ctrl-C.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from simulator import cli

    cli.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from cli.profile import settings_from
    from simulator import cli

    return cli.run(args, settings_from(args).simulator)
