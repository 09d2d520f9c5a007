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

Trades (--trades): the order-flow history of each symbol over REST by id into the store's
trades table (aggregated trades unless recorder.aggregated_trades is false), from --from-id or
the window's start (default: the last day) up to its end or the newest trade; what the store
already holds without a hole is skipped. The recorder (`tradeflow record`) keeps it current.

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
    parser.add_argument("--trades", action="store_true",
                        help="trade history (by id) instead of candles; window default 1 day")
    parser.add_argument("--from-id", type=int, metavar="ID",
                        help="with --trades: start at this trade id instead of a time")


def run(args: argparse.Namespace) -> int:
    import asyncio

    from cli.profile import settings_from
    from tradeflow.errors import UsageError
    from tradeflow.market.backfill_plan import BackfillRequest, check_request
    from tradeflow.market.backfill_run import run_backfill

    if args.from_id is not None and not args.trades:
        raise UsageError("--from-id goes with --trades (a trade id to start at)")
    if args.trades:
        return _trades(args)
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


def _trades(args: argparse.Namespace) -> int:
    import asyncio
    import time

    from cli.profile import settings_from
    from tradeflow.errors import UsageError, UserError
    from tradeflow.exchange.ccxt_client import ExchangeClient
    from tradeflow.exchange.types import ExchangeError
    from tradeflow.market.backfill import parse_window
    from tradeflow.market.orderflow_store import open_orderflow_store
    from tradeflow.recorder.history import backfill_trades

    if args.timeframes:
        raise UsageError("--timeframes is for candles; --trades records every trade")
    if args.from_id is not None and (args.days or args.since or args.timerange):
        raise UsageError("give --from-id or a window (--days, --since, --timerange), not both")
    if args.from_id is not None and args.from_id < 0:
        raise UsageError(f"--from-id {args.from_id}: must be a trade id (>= 0)")
    overrides: dict[str, object] = {"symbols": args.symbols} if args.symbols else {}
    settings = settings_from(args, check_exchange=True, overrides=overrides)
    given = args.days is not None or args.since or args.timerange
    window = parse_window(days=args.days if given else 1.0, since=args.since,
                          timerange=args.timerange, now_ms=int(time.time() * 1000))

    async def main() -> int:
        store = open_orderflow_store(settings)
        failed = 0
        try:
            async with ExchangeClient(settings.exchange) as client:
                markets = await client.load_markets()
                for symbol in settings.symbols:
                    if symbol not in markets:
                        raise UserError(f"{client.id} does not list {symbol}")
                    since = window.start
                    if args.days is not None or not given:  # relative to the exchange's clock
                        now = await client.fetch_time()
                        since = now - int((args.days or 1.0) * 86_400_000)
                    try:
                        done = await backfill_trades(
                            client, store, symbol, since=None if args.from_id is not None
                            else since, until=window.end, from_id=args.from_id,
                            aggregated=settings.recorder.aggregated_trades)
                    except ExchangeError as exc:
                        failed += 1
                        print(f"{symbol}: failed: {exc}")
                        continue
                    print(done.line())
        finally:
            store.close()
        return 1 if failed else 0

    try:
        return asyncio.run(main())
    except ExchangeError as exc:
        raise UserError(f"{type(exc).__name__}: {exc}") from None
