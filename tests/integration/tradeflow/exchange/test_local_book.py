"""The local order book against the simulator's websocket: as the book ccxt.pro keeps behind the
adapter's exchange (through a skipped diff and ccxt's resubscription), and fed the raw
``@depth@100ms`` stream directly (a gap, a REST resync, the venue's book at the end)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import ccxt
import orjson

from tests.fixtures import simulator as fixtures
from tests.fixtures.simulator import run
from tradeflow.config import ExchangeSettings
from tradeflow.exchange.book import LocalBook
from tradeflow.exchange.ccxt_client import build_exchange

FAST = 60.0


def venue_book(venue: Any, symbol: str, at: int) -> tuple[list, list]:
    spec = venue.specs[symbol]
    p, q = 10**spec.price_decimals, 10**spec.qty_decimals
    bids, asks, _ = venue.book(symbol, 1000, at)
    return [[a / p, b / q] for a, b in bids], [[a / p, b / q] for a, b in asks]


def test_ccxt_pro_keeps_our_book_through_a_gap(sim_factory: fixtures.SimFactory) -> None:
    sim = sim_factory(speed=FAST)

    async def body() -> dict:
        ex = build_exchange(ExchangeSettings(base_url=sim.base_url))
        out: dict = {"equal": [], "resyncs": 0, "types": set()}
        try:
            while len(out["equal"]) < 10:
                ob = await asyncio.wait_for(ex.watch_order_book("SOL/USDT"), 10)
                out["types"].add(type(ob).__name__)
                if ob["timestamp"] is not None:  # the bare REST snapshot carries no time
                    bids, asks = venue_book(sim.venue, "SOL/USDT", ob["timestamp"])
                    out["equal"].append(ob["bids"] == bids and ob["asks"] == asks)
            sim.set_faults(ws_depth_gap_every=4)
            while out["resyncs"] < 1:
                try:
                    await asyncio.wait_for(ex.watch_order_book("SOL/USDT"), 10)
                except ccxt.ChecksumError:
                    out["resyncs"] += 1  # ccxt saw the hole, dropped the book, resubscribes
            sim.set_faults(ws_depth_gap_every=0)
            for _ in range(8):
                ob = await asyncio.wait_for(ex.watch_order_book("SOL/USDT"), 10)
            out["types"].add(type(ob).__name__)
            bids, asks = venue_book(sim.venue, "SOL/USDT", ob["timestamp"])
            out["after"] = ob["bids"] == bids and ob["asks"] == asks
            out["depth"] = (len(ob["bids"]), len(ob["asks"]))
        finally:
            await ex.close()
        return out

    got = run(body())
    assert got["types"] == {"LocalBook"}
    assert all(got["equal"]) and got["resyncs"] == 1 and got["after"]
    assert got["depth"] == (1000, 1000)


def test_the_raw_depth_stream_with_gaps_and_resyncs(sim_factory: fixtures.SimFactory) -> None:
    sim = sim_factory(speed=FAST)
    sim.set_faults(ws_depth_gap_every=7)

    async def body() -> tuple[LocalBook, dict, dict[str, int]]:
        book = LocalBook()
        seen: dict[str, int] = {}
        rest = sim.base_url + "/api/v3/depth"
        async with aiohttp.ClientSession() as session, \
                session.ws_connect(sim.ws_url + "/solusdt@depth@100ms") as ws:
            event: dict = {}
            while seen.get("applied", 0) < 40:
                event = orjson.loads((await asyncio.wait_for(ws.receive(), 10)).data)
                outcome = book.apply_diff(event)
                seen[outcome] = seen.get(outcome, 0) + 1
                while book.needs_resync or book.last_update_id is None:
                    async with session.get(rest, params={"symbol": "SOLUSDT",
                                                         "limit": 1000}) as resp:
                        snapshot = await resp.json()
                    if book.resync(snapshot) == "gap":
                        seen["stale snapshot"] = seen.get("stale snapshot", 0) + 1
                        break
        return book, event, seen

    book, event, seen = run(body())
    assert seen.get("gap", 0) >= 3 and not book.needs_resync
    bids, asks = venue_book(sim.venue, "SOL/USDT", event["E"])
    assert book.last_update_id == event["u"]
    assert (book.bids.top(), book.asks.top()) == (bids, asks)
