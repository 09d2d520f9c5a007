"""Train a strategy's model on its rolling window, log it to MLflow and register a new version.

The window is training.window_days of candles ending promotion.evaluation_days before --end
(default: now): the most recent days stay out of training, so promotion can score every model
on data none of them has seen. The model and each baseline are scored by walk-forward
cross-validation with purging and an embargo, and their out-of-sample probabilities are
backtested with the strategy's signal, sizing, exits, fees and slippage. Prints model vs
baselines (AUC, log loss, Sharpe with its bootstrap interval, total return, max drawdown,
trades), the MLflow run id and the registered version. Candles come from the market store
(run `tradeflow backfill` and `tradeflow validate` first); candles validation quarantined or
excluded (synthetic forward-filled candles, by default) are left out, and the counts per rule
are printed and logged with the run.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--strategy", required=True, metavar="PATH",
                        help="strategy file, e.g. config/strategies/momentum_xgb.yaml")
    parser.add_argument("--end", help="window end: ISO date/time or unix ms (default: now)")
    parser.add_argument("--window-days", type=float, help="override training.window_days")


def run(args: argparse.Namespace) -> int:
    from cli.profile import settings_from
    from models.job import open_job
    from models.tracking import run_training

    job = open_job(settings_from(args), args.strategy, end=args.end)
    strategy = job.strategy
    result = run_training(job, args.window_days)
    tags = result.window.tags()
    print(f"{strategy.model_name}: trained on {tags['train_start']} .. {tags['train_end']} UTC, "
          f"{result.labelled:,} labelled samples, {strategy.training.folds} walk-forward folds")
    aside = result.set_aside
    print("left out by validation: " + ("; ".join(aside.lines()) or "none"))
    if aside.unjudged:
        print(f"warning: {aside.unjudged:,} candles of the window were never validated; run "
              "`tradeflow validate` so its policies (synthetic fills, ...) apply")
    print("out of sample, after fees and slippage:\n")
    print(result.table())
    print(f"\nMLflow run: {result.run_id}")
    print(f"registered: {strategy.model_name} version {result.version}")
    return 0
