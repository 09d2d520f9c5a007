"""The market-data API against the simulator: states under dropped sockets and silence,
subscribe/unsubscribe while streaming, callbacks that raise, REST polling, the manager."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.fixtures.simulator import SimFactory, run
from tradeflow.config import ExchangeSettings
from tradeflow.exchange.types import BadSymbol, ConnectionState, ExchangeError
from tradeflow.marketdata import MarketDataManager, MarketDataStream, Transition, Update

S = ConnectionState
FROZEN = 1e-9


def stream(base_url: str, **kwargs: Any) -> MarketDataStream:
    return MarketDataStream("binance", settings=ExchangeSettings(base_url=base_url),
                            **{"reconnect_base_s": 0.05, "reconnect_max_s": 0.2, **kwargs})


async def until(check: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def test_dropped_sockets_reconnect_and_the_trades_have_no_hole_or_repeat(
        sim_factory: SimFactory) -> None:
    sim = sim_factory(speed=60.0, ws_update_ms=100, faults={"ws_drop_every": 15})
    md = stream(sim.base_url)
    seen: list[Transition] = []
    md.on_state_change(seen.append)

    async def body() -> None:
        await md.subscribe("ETH/USDT", "trades")
        async with md:
            sub = md.subscriptions[("ETH/USDT", "trades")]
            await until(lambda: sub.reconnects >= 3 and md.state == S.CONNECTED)

    run(body())
    states = [t.new for t in seen]
    assert states[:2] == [S.CONNECTING, S.CONNECTED]
    assert S.RECONNECTING in states and states[-1] == S.DISCONNECTED
    assert states[states.index(S.RECONNECTING) + 1] == S.CONNECTED
    assert any("dropped" in t.reason for t in seen if t.new == S.RECONNECTING)
    ids = md.buffer.get_latest("ETH/USDT", 100_000, "trades")["id"].astype(int).tolist()
    assert len(ids) > 50
    assert ids == list(range(ids[0], ids[-1] + 1))  # the REST catch-up filled every drop


def test_silence_marks_the_stream_stale_then_failed_and_stop_disconnects(
        sim_factory: SimFactory) -> None:
    sim = sim_factory(speed=FROZEN)  # a frozen market trades nothing: the socket stays silent
    md = stream(sim.base_url, heartbeat_s=0.3, max_failures=2)

    async def body() -> None:
        await md.subscribe("BTC/USDT", "trades")
        async with md:
            await until(lambda: md.state == S.FAILED)
            assert md.status()[0].reconnects == 3
            await md.connect()  # a failed stream can be connected again
            assert md.state == S.CONNECTED

    run(body())
    states = [(t.old, t.new) for t in md.transitions]
    assert states == [(S.DISCONNECTED, S.CONNECTING), (S.CONNECTING, S.CONNECTED),
                      (S.CONNECTED, S.RECONNECTING), (S.RECONNECTING, S.FAILED),
                      (S.FAILED, S.CONNECTING), (S.CONNECTING, S.CONNECTED),
                      (S.CONNECTED, S.DISCONNECTED)]
    assert "stale" in md.transitions[2].reason
    assert md.stopped_at is not None
    assert all(s.state == "disconnected" for s in md.status())


def test_subscribe_and_unsubscribe_while_streaming(sim_factory: SimFactory) -> None:
    sim = sim_factory(speed=60.0, ws_update_ms=100)
    md = stream(sim.base_url)
    updates: list[Update] = []
    md.add_callback(updates.append)

    async def body() -> None:
        await md.subscribe("BTC/USDT", "ticker")
        async with md:
            await until(lambda: any(u.symbol == "BTC/USDT" for u in updates))
            await md.subscribe(["ETH/USDT"], ["trades", "book"])
            await until(lambda: {("ETH/USDT", "trades"), ("ETH/USDT", "book")}
                        <= {(u.symbol, u.channel) for u in updates})
            with pytest.raises(BadSymbol, match="does not list NOPE/USDT"):
                await md.subscribe("NOPE/USDT", "ticker")
            await md.unsubscribe("BTC/USDT")
            assert "btcusdt@ticker" not in sim.server.hub.streams  # unsubscribed on the venue
            before = len([u for u in updates if u.symbol == "BTC/USDT"])
            eth = len(updates)
            await until(lambda: len(updates) > eth + 5)
            assert len([u for u in updates if u.symbol == "BTC/USDT"]) == before
            assert md.state == S.CONNECTED

    run(body())
    assert set(md.subscriptions) == {("ETH/USDT", "trades"), ("ETH/USDT", "book")}
    book = md.buffer.get_latest("ETH/USDT", 5, "book")
    assert (book["bid"] <= book["ask"]).all() and len(book)


def test_callbacks_that_raise_are_counted_and_never_stop_the_stream(
        sim_factory: SimFactory) -> None:
    sim = sim_factory(speed=60.0, ws_update_ms=100)
    md = stream(sim.base_url)
    good: list[Update] = []

    def bad(update: Update) -> None:
        raise ValueError("a user's bug")

    async def bad_async(update: Update) -> None:
        raise RuntimeError("another")

    async def good_async(update: Update) -> None:
        await asyncio.sleep(0)
        good.append(update)

    md.add_callback(bad)
    md.add_callback(bad_async, channels=["trades"])
    md.add_callback(good_async)

    async def body() -> None:
        await md.subscribe("BTC/USDT", ["trades", "ticker"])
        async with md:
            await until(lambda: len(good) >= 20)
            assert md.state == S.CONNECTED

    run(body())
    trades = sum(1 for u in good if u.channel == "trades")
    assert md.callbacks.errors[bad.__qualname__] >= len(good) - 1
    assert md.callbacks.errors[bad_async.__qualname__] >= trades - 1
    assert md.callback_errors > 20


def test_rest_polling_where_there_is_no_websocket(sim_factory: SimFactory) -> None:
    sim = sim_factory(speed=60.0)
    md = stream(sim.base_url, use_websocket=False, poll_s=0.1)
    updates: list[Update] = []
    md.add_callback(updates.append)

    async def body() -> None:
        await md.subscribe("SOL/USDT", ["ticker", "candles", "trades"])
        async with md:
            await until(lambda: len({u.channel for u in updates}) == 3)

    run(body())
    candles = md.buffer.get_latest("SOL/USDT", 500, "candles")
    assert candles.index.is_monotonic_increasing and candles.index.is_unique
    ids = md.buffer.get_latest("SOL/USDT", 10_000, "trades")["id"].tolist()
    assert ids == sorted(set(ids))


def test_a_manager_streams_and_reports_each_exchange(sim_factory: SimFactory) -> None:
    sim = sim_factory(speed=60.0, ws_update_ms=100)
    manager = MarketDataManager(reconnect_base_s=0.05)
    changes: list[Transition] = []
    manager.on_state_change(changes.append)

    async def body() -> None:
        await manager.add("binance", ExchangeSettings(base_url=sim.base_url))
        await manager.subscribe(["BTC/USDT", "ETH/USDT"], ["ticker"])
        async with manager:
            assert manager.states() == {"binance": S.CONNECTED}
            await until(lambda: manager.current_price("ETH/USDT") is not None)
            price = manager.current_price("ETH/USDT", "binance")
            assert price is not None and price.price > 0 and price.age_s < 5
            with pytest.raises(KeyError, match="no stream for kraken"):
                manager.current_price("ETH/USDT", "kraken")

    run(body())
    assert manager.states() == {"binance": S.DISCONNECTED}
    assert [c.new for c in changes] == [S.CONNECTING, S.CONNECTED, S.DISCONNECTED]


def test_connecting_to_a_venue_that_is_down_fails(sim_factory: SimFactory) -> None:
    sim = sim_factory(speed=FROZEN)
    url = sim.base_url
    sim.stop()
    md = MarketDataStream("binance", settings=ExchangeSettings(base_url=url, max_retries=0))

    async def body() -> None:
        with pytest.raises(ExchangeError, match="exchangeInfo"):
            await md.connect()

    run(body())
    assert md.state == S.FAILED
    assert "connect failed" in md.transitions[-1].reason
