"""The direct depth stream (the recorder's fast path for the book) against the simulator: its
frame decode equals a JSON decode of the same frames, and its local book equals the venue's
book after diffs, after duplicated and reordered frames, after skipped diffs (gap + resync)
and after a dropped connection."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from tests.fixtures.simulator import SimFactory, run
from tradeflow.config import ExchangeSettings
from tradeflow.exchange import ExchangeError
from tradeflow.exchange.book import LocalBook
from tradeflow.exchange.ccxt_client import ExchangeClient
from tradeflow.exchange.depth_stream import decode_depth
from tradeflow.exchange.orderflow import OrderFlowClient

SYMBOL = "SOL/USDT"


def venue_book(venue: Any, symbol: str, at: int) -> tuple[list, list, int]:
    spec = venue.specs[symbol]
    p, q = 10**spec.price_decimals, 10**spec.qty_decimals
    bids, asks, uid = venue.book(symbol, 1000, at)
    return [[a / p, b / q] for a, b in bids], [[a / p, b / q] for a, b in asks], uid


def assert_is_venue_book(sim: Any, book: LocalBook) -> None:
    bids, asks, uid = venue_book(sim.venue, SYMBOL, book["timestamp"])
    assert book.last_update_id == uid
    assert (book.bids.top(), book.asks.top()) == (bids, asks)


def test_decode_equals_json_on_the_simulator_frames(sim_factory: SimFactory) -> None:
    sim = sim_factory(speed=60.0)

    async def body() -> list[str]:
        async with aiohttp.ClientSession() as session, \
                session.ws_connect(sim.ws_url + "/btcusdt@depth@100ms") as ws:
            return [(await asyncio.wait_for(ws.receive(), 10)).data for _ in range(8)]

    for frame in run(body()):
        want = json.loads(frame)
        got = decode_depth(frame)
        assert got is not None and len(got["b"]) > 10
        assert {k: v for k, v in got.items() if k not in ("b", "a", "flat")} == \
            {k: v for k, v in want.items() if k not in "ba"}
        assert got["b"] == [x for level in want["b"] for x in level]
        assert got["a"] == [x for level in want["a"] for x in level]
    # empty sides, another key order, a control message's answer, junk
    empty = '{"e":"depthUpdate","E":5,"s":"X","U":1,"u":2,"b":[],"a":[["1.5","0.00"]]}'
    assert decode_depth(empty) == {"e": "depthUpdate", "E": 5, "s": "X", "U": 1, "u": 2,
                                   "b": [], "a": ["1.5", "0.00"], "flat": True}
    swapped = '{"a":[["2.0","1"]],"e":"depthUpdate","E":5,"U":1,"u":2,"b":[["1.0","3"]]}'
    assert decode_depth(swapped)["b"] == ["1.0", "3"]  # type: ignore[index]
    assert decode_depth('{"result":null,"id":1}') is None
    for bad in ('{"e":"depthUpdate","U":1,"u":2,"b":[["1.0"]],"a":[]}', '{"e":"trade"}',
                '{"e":"depthUpdate","b":[["1.0","2"'):
        with pytest.raises(ValueError):
            decode_depth(bad)


def watch(sim: Any, faults: dict[str, int], reads: int, *,
          check_before: bool = False) -> tuple[LocalBook, dict[str, int], int, int]:
    """``reads`` reads of the direct local book through ``faults``; the book equals the
    venue's after each (and, with ``check_before``, just before each diff too)."""
    sim.set_faults(**faults)

    async def body() -> tuple[LocalBook, dict[str, int], int, int]:
        async with ExchangeClient(ExchangeSettings(base_url=sim.base_url)) as client:
            await client.load_markets()
            flow = OrderFlowClient(client, direct_book=True)
            assert flow.has_local_book(SYMBOL)
            seen = {"before": 0}

            def before(book: LocalBook, diff: dict) -> None:
                if book["timestamp"] is not None:
                    assert diff["U"] == book.last_update_id + 1
                    if check_before:
                        assert_is_venue_book(sim, book)
                    seen["before"] += 1

            errors = 0
            try:
                book = None
                for _ in range(reads):
                    try:
                        book = await asyncio.wait_for(flow.watch_local_book(SYMBOL, before), 10)
                    except ExchangeError as exc:
                        assert exc.retryable
                        errors += 1
                        continue
                    assert_is_venue_book(sim, book)
            finally:
                await flow.close()
            assert book is not None
            return book, seen, flow.resyncs.get(SYMBOL, 0), errors

    return run(body())


def test_the_local_book_is_the_venue_book_after_diffs(sim_factory: SimFactory) -> None:
    sim = sim_factory(speed=60.0)
    book, seen, resyncs, errors = watch(sim, {}, 25, check_before=True)
    assert resyncs == 0 and errors == 0 and seen["before"] >= 20
    assert len(book.bids) >= 1000 and len(book.asks) >= 1000


def test_duplicated_and_reordered_frames_and_skipped_diffs(sim_factory: SimFactory) -> None:
    sim = sim_factory(speed=60.0)
    _, _, resyncs, errors = watch(sim, {"ws_duplicate_every": 3}, 20)
    assert resyncs == 0 and errors == 0  # a repeat is dropped, no resync
    _, _, resyncs, errors = watch(sim, {"ws_duplicate_every": 0, "ws_reorder_every": 5}, 20)
    assert resyncs >= 1 and errors == 0  # a later diff first: a hole, so a resync
    _, _, resyncs, errors = watch(sim, {"ws_reorder_every": 0, "ws_depth_gap_every": 4}, 20)
    assert resyncs >= 3 and errors == 0


def test_a_dropped_connection_raises_then_syncs_again(sim_factory: SimFactory) -> None:
    sim = sim_factory(speed=60.0)
    _, _, _, errors = watch(sim, {"ws_drop_every": 6}, 20)
    assert errors >= 2
