"""Command line of the simulator: ``tradeflow sim`` and ``python -m simulator``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from simulator.settings import FaultSettings, SimulatorSettings

DESCRIPTION = """\
Serve a simulated Binance spot exchange (and, with --venue okx, OKX's v5 API over the same
market) on loopback: the REST API under /api/v3 (klines and
uiKlines from 1s to 1M, exchangeInfo with its filters, tickers over 24h or any window, avgPrice,
the order book, trades, historicalTrades, aggTrades, signed orders and account) and market
streams on /ws and /stream (klines, trade, aggTrade, ticker, miniTicker, bookTicker, avgPrice,
depth diffs and partial books), speaking exactly what ccxt's binance classes expect. Every
USDT-quoted symbol also has a USDⓈ-M perpetual under /fapi/v1 (exchangeInfo, klines, time,
ping: what ccxt needs to load linear markets and fetch their candles; ccxt's BTC/USDT:USDT)
whose candles are the spot market's.

The market is seeded and deterministic: a random walk with volatility clustering (--signal
plants a learnable short-term mean reversion; 0 = pure random walk) traded on a tape of trades
whose aggregates are the candles, against an order book with a one- or two-tick spread whose
diffs carry Binance's update ids. Markets can be made illiquid (settings: markets.<SYMBOL>.
liquidity, quiet_hours). Point a client at it by replacing https://api.binance.com with the
printed base URL and wss://stream.binance.com:9443 with its ws:// form. Faults (429/418, 5xx,
stalls, truncated bodies, dropped, duplicated or shuffled websocket messages, skipped depth
diffs, outages) are set with --fault or at runtime through POST /admin/faults.
"""

EPILOG = """\
admin endpoints (not Binance's):
  GET/POST/DELETE /admin/faults   read, change (JSON with FaultSettings fields), restore
  POST /admin/reset               zero the fault counters
  POST /admin/outage              {"start": ms, "end": ms}: a window without candles
  GET/POST /admin/clock           simulated now and speed; {"advance_ms": n} or {"speed": x}
  GET /admin/stats                requests, handler seconds, klines served, ws messages

fault names for --fault NAME=VALUE ("every N" faults share one counter of /api requests):
""" + "\n".join(
    f"  {name:22} {field.description or ''}" for name, field in FaultSettings.model_fields.items()
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the simulator's flags; each one overrides the corresponding setting."""
    parser.description = DESCRIPTION
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--host", help="interface to bind (default from settings: 127.0.0.1)")
    parser.add_argument("--port", type=int, help="TCP port; 0 picks a free one (default 8765)")
    parser.add_argument("--seed", type=int, help="market seed; same seed, same candles")
    parser.add_argument(
        "--days", type=float, help="days of 1m history before the start time (default 30)"
    )
    parser.add_argument(
        "--speed",
        type=float,
        help="simulated seconds per wall second; 60 closes a 1m candle every second",
    )
    parser.add_argument(
        "--signal",
        type=float,
        help="planted predictability: 0 = pure random walk, 1 = clearly learnable",
    )
    parser.add_argument(
        "--venue",
        metavar="NAME[,NAME]",
        help="exchange API(s) to speak over the one market: binance (default), okx, or "
        "binance,okx (the same prices on both)",
    )
    parser.add_argument("--symbols", help="comma-separated BASE/QUOTE list, e.g. BTC/USDT,ETH/USDT")
    parser.add_argument(
        "--start",
        help="simulated start: epoch ms or ISO-8601 UTC time (default: now, minute-aligned)",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a fault, repeatable, e.g. --fault rate_limit_every=10 (names below)",
    )


def _start_ms(text: str) -> int:
    if text.isdigit():
        return int(text)
    stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return int(stamp.timestamp() * 1000)


def _fault_value(text: str) -> Any:
    # numbers and JSON lists parse as JSON; anything else (e.g. truncate_mode=connection) is text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def settings_from_args(args: argparse.Namespace, settings: SimulatorSettings) -> SimulatorSettings:
    """``settings`` with every flag that was given applied (validated like the config)."""
    fields: dict[str, Any] = settings.model_dump()
    for flag, name in (("host", "host"), ("port", "port"), ("seed", "seed"),
                       ("days", "history_days"), ("speed", "speed"),
                       ("signal", "signal_strength")):  # fmt: skip
        if getattr(args, flag, None) is not None:
            fields[name] = getattr(args, flag)
    if getattr(args, "symbols", None):
        fields["symbols"] = tuple(s.strip() for s in args.symbols.split(",") if s.strip())
    if getattr(args, "venue", None):
        fields["venues"] = tuple(v.strip() for v in args.venue.split(",") if v.strip())
    if getattr(args, "start", None):
        fields["start_time_ms"] = _start_ms(args.start)
    for item in getattr(args, "fault", []) or []:
        name, _, value = item.partition("=")
        fields["faults"][name.strip()] = _fault_value(value.strip())
    return SimulatorSettings.model_validate(fields)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


async def serve(settings: SimulatorSettings) -> None:
    """Serve until SIGINT/SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    from simulator.server import SimulatorServer  # aiohttp and the market: only to serve

    async with SimulatorServer(settings) as sim:
        venue, ws_base = sim.venue, sim.base_url.replace("http", "ws")
        if "binance" in settings.venues:
            print(f"simulated Binance spot at {sim.base_url} (REST {sim.base_url}/api/v3)",
                  flush=True)
            print(f"websocket streams at {sim.ws_url} and {ws_base}/stream")
        if "okx" in settings.venues:
            print(f"simulated OKX spot at {sim.base_url} (REST {sim.base_url}/api/v5)", flush=True)
            print(f"OKX websocket at {ws_base}/ws/v5/public and {ws_base}/ws/v5/business "
                  "(point ccxt's okx at the base URL)", flush=True)
        if venue.perpetuals and "binance" in settings.venues:
            perps = ", ".join(f"{s.symbol}:{s.quote}" for s in venue.perpetuals.values())
            print(f"USDⓈ-M perpetuals {perps} at {sim.base_url}/fapi/v1 (klines on the spot "
                  "price path)", flush=True)
        print(
            f"symbols {', '.join(settings.symbols)}; seed {settings.seed}; "
            f"speed {settings.speed}x; signal {settings.signal_strength}; "
            f"history from {_iso(venue.history_start_ms)} to {_iso(venue.clock.start_ms)}",
            flush=True,
        )
        print("press Ctrl-C to stop", flush=True)
        await stop.wait()


def run(args: argparse.Namespace, settings: SimulatorSettings) -> int:
    """Run the simulator with ``settings`` overridden by ``args``; 0 on a clean stop."""
    try:
        effective = settings_from_args(args, settings)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            model = FaultSettings if err["loc"][0] == "faults" else SimulatorSettings
            msg = f"unknown key; allowed: {', '.join(sorted(model.model_fields))}"
        print(f"invalid simulator settings: {key} = {err.get('input')!r}: {msg}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"invalid simulator settings: {exc}", file=sys.stderr)
        return 2
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(effective))
    except OSError as exc:  # the port is taken, the host is not an address of this machine
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        print(f"cannot serve on {effective.host}:{effective.port}: {reason} (pick another "
              "with --port; 0 = any free port)", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m simulator``: the same flags, over the default settings."""
    parser = argparse.ArgumentParser(prog="python -m simulator")
    add_arguments(parser)
    return run(parser.parse_args(argv), SimulatorSettings())
