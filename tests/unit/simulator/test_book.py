"""The order book: a one- or two-tick spread, trades at the touch, diffs that replay exactly."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.market import MINUTE_MS
from tests.fixtures.simulator import START_MS, frozen_venue

Book = dict[str, dict[int, int]]


def apply(book: Book, bids: list, asks: list) -> None:
    for side, changes in (("b", bids), ("a", asks)):
        for price, qty in changes:
            if qty:
                book[side][price] = qty
            else:
                book[side].pop(price, None)


def as_lists(book: Book) -> tuple[list, list]:
    return sorted(book["b"].items(), reverse=True), sorted(book["a"].items())


@pytest.mark.parametrize("symbol", ["BTC/USDT", "SOL/USDT"])
def test_aggtrades_print_at_the_touch_and_take_from_it(symbol: str) -> None:
    venue = frozen_venue(book_levels=50)
    book, series = venue.books[symbol], venue.series[symbol]
    k = series.index_of(START_MS - 30 * MINUTE_MS)
    spreads = []
    for kk in range(k, k + 5):
        tape, touch = venue.tapes[symbol].minute(kk), book.touches(kk)
        for j in range(tape.g_price.size):
            pre, post = 1 + 2 * j, 2 + 2 * j
            bid, bq, ask, aq = book.top(touch, pre, kk)
            spreads.append(ask - bid)
            price, qty = int(tape.g_price[j]), int(tape.g_qty[j])
            if tape.g_buy[j]:  # a buy lifts the best ask
                assert ask == price and aq >= qty
                assert touch.ask_qty[post] == aq - qty
            else:  # a sell hits the best bid
                assert bid == price and bq >= qty
                assert touch.bid_qty[post] == bq - qty
    assert set(spreads) == {1, 2} and np.mean(np.array(spreads) == 1) > 0.5


def test_depth_is_irregular_and_levels_refill() -> None:
    venue = frozen_venue()
    bids, asks, _ = venue.book("ETH/USDT", 1000)
    assert len(bids) == len(asks) == 1000
    sizes = np.array([q for _, q in asks[1:]])
    gaps = np.diff([p for p, _ in asks])
    assert sizes.std() / sizes.mean() > 0.5 and set(gaps.tolist()) > {1, 2}
    # resting sizes are redrawn over the minutes, staggered by price (levels refill)
    book, k = venue.books["ETH/USDT"], venue.series["ETH/USDT"].index_of(START_MS)
    prices = np.array([p for p, _ in asks])
    now = book.sizes(prices, k)
    changed_1 = np.mean(book.sizes(prices, k + 1) != now)
    changed_5 = np.mean(book.sizes(prices, k + 5) != now)
    assert 0.1 < changed_1 < 0.3 and changed_5 > 0.9


@pytest.mark.parametrize("symbol", ["BTC/USDT", "ETH/USDT", "SOL/USDT"])
def test_diffs_replay_to_the_snapshot_as_binance_documents(symbol: str) -> None:
    venue = frozen_venue(book_levels=300)
    book = venue.books[symbol]
    rng = np.random.default_rng(7)
    t0 = START_MS - 40 * MINUTE_MS
    # the stream runs from t0; the client buffers, then takes a snapshot a moment later
    times = t0 + np.cumsum(rng.integers(1, 4_000, 400))
    events = []
    prev = t0
    for t in times.tolist():
        diff = book.diff(prev, t)
        if diff is not None:
            events.append((t, *diff))
        prev = t
    snap_t = int(times[5]) + 123
    bids, asks, last_id = venue.book(symbol, 5000, snap_t)
    local: Book = {"b": dict(bids), "a": dict(asks)}
    live = [e for e in events if e[2] > last_id]
    assert live[0][1] <= last_id + 1 <= live[0][2]  # the first kept event spans lastUpdateId
    for n, (t, first, last, b, a) in enumerate(live):
        assert n == 0 or first == last_id + 1  # then no hole in the update ids
        apply(local, b, a)
        last_id = last
        if t in times[::50]:
            assert as_lists(local) == venue.book(symbol, 5000, t)[:2]
    end_bids, end_asks, end_id = venue.book(symbol, 5000, int(times[-1]))
    assert end_id == last_id and as_lists(local) == (end_bids, end_asks)


def test_update_ids_count_the_changes() -> None:
    venue = frozen_venue()
    book, series = venue.books["SOL/USDT"], venue.series["SOL/USDT"]
    k = series.index_of(START_MS)
    series.ensure(k + 1)
    assert book.update_id(START_MS - 1) + 1 == series.first_update_id[k]
    t = book.touches(k)
    assert book.update_id(START_MS) == series.first_update_id[k] + t.index_at(START_MS)
    assert series.first_update_id[k + 1] - series.first_update_id[k] == 1 + 2 * series.groups[k]
