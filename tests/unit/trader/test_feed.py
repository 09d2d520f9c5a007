"""When the feed asks REST for a closed candle whose closing stream update it did not get."""

from __future__ import annotations

import asyncio

from tradeflow.exchange.types import StreamCandle
from trader.feed import CandleFeed, SymbolFeed

MIN = 60_000
T0 = 1_767_225_600_000


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def row(open_time: int, closed: bool | None = False) -> StreamCandle:
    return StreamCandle("BTC/USDT", "1m", open_time, 1.0, 1.0, 1.0, 1.0, 1.0, closed)


def feed_at(emitted: int) -> tuple[CandleFeed, SymbolFeed, Clock]:
    clock = Clock()
    feed = CandleFeed(object(), ("BTC/USDT",), "1m", grace_s=0.5, clock=clock)
    return feed, SymbolFeed("BTC/USDT", emitted), clock


def test_a_fresh_stream_that_starts_past_a_close_asks_rest_at_once() -> None:
    # Subscribed after T0+1m closed: its closing update went out before the subscription.
    feed, symbol, clock = feed_at(T0)
    asyncio.run(feed._on_rows(symbol, [row(T0 + 2 * MIN)]))
    assert symbol.deadline == clock.now
    assert not symbol.fresh


def test_a_running_stream_waits_a_grace_for_the_closing_update() -> None:
    feed, symbol, clock = feed_at(T0)
    asyncio.run(feed._on_rows(symbol, [row(T0 + MIN)]))  # the open candle: nothing missing
    assert symbol.deadline is None
    clock.now += 60
    asyncio.run(feed._on_rows(symbol, [row(T0 + 2 * MIN)]))  # closing update of T0+1m late
    assert symbol.deadline == clock.now + 0.5


def test_a_closed_update_on_a_fresh_stream_is_emitted_without_rest() -> None:
    feed, symbol, _ = feed_at(T0)
    asyncio.run(feed._on_rows(symbol, [row(T0 + MIN, closed=True)]))
    assert symbol.emitted == T0 + MIN and symbol.queue.qsize() == 1
    assert symbol.deadline is None
