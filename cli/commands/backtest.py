"""Backtest a strategy's model over the stored candles: a metrics table and an HTML/PNG report.

The strategy's symbols on its timeframe come from the profile's market store, quarantined
candles left out, in the window (one of): --timerange START-END (Freqtrade style, open ends
allowed: 20240101-20240301, 20240101-, -20240301), --since DATE, --days N; default:
everything stored. Candles just before the window warm the features up; where they are
missing, the first warm-up candles have no probability and do not trade.

--model picks the probabilities: the registered champion of tradeflow-<strategy> (default), a
registered version number, or a naive baseline that needs no registered model: momentum
(p from the return over the label horizon) or flat (never trades). Signal, sizing, exits,
risk caps, fees and slippage are the strategy's; several symbols share one cash balance.

Prints the candle range, symbols, model and metrics, and writes equity, drawdown and trades
over price (equity.png, report.html) to <data_dir>/reports/<strategy>-<model>-<UTC time>/.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from models.job import Job
    from models.research import ModelChoice
    from tradeflow.market.backfill import Window


def add_strategy_arguments(parser: argparse.ArgumentParser) -> None:
    """--strategy, --model and the window flags (shared with check-lookahead)."""
    parser.add_argument("--strategy", required=True, metavar="PATH",
                        help="strategy file, e.g. config/strategies/momentum_xgb.yaml")
    parser.add_argument("--model", default="champion", metavar="WHICH",
                        help="champion (default), a version number, momentum or flat")
    window = parser.add_mutually_exclusive_group()
    window.add_argument("--days", type=float, help="the last N days up to now")
    window.add_argument("--since", help="start date: YYYY-MM-DD[THH:MM] or YYYYMMDD")
    window.add_argument("--timerange", help="START-END as YYYYMMDD or unix seconds")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_strategy_arguments(parser)


def window_of(args: argparse.Namespace, now_ms: int) -> tuple[Window | None, str]:
    """The window the flags name (None: everything stored) and the same flags as text."""
    from tradeflow.market.backfill import parse_window

    if args.days is None and args.since is None and args.timerange is None:
        return None, ""
    window = parse_window(days=args.days, since=args.since, timerange=args.timerange,
                          now_ms=now_ms)
    given = (("days", None if args.days is None else f"{args.days:g}"), ("since", args.since),
             ("timerange", args.timerange))
    flag = next(f"--{name} {value}" for name, value in given if value is not None)
    return window, flag


def open_research(args: argparse.Namespace, now_ms: int
                  ) -> tuple[Job, ModelChoice, Window | None, str]:
    """The run's job, the --model choice and the window (and its flags as text); MLflow
    tracking only when the model comes from the registry (a baseline needs none)."""
    from cli.profile import settings_from
    from models.job import open_job
    from models.research import parse_model_choice
    from models.signal_sources import needs_model
    from tradeflow.strategy import load_strategy

    settings = settings_from(args)
    choice = parse_model_choice(args.model)
    strategy = load_strategy(args.strategy)
    # The registry only when a model is read: a baseline or a technical-only signal strategy
    # needs none.
    registry = choice.kind != "baseline" and (not strategy.sources or needs_model(strategy))
    job = open_job(settings, args.strategy, now_ms=now_ms, tracking=registry)
    window, flags = window_of(args, now_ms)
    return job, choice, window, flags


def run(args: argparse.Namespace) -> int:
    import time

    from models.research import report_dir, run_strategy_backtest
    from tradeflow.backtest.report import format_metrics, format_trades, write_report

    now_ms = int(time.time() * 1000)
    job, choice, window, flags = open_research(args, now_ms)
    settings, strategy = job.settings, job.strategy
    done = run_strategy_backtest(job.store, settings, strategy, choice, window,
                                 backfill_hint=flags)
    counts = done.data.counts()
    print(f"backtest {strategy.name}: {done.data.describe()}")
    print("symbols: " + ", ".join(f"{s} ({n:,} candles)" for s, n in counts.items()))
    print(f"model: {done.model.label}")
    cold = {s: n for s, n in done.cold().items() if n}
    if cold:
        print("warm-up (no probability, no trade): "
              + ", ".join(f"{s} {n:,} candles" for s, n in cold.items()))
    print(format_metrics(done.result.metrics))
    print(format_trades(done.result.trades))
    paths = write_report(done.result, report_dir(settings.data_dir, strategy, done.model, now_ms),
                         title=done.title())
    print(f"report: {paths.html}")
    print(f"chart:  {paths.png}")
    return 0
