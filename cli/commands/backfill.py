"""Download candle history from the exchange into the market store, resumably.

For every symbol and timeframe of the profile (or --symbols/--timeframes), fetch what the
store lacks: older history back to the window start, newer candles up to the last closed one,
and interior gaps. Ranges the exchange answers empty twice, and candles it sends without
prices, are recorded as unfillable and not asked again (--recheck-unfillable asks again for
those inside the window). A second run right after a complete one fetches at most one page
per series.

Window (one of): --days N, --since DATE, --timerange START-END (Freqtrade style, open ends
allowed: 20240101-20240301, 20240101-, -20240301). Default: backfill.days of the profile.
With backfill.task_runner: dask (config/scale.yaml) each series runs as its own job on the
Dask cluster at backfill.dask_address, or on a temporary local cluster of
backfill.dask_workers processes, at most backfill.concurrency at once.

Exit code 0 when every series succeeded, 1 when any failed (the summary says which).
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--symbols", nargs="+", metavar="SYM", help="e.g. BTC/USDT ETH/USDT")
    parser.add_argument("--timeframes", nargs="+", metavar="TF", help="e.g. 1m 5m 1h")
    window = parser.add_mutually_exclusive_group()
    window.add_argument("--days", type=float, help="how many days back from now")
    window.add_argument("--since", help="start date: YYYY-MM-DD[THH:MM] or YYYYMMDD")
    window.add_argument("--timerange", help="START-END as YYYYMMDD or unix seconds")
    parser.add_argument("--concurrency", type=int, help="series fetched at once")
    parser.add_argument("--recheck-unfillable", action="store_true",
                        help="forget the gaps recorded as unfillable inside the window and "
                             "ask the exchange for them again")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    import asyncio

    from cli.profile import settings_from
    from tradeflow.market.backfill_plan import BackfillRequest, check_request
    from tradeflow.market.backfill_run import run_backfill

    overrides: dict[str, object] = {}
    if args.symbols:
        overrides["symbols"] = args.symbols
    if args.timeframes:
        overrides["timeframes"] = args.timeframes
    if args.concurrency is not None:
        overrides["backfill"] = {"concurrency": args.concurrency}
    request = BackfillRequest(days=args.days, since=args.since, timerange=args.timerange,
                              recheck_unfillable=args.recheck_unfillable)
    check_request(request)
    settings = settings_from(args, check_exchange=True, overrides=overrides)
    if settings.backfill.task_runner == "dask":
        from tradeflow.market.backfill_run import run_backfill_on_dask

        outcome = run_backfill_on_dask(settings, request)
    else:
        outcome = asyncio.run(run_backfill(settings, request,
                                           show_progress=not args.no_progress))
    outcome.print_summary()
    return 0 if not outcome.failed else 1
