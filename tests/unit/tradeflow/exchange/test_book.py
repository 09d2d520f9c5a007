"""The local order book: the simulator's book after its diffs, a skipped diff and a resync;
ccxt.pro's own book fed the same messages; a slow, obvious twin on random diffs."""

from __future__ import annotations

import random
from typing import Any

import ccxt.pro as ccxt_pro
import numpy as np
import pytest
from ccxt.async_support.base.ws.order_book import OrderBook

from simulator import orderflow
from simulator.faults import FaultState, WsFaults
from simulator.market import MINUTE_MS
from simulator.settings import FaultSettings
from simulator.venue import Venue
from tests.fixtures.simulator import START_MS, frozen_venue
from tradeflow.exchange.book import LocalBook

LEVELS = 300


def diff_messages(venue: Venue, symbol: str, t0: int, steps: int, seed: int = 7) -> list[dict]:
    """The ``@depth`` events the simulator sends between ``t0`` and a few hours later."""
    book, spec = venue.books[symbol], venue.specs[symbol]
    times = t0 + np.cumsum(np.random.default_rng(seed).integers(1, 4_000, steps))
    out, prev = [], t0
    for t in times.tolist():
        diff = book.diff(prev, t)
        if diff is not None:
            out.append(orderflow.depth_event(spec, *diff, t))
        prev = t
    return out


def snapshot(venue: Venue, symbol: str, at: int) -> dict:
    """The simulator's ``GET /api/v3/depth`` body at ``at`` (decimal strings)."""
    bids, asks, uid = venue.book(symbol, 5000, at)
    return orderflow.depth_rest(venue.specs[symbol], bids, asks, uid)


def as_floats(body: dict) -> tuple[list, list]:
    return ([[float(p), float(q)] for p, q in body["bids"]],
            [[float(p), float(q)] for p, q in body["asks"]])


@pytest.mark.parametrize("symbol", ["BTC/USDT", "SOL/USDT"])
def test_equals_the_simulators_book_after_its_diffs(symbol: str) -> None:
    venue = frozen_venue(book_levels=LEVELS)
    t0 = START_MS - 40 * MINUTE_MS
    events = diff_messages(venue, symbol, t0, 300)
    book = LocalBook()
    # the stream runs first: diffs wait for the snapshot, then the old ones are dropped
    assert {book.apply_diff(e) for e in events[:5]} == {"buffered"}
    assert book.resync(snapshot(venue, symbol, events[3]["E"] + 1)) == "applied"
    outcomes = []
    for e in events[5:]:
        outcomes.append(book.apply_diff(e))
        if len(outcomes) % 40 == 0:
            assert [book.bids.top(), book.asks.top()] == list(as_floats(snapshot(venue, symbol,
                                                                                  e["E"])))
    assert set(outcomes) == {"applied"}
    end = snapshot(venue, symbol, events[-1]["E"])
    assert book.last_update_id == end["lastUpdateId"] == events[-1]["u"]
    assert (book.bids.top(), book.asks.top()) == as_floats(end)
    assert book.apply_diff(events[-1]) == "stale"  # a repeat changes nothing


def test_a_skipped_diff_is_a_gap_and_a_resync_catches_up() -> None:
    symbol = "ETH/USDT"
    venue = frozen_venue(book_levels=LEVELS)
    events = diff_messages(venue, symbol, START_MS - 90 * MINUTE_MS, 400, seed=3)
    book = LocalBook.from_binance(snapshot(venue, symbol, events[0]["E"]), symbol)
    # the simulator's own fault drops every 25th diff on the connection
    faults = WsFaults(FaultState(FaultSettings(ws_depth_gap_every=25)))
    gaps = 0
    for n, e in enumerate(events[1:]):
        sent, _ = faults.process("depth", depth=True)
        if not sent:
            continue
        outcome, at = book.apply_diff(e), e["E"]
        if outcome == "gap":
            gaps += 1
            bids_before = book.bids.top()
            assert book.needs_resync and book.apply_diff(e) == "buffered"
            assert book.bids.top() == bids_before  # nothing applied across the hole
            # the REST snapshot comes a little after the diff that showed the hole
            at = e["E"] + 1
            assert book.resync(snapshot(venue, symbol, at)) == "applied"
            assert not book.needs_resync
        else:
            assert outcome == "applied"
        if n % 10 == 0 or outcome == "gap":
            bids, asks = as_floats(snapshot(venue, symbol, at))
            assert (book.bids.top(20), book.asks.top(20)) == (bids[:20], asks[:20])
    assert gaps >= 10
    end = snapshot(venue, symbol, events[-1]["E"])
    assert (book.bids.top(), book.asks.top()) == as_floats(end)
    assert book.last_update_id == end["lastUpdateId"]


