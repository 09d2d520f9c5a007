"""Benchmark: how fast the exchange simulator serves 30 days of 1m klines.

The simulator runs in its own process (``python -m simulator``), so client and server do not
share a CPU-bound event loop. Printed:

(a) klines/s that one ccxt ``binance`` client receives paginating 1000-candle pages
    sequentially over 30 days of 1m (ccxt's rate limiter off, as a backfill would run it
    against the simulator; the limiter-on figure is printed too);
(b) where that wall time goes: server handler time (from ``GET /admin/stats``), ccxt's own
    work (request building, JSON decoding, ``parse_ohlcv``) and the rest (HTTP transport);
(c) the baseline: a bare aiohttp client fetching the same pages, and the ratio to it.

Run: ``.venv/bin/python bench/simulator.py``
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import ccxt.async_support as ccxt_async
import orjson

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from simulator.launch import launch  # noqa: E402
from tests.fixtures.simulator import CCXT_OPTIONS, rewire_urls  # noqa: E402

START_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC
DAYS = 30
MIN = 60_000
SINCE = START_MS - DAYS * 86_400_000
PAGE = 1000


class TimedBinance(ccxt_async.binance):  # type: ignore[misc]
    """ccxt's binance, recording the time spent inside ``fetch`` (HTTP + JSON decoding)."""

    fetch_s = 0.0
    decode_s = 0.0

    async def fetch(self, url: str, method: str = "GET", headers: Any = None, body: Any = None):
        started = time.perf_counter()
        try:
            return await super().fetch(url, method, headers, body)
        finally:
            self.fetch_s += time.perf_counter() - started

    def parse_json(self, http_response: str) -> Any:
        started = time.perf_counter()
        try:
            return super().parse_json(http_response)
        finally:
            self.decode_s += time.perf_counter() - started


def start_server() -> tuple[subprocess.Popen[str], str]:
    return launch("--days", str(DAYS), "--symbols", "BTC/USDT", "--start", str(START_MS))


async def server_seconds(session: aiohttp.ClientSession, base_url: str) -> float:
    async with session.get(base_url + "/admin/stats") as resp:
        return float((await resp.json())["handler_s"])


async def ccxt_pass(base_url: str, rate_limit: bool) -> dict[str, float]:
    ex = TimedBinance({"options": dict(CCXT_OPTIONS), "enableRateLimit": rate_limit})
    ex.urls["api"] = rewire_urls(ex.urls["api"], base_url)
    try:
        await ex.load_markets()
        async with aiohttp.ClientSession() as session:
            server_before = await server_seconds(session, base_url)
            ex.fetch_s = ex.decode_s = 0.0
            rows, cursor = 0, SINCE
            started = time.perf_counter()
            while cursor < START_MS:
                page = await ex.fetch_ohlcv("BTC/USDT", "1m", cursor, PAGE, {"until": START_MS - 1})
                rows += len(page)
                cursor = page[-1][0] + MIN
            wall = time.perf_counter() - started
            server = await server_seconds(session, base_url) - server_before
        return {
            "rows": rows,
            "wall": wall,
            "server": server,
            "ccxt": wall - ex.fetch_s + ex.decode_s,
            "fetch": ex.fetch_s,
        }
    finally:
        await ex.close()


async def raw_pass(base_url: str) -> dict[str, float]:
    url = base_url + "/api/v3/klines"
    async with aiohttp.ClientSession() as session:
        server_before = await server_seconds(session, base_url)
        rows, cursor = 0, SINCE
        started = time.perf_counter()
        while cursor < START_MS:
            params: dict[str, str | int] = {"symbol": "BTCUSDT", "interval": "1m", "limit": PAGE}
            params.update(startTime=cursor, endTime=START_MS - 1)
            async with session.get(url, params=params) as resp:
                page = orjson.loads(await resp.read())
            rows += len(page)
            cursor = page[-1][0] + MIN
        wall = time.perf_counter() - started
        server = await server_seconds(session, base_url) - server_before
    return {"rows": rows, "wall": wall, "server": server}


async def main(base_url: str) -> None:
    # first request generates the 30 days; keep that out of the measurements
    await raw_pass(base_url)
    raw = await raw_pass(base_url)
    plain = await ccxt_pass(base_url, rate_limit=False)
    limited = await ccxt_pass(base_url, rate_limit=True)
    probe = ccxt_async.binance()
    api = probe.api["public"]["get"]["klines"]
    throttle_ms = probe.calculate_rate_limiter_cost("public", "GET", "klines", {"limit": PAGE}, api)
    throttle_ms *= probe.rateLimit
    await probe.close()

    def rate(r: dict[str, float]) -> float:
        return r["rows"] / r["wall"]

    w = plain["wall"]
    transport = w - plain["server"] - plain["ccxt"]
    print(f"simulator benchmark: {DAYS} days of BTC/USDT 1m ({plain['rows']:,} candles),")
    print(f"{PAGE}-candle pages fetched one after another; server in a separate process")
    print()
    print(f"(a) ccxt binance client, rate limiter off : {rate(plain):>10,.0f} candles/s "
          f"({plain['rows'] / PAGE:.0f} pages in {w:.2f} s)")  # fmt: skip
    print(f"    ccxt binance client, rate limiter on  : {rate(limited):>10,.0f} candles/s "
          f"(ccxt's own throttle spaces these requests {throttle_ms:.0f} ms apart)")  # fmt: skip
    print("(b) where the ccxt client's wall time goes:")
    print(f"    server handlers (build + JSON encode) : {plain['server'] / w:>6.1%}"
          f"  ({plain['server'] * 1000 / (plain['rows'] / PAGE):.1f} ms/page)")  # fmt: skip
    print(f"    ccxt (request, JSON decode, parse)    : {plain['ccxt'] / w:>6.1%}")
    print(f"    HTTP transport and event loops        : {transport / w:>6.1%}")
    print(f"(c) baseline bare aiohttp client + orjson : {rate(raw):>10,.0f} candles/s "
          f"(server handlers {raw['server'] / raw['wall']:.1%} of its wall time)")  # fmt: skip
    print(f"    ccxt / bare aiohttp                   : {rate(plain) / rate(raw):>6.2f}x")
    print(f"    server-side ceiling (handlers only)   : {raw['rows'] / raw['server']:>10,.0f} "
          "candles/s")  # fmt: skip
    target = 20_000
    verdict = "meets" if rate(plain) >= target else "MISSES"
    print(f"goal >= {target:,} candles/s to one ccxt client: {verdict}")


if __name__ == "__main__":
    server, url = start_server()
    try:
        asyncio.run(main(url))
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=10)
