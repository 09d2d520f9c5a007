"""Compare the newest model version with the champion; promote it only if it wins.

Both are scored on the same most recent promotion.evaluation_days before --end (default: now)
by backtesting their probabilities with the strategy's signal, sizing, exits, fees and
slippage. The challenger becomes champion when it passes the thresholds (min_trades,
max_drawdown_pct) and beats the champion on promotion.metric by at least min_improvement; a
first model needs only the thresholds. Prints the decision, both scores and the reason, which
are also stored as promotion.* tags on the version. Exit code 0 whatever the decision; 1 when
there is no model or the newest version's signature does not take raw candles.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--strategy", required=True, metavar="PATH",
                        help="strategy file, e.g. config/strategies/momentum_xgb.yaml")
    parser.add_argument("--end", help="evaluation window end: ISO date/time or unix ms")


def run(args: argparse.Namespace) -> int:
    import time

    from cli.profile import settings_from
    from models.promotion import run_promotion
    from models.registry import configure_tracking
    from models.training import resolve_end
    from tradeflow.market.store import open_store
    from tradeflow.strategy import load_strategy

    settings = settings_from(args)
    strategy = load_strategy(args.strategy)
    end_ms = resolve_end(args.end, strategy.timeframe, int(time.time() * 1000))
    configure_tracking(settings)
    decision = run_promotion(open_store(settings), settings.exchange.id, strategy, end_ms)
    print(decision.text())
    return 0