def test_a_snapshot_older_than_the_buffer_asks_for_another() -> None:
    symbol = "BTC/USDT"
    venue = frozen_venue(book_levels=50)
    events = diff_messages(venue, symbol, START_MS - 30 * MINUTE_MS, 50)
    book = LocalBook()
    for e in events[10:]:
        book.apply_diff(e)
    assert book.resync(snapshot(venue, symbol, events[2]["E"])) == "gap"
    assert book.needs_resync
    assert book.resync(snapshot(venue, symbol, events[12]["E"])) == "applied"
    assert (book.bids.top(), book.asks.top()) == as_floats(snapshot(venue, symbol,
                                                                    events[-1]["E"]))


def ccxt_binance() -> Any:
    return ccxt_pro.binance({"options": {"fetchMarkets": {"types": ["spot"]}}})


@pytest.mark.parametrize("depth", [None, 40])
def test_matches_ccxt_pros_own_book_after_every_message(depth: int | None) -> None:
    symbol = "SOL/USDT"
    venue = frozen_venue(book_levels=LEVELS)
    events = diff_messages(venue, symbol, START_MS - 200 * MINUTE_MS, 500, seed=11)
    bids, asks = as_floats(snapshot(venue, symbol, events[0]["E"]))
    start = {"bids": bids, "asks": asks, "nonce": events[0]["u"], "symbol": symbol}
    theirs, ours = OrderBook(start, depth), LocalBook(start, depth)
    exchange = ccxt_binance()
    for e in events[1:]:
        exchange.handle_order_book_message(None, e, theirs)
        assert ours.apply_diff(e) == "applied"
        theirs.limit()
        ours.limit()
        assert ours["bids"][:20] == theirs["bids"][:20]
        assert ours["asks"][:20] == theirs["asks"][:20]
        assert (ours["nonce"], ours["timestamp"], ours["datetime"]) == (
            theirs["nonce"], theirs["timestamp"], theirs["datetime"])
    assert list(ours["bids"]) == list(theirs["bids"]) and ours["asks"] == theirs["asks"]
    assert len(ours["asks"]) == len(theirs["asks"])


def test_is_the_book_ccxt_pro_keeps_in_the_adapter() -> None:
    from tradeflow.config import ExchangeSettings
    from tradeflow.exchange.ccxt_client import build_exchange

    exchange = build_exchange(ExchangeSettings(id="binance"))
    book = exchange.order_book({}, 7)
    assert isinstance(book, LocalBook) and book.depth == 7
    # ccxt.pro's own steps: reset from the REST snapshot, deltas through its handler, limit
    book.reset({"bids": [[10.0, 1.0], [9.0, 2.0]], "asks": [[11.0, 3.0]], "nonce": 5,
                "timestamp": None, "symbol": "BTC/USDT"})
    exchange.handle_order_book_message(None, {"U": 6, "u": 8, "E": START_MS,
                                              "b": [["10.5", "4"], ["9", "0"]],
                                              "a": [["11", "0"], ["12", "1.5"]]}, book)
    exchange.handle_delta(book["asks"], ["11.5", "2"])
    assert book.limit() is book
    assert book["bids"] == [[10.5, 4.0], [10.0, 1.0]] and book["asks"][0] == [11.5, 2.0]
    assert book["nonce"] == 8 and book["datetime"] == "2026-01-01T00:00:00.000Z"
    assert book.copy()["asks"] == [[11.5, 2.0], [12.0, 1.5]]


def naive_top(levels: dict[float, float], bids: bool, n: int) -> list[list[float]]:
    return [[p, levels[p]] for p in sorted(levels, reverse=bids)[:n]]


@pytest.mark.parametrize("seed", range(4))
def test_random_diffs_against_a_plain_dict_sorted_every_time(seed: int) -> None:
    rng = random.Random(seed)
    twin: dict[str, dict[float, float]] = {"b": {}, "a": {}}
    book = LocalBook({"nonce": 0}, depth=None)
    for u in range(1, 400):
        msg: dict[str, Any] = {"U": u, "u": u, "E": u, "b": [], "a": []}
        for side in ("b", "a"):
            for _ in range(rng.randint(0, 30)):
                # few distinct prices, so levels come, go and come back; deletes of absent ones
                price = round(rng.uniform(90, 110) if side == "b" else rng.uniform(100, 120), 1)
                amount = 0.0 if rng.random() < 0.35 else round(rng.uniform(0.1, 5), 3)
                msg[side].append([f"{price:.1f}", f"{amount:.3f}"])
                if amount:
                    twin[side][price] = amount
                else:
                    twin[side].pop(price, None)
        assert book.apply_diff(msg) == "applied"
        n = rng.choice([1, 5, 20, 1000])
        if rng.random() < 0.5:  # reads at random moments: several diffs between sorts
            assert book.bids.top(n) == naive_top(twin["b"], True, n)
            assert book.asks.top(n) == naive_top(twin["a"], False, n)
            assert book["bids"][2:n] == naive_top(twin["b"], True, n)[2:]
    assert list(book["asks"]) == naive_top(twin["a"], False, 10**6)
    assert book["bids"][-1] == naive_top(twin["b"], True, 10**6)[-1]
    assert book.bids.best() == naive_top(twin["b"], True, 1)[0]
