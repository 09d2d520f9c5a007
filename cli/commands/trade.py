"""Run the trader: stream closed candles, serve the champion model, trade on paper or live.

It loads models:/tradeflow-<strategy>@champion from the MLflow registry and swaps to a newly
promoted version between candles. A strategy with `sources:` (docs/strategies.md) runs its
signal sources instead, the backtester's code, and needs the registry only for an `ml`
source. Decisions, orders, fills, positions and equity go to the ledger of the mode's book:
paper and live never share one (SQLite data/ledger.db and data/ledger-live.db by default;
PostgreSQL via ledger.url and ledger.live_url). Restarting resumes from the last processed
candle of the same book; no order is ever placed twice.

Paper mode fills at the next candle's open with the strategy's fees and slippage, exactly as
the backtester does. Live mode sends market orders to the exchange and needs --mode live,
TRADEFLOW_LIVE_CONFIRM=yes and API keys in TRADEFLOW_EXCHANGE__API_KEY / __API_SECRET, which
a signed balance request checks before anything else starts (exit 2 when rejected).

Runs until Ctrl-C (or --max-candles). Prometheus metrics on trader.metrics_port (default
9108); `tradeflow status` shows positions, PnL and stream state.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", choices=("paper", "live"),
                        help="paper (default: trader.mode of the profile) or live")
    parser.add_argument("--strategy", help="strategy YAML (default: trader.strategy)")
    parser.add_argument("--max-candles", type=int, help="stop after N candle timestamps")
    parser.add_argument("--metrics-port", type=int, help="Prometheus port; 0 = off")
    parser.add_argument("--resume-halted", action="store_true",
                        help="leave a kill-switch HALT (operator decision; equity = new peak)")


def run(args: argparse.Namespace) -> int:
    import asyncio

    from cli.profile import settings_from
    from tradeflow.errors import UsageError
    from trader.app import check_live, check_metrics_port, run_trader

    if args.max_candles is not None and args.max_candles <= 0:
        raise UsageError(f"--max-candles {args.max_candles}: must be a positive number")
    check_metrics_port(args.metrics_port)
    settings = settings_from(args, check_exchange=True)
    mode = args.mode or settings.trader.mode
    check_live(mode, settings)  # refuse before loading anything
    strategy = args.strategy or settings.trader.strategy
    summary = asyncio.run(run_trader(settings, strategy, mode=mode,
                                     max_candles=args.max_candles,
                                     metrics_port=args.metrics_port,
                                     resume_halted=args.resume_halted))
    print(summary.markdown())
    return 0
