"""Recompute a strategy's features and signal on truncated histories; fail on look-ahead.

In the spirit of Freqtrade's lookahead-analysis. For every symbol of the strategy, the model's
features, its probability and the strategy's target position are computed once on the whole
history of the window (stored candles, quarantine left out; --timerange / --since / --days as
for `tradeflow backtest`, default everything stored) and again on histories cut off right
after each of --samples rows; a causal pipeline gives the same values. The decisions and the
backtest's equity are also compared on --samples prefixes (fills, costs and exits included).

--model as for `tradeflow backtest`: the champion (default), a version, momentum or flat.
Exit code 0 with a summary of what was checked (symbols, sample points, columns) when nothing
differs; 1 when anything does, naming each column, the candle time and both values.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cli.commands.backtest import add_strategy_arguments

    add_strategy_arguments(parser)
    parser.add_argument("--samples", type=int, default=20, metavar="N",
                        help="truncation points per symbol (default 20)")


def run(args: argparse.Namespace) -> int:
    import time

    from cli.commands.backtest import open_research
    from models.research import SIGNAL_COLUMNS, check_strategy, prepare
    from tradeflow.errors import UsageError

    if args.samples < 1:
        raise UsageError(f"--samples {args.samples}: must be at least 1")
    job, choice, window, flags = open_research(args, int(time.time() * 1000))
    strategy = job.strategy
    model, data = prepare(job.store, job.settings, strategy, choice, window,
                          backfill_hint=flags)
    print(f"check-lookahead {strategy.name}: {data.describe()}")
    print(f"model: {model.label}; warm-up {model.warmup:,} candles")
    checks = check_strategy(model, data, strategy, samples=args.samples)
    for check in checks:
        print("\n".join(check.lines()))
    columns = checks[0].columns.columns
    features = [c for c in columns if c not in SIGNAL_COLUMNS]
    points = sum(len(c.columns.checked_rows) for c in checks)
    bad = [c.symbol for c in checks if not c.ok]
    if bad:
        print(f"LOOK-AHEAD found for {', '.join(bad)}: values change when later candles are "
              "removed (see above)")
        return 1
    print(f"no look-ahead: {len(checks)} symbol(s), {points} sample points, "
          f"{len(features)} feature columns ({', '.join(features)}) and signal columns "
          f"{', '.join(SIGNAL_COLUMNS)} identical on truncated histories")
    return 0
