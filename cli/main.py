"""The ``tradeflow`` command line: one entry point, one subcommand per job.

Subcommand modules keep heavy imports (ccxt, prefect, mlflow) inside their ``run`` so that
``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from tradeflow import __version__

# (name, module, one-line help); each module defines add_arguments(parser) and run(args).
COMMANDS: list[tuple[str, str, str]] = [
    ("demo", "cli.commands.demo", "run the whole platform once on a simulated market"),
    ("sim", "cli.commands.sim", "run the Binance-compatible exchange simulator"),
    ("backfill", "cli.commands.backfill", "download candle history into the market store"),
    ("record", "cli.commands.record",
     "record order flow (trades, book snapshots, tickers) into the market store"),
    ("stream", "cli.commands.stream",
     "print live market data (candles, trades, ticker, book) of one or more exchanges"),
    ("import", "cli.commands.import_cmd",
     "import candle files: Binance Vision dumps, freqtrade data, any CSV/Parquet"),
    ("config", "cli.commands.config_cmd", "print the resolved configuration (secrets hidden)"),
    ("store", "cli.commands.store_cmd",
     "maintain the market store: compact DuckLake's small files"),
    ("validate", "cli.commands.validate",
     "judge stored candles: rules and their policies, gaps, GX suite and Data Docs"),
    ("train", "cli.commands.train",
     "train a strategy's models on the rolling window, log to MLflow"),
    ("promote", "cli.commands.promote",
     "compare the newest model with the champion; promote if it wins"),
    ("models", "cli.commands.models_cmd", "list registered model versions, aliases and scores"),
    ("backtest", "cli.commands.backtest",
     "backtest a strategy's model over stored candles; metrics and a report"),
    ("check-lookahead", "cli.commands.check_lookahead",
     "recompute features and signals on truncated histories; fail on look-ahead"),
    ("trade", "cli.commands.trade", "run the trader on paper or live with the champion model"),
    ("status", "cli.commands.status", "show services, positions, PnL, model and stream state"),
    ("up", "cli.commands.up", "start the everyday setup: servers, worker, deployments, trader"),
    ("down", "cli.commands.down", "stop what `up` started"),
    ("logs", "cli.commands.logs", "show or follow a service's log file under data/logs"),
    ("dashboard", "cli.commands.dashboard",
     "render the Grafana dashboard's panels from Prometheus into a PNG"),
]

DESCRIPTION = """\
tradeflow: crypto market data, ML models and a trader, orchestrated by Prefect.

Every command reads the profile config/default.yaml (or --config PATH / $TRADEFLOW_CONFIG);
any key can be overridden with TRADEFLOW_<SECTION>__<KEY> environment variables.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tradeflow",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tradeflow {__version__}")
    parser.add_argument(
        "--config", metavar="PATH", help="YAML profile (default: config/default.yaml)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, module_name, help_text in COMMANDS:
        module = importlib.import_module(module_name)
        doc = (module.__doc__ or help_text).strip()
        p = sub.add_parser(
            name,
            help=help_text,
            description=doc,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.verbose:
        # Libraries that log every HTTP request or migration at INFO drown our own lines.
        for noisy in ("httpx", "httpcore", "urllib3", "alembic", "mlflow", "asyncio",
                      "great_expectations"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    from tradeflow.config_files import ConfigError
    from tradeflow.errors import UserError
    from tradeflow.monitoring.logs import detach_file_log

    try:
        return int(args._module.run(args) or 0)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except UserError as exc:
        print(f"tradeflow {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"tradeflow {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output piped into `head` and the like: the reader left; nothing to report.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # a data dir that is a file, a full or read-only device, ...
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"tradeflow {args.command}: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    finally:
        detach_file_log()  # the command's data/logs file (tests run many in one process)


if __name__ == "__main__":
    raise SystemExit(main())
