"""Record order flow into the market store: trades, order-book snapshots and tickers.

For every symbol of the profile (recorder.symbols, or --symbols) it streams trades (Binance
aggregated trades by default), keeps ccxt.pro's local order book and reads the 24h ticker,
writing every recorder.flush_s seconds. Book snapshots of the top recorder.book_depth levels are
kept every recorder.book_interval_s seconds of exchange time and at every recorder.close_timeframe
candle close. Stored trade ids never have a hole or a repeat: trades a dropped connection missed
(or a restart after a crash) are fetched over REST by id first. A book sequence gap rebuilds the
book from a new snapshot (a resync).

Runs until Ctrl-C / SIGTERM (or --seconds). Prints one status line per stream every
recorder.status_s seconds; the same status is in data/recorder/status.json (`tradeflow status`)
and on Prometheus (recorder.metrics_port, default 9109). Retention per table:
store.retention.*. History: `tradeflow backfill --trades`.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--symbols", nargs="+", metavar="SYM", help="e.g. BTC/USDT ETH/USDT")
    parser.add_argument("--seconds", type=float, help="stop after N seconds (default: never)")
    parser.add_argument("--metrics-port", type=int, help="Prometheus port; 0 = off")
    parser.add_argument("--quiet", action="store_true", help="no status lines while running")


def run(args: argparse.Namespace) -> int:
    import asyncio

    from cli.profile import settings_from
    from tradeflow.errors import UsageError, UserError
    from tradeflow.exchange.types import ExchangeError
    from tradeflow.recorder.recorder import record
    from tradeflow.recorder.status import RecorderStatus, render

    if args.seconds is not None and args.seconds <= 0:
        raise UsageError(f"--seconds {args.seconds}: must be a positive number")
    overrides = {"recorder": {"symbols": args.symbols}} if args.symbols else None
    settings = settings_from(args, check_exchange=True, overrides=overrides)

    def say(status: RecorderStatus) -> None:
        for line in render(status.snapshot())[1:]:
            print(line, flush=True)

    try:
        summary = asyncio.run(record(settings, seconds=args.seconds,
                                     metrics_port=args.metrics_port,
                                     say=None if args.quiet else say))
    except ExchangeError as exc:
        raise UserError(f"{type(exc).__name__}: {exc}") from None
    print(summary.line())
    return 0
