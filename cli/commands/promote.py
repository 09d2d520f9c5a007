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
    from cli.profile import settings_from
    from models.job import open_job
    from models.promotion import run_promotion

    job = open_job(settings_from(args), args.strategy, end=args.end)
    decision = run_promotion(job.store, job.exchange, job.strategy, job.end_ms,
                             job.order_flow())
    print(decision.text())
    return 0
