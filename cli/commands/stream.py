"""Stream live market data through the market-data API and print every update.

One stream per exchange (--exchange binance or a comma list; the profile's exchange section
sets the URL, keys and retries of each), subscribed to --symbols x --channels (candles, trades,
ticker, book). Prints one line per update and every connection state change, then a summary
per subscription. Runs for --seconds, or until Ctrl-C. See docs/market-data.md.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

CHANNELS = ("candles", "trades", "ticker", "book")


def _comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--exchange", default=None, metavar="ID[,ID]",
                        help="exchange id(s), comma separated (default: the profile's)")
    parser.add_argument("--symbols", nargs="+", metavar="SYM",
                        help="e.g. BTC/USDT ETH/USDT (default: the profile's symbols)")
    parser.add_argument("--channels", default="ticker,trades", metavar="CH[,CH]",
                        help=f"comma separated, of: {', '.join(CHANNELS)} (default: ticker,trades)")
    parser.add_argument("--timeframe", default="1m", help="candle timeframe (default: 1m)")
    parser.add_argument("--seconds", type=float, help="stop after N seconds (default: never)")
    parser.add_argument("--heartbeat", type=float, default=30.0, metavar="S",
                        help="a subscription silent this long is stale and reconnects")
    parser.add_argument("--quiet", action="store_true", help="no line per update")


def describe(update: Any) -> str:
    """One line for an update."""
    data = update.data
    if update.channel == "trades":
        last = data.iloc[-1]
        body = f"{len(data)} trade(s), last {last['price']:g} x {last['amount']:g} {last['side']}"
    elif update.channel == "ticker":
        body = f"last {data.last:g} bid {data.bid} ask {data.ask}"
    elif update.channel == "book":
        bid = f"{data.bids[0][0]:g} x {data.bids[0][1]:g}" if data.bids else "-"
        ask = f"{data.asks[0][0]:g} x {data.asks[0][1]:g}" if data.asks else "-"
        body = f"bid {bid} ask {ask}"
    else:
        c = data[-1]
        stamp = time.strftime("%H:%M", time.gmtime(c.open_time / 1000))
        body = f"{len(data)} candle(s), {stamp} o {c.open:g} h {c.high:g} l {c.low:g} " \
               f"c {c.close:g} v {c.volume:g}"
    when = time.strftime("%H:%M:%S", time.localtime(update.received))
    rest = " (REST catch-up)" if update.catch_up else ""
    return f"{when} {update.exchange} {update.symbol} {update.channel}: {body}{rest}"


def run(args: argparse.Namespace) -> int:
    import asyncio

    from cli.profile import settings_from
    from tradeflow.errors import UsageError, UserError
    from tradeflow.exchange.types import ExchangeError

    if args.seconds is not None and args.seconds <= 0:
        raise UsageError(f"--seconds {args.seconds}: must be a positive number")
    if args.heartbeat <= 0:
        raise UsageError(f"--heartbeat {args.heartbeat}: must be a positive number")
    channels = _comma_list(args.channels)
    bad = [c for c in channels if c not in CHANNELS]
    if bad or not channels:
        raise UsageError(f"--channels {args.channels}: allowed: {', '.join(CHANNELS)}")
    settings = settings_from(args, check_exchange=True)
    exchanges = _comma_list(args.exchange) if args.exchange else [settings.exchange.id]
    from tradeflow.exchange.ccxt_client import exchange_ids

    known = set(exchange_ids())
    unknown = [e for e in exchanges if e not in known]
    if unknown:
        raise UsageError(f"--exchange {','.join(unknown)}: not a ccxt exchange id "
                         "(e.g. binance, kraken)")
    symbols = list(args.symbols or settings.symbols)
    try:
        lines = asyncio.run(_stream(settings, exchanges, symbols, channels, args))
    except ExchangeError as exc:
        raise UserError(f"{type(exc).__name__}: {exc}") from None
    for line in lines:
        print(line)
    return 0


async def _stream(settings: Any, exchanges: list[str], symbols: list[str],
                  channels: list[str], args: argparse.Namespace) -> list[str]:
    import asyncio
    import logging

    from tradeflow.marketdata import MarketDataManager

    # state changes are printed below; the library's log lines would repeat them
    logging.getLogger("tradeflow.marketdata.streams").setLevel(logging.WARNING)
    manager = MarketDataManager(timeframe=args.timeframe, heartbeat_s=args.heartbeat)
    for exchange in exchanges:
        await manager.add(exchange, settings.exchange.model_copy(update={"id": exchange}))
    if not args.quiet:
        manager.add_callback(lambda u: print(describe(u), flush=True))
    manager.on_state_change(lambda t: print(f"{t.exchange}: {t.old} -> {t.new} ({t.reason})",
                                            flush=True))
    await manager.subscribe(symbols, channels)
    async with manager:
        await asyncio.sleep(args.seconds if args.seconds is not None else float("inf"))
    lines = []
    for name, stream in manager.streams.items():
        for s in stream.status():
            lines.append(f"{name} {s.symbol} {s.channel}: {s.messages} messages, "
                         f"{s.reconnects} reconnects, {s.catch_ups} REST catch-ups")
        if stream.callback_errors:
            lines.append(f"{name}: {stream.callback_errors} callback errors")
    return lines
