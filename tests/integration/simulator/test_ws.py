"""Market streams through ccxt.pro and a raw aiohttp websocket client, faults included."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import ccxt
import orjson

from tests.fixtures import simulator as fixtures
from tests.fixtures.simulator import run, with_exchange

MIN = 60_000
FAST = 60.0  # a 1m candle closes every wall second


def test_watch_ohlcv_streams_updates_then_the_closed_candle(
    sim_factory: fixtures.SimFactory,
) -> None:
    sim = sim_factory(speed=3 * FAST, ws_update_ms=100)

    async def body(ex: Any) -> tuple[list, list]:
        seen: list = []
        while len({c[0] for c in seen}) < 3:
            seen += await asyncio.wait_for(ex.watch_ohlcv("BTC/USDT", "1m"), 10)
        return seen, ex.ohlcvs["BTC/USDT"]["1m"]

    updates, cache = run(with_exchange(sim.base_url, body, pro=True))
    opens = sorted({c[0] for c in updates})
    assert opens[1] - opens[0] == MIN
    # the last message about a candle that has closed is the final candle, as REST serves it
    final = sim.venue.klines("BTC/USDT", "1m", opens[0], opens[0]).ohlcv().tolist()
    assert [c for c in cache if c[0] == opens[0]] == final


def test_watch_ohlcv_for_several_symbols_and_timeframes(sim_factory: fixtures.SimFactory) -> None:
    sim = sim_factory(speed=FAST, ws_update_ms=100)
    wanted = [["BTC/USDT", "1m"], ["ETH/USDT", "5m"], ["SOL/USDT", "1h"]]

    async def body(ex: Any) -> set:
        # each call returns the stream that resolved it; the others land in ex.ohlcvs
        for _ in range(5):
            await asyncio.wait_for(ex.watch_ohlcv_for_symbols(wanted), 10)
        return {(sym, tf) for sym, frames in ex.ohlcvs.items() for tf in frames}

    assert run(with_exchange(sim.base_url, body, pro=True)) == {tuple(w) for w in wanted}


def test_watch_trades_and_ticker_agree_with_the_venue(sim_factory: fixtures.SimFactory) -> None:
    sim = sim_factory(speed=FAST, ws_update_ms=100)

    async def body(ex: Any) -> tuple[list, dict, dict]:
        trades: list = []
        while len(trades) < 50:
            trades += await asyncio.wait_for(ex.watch_trades("ETH/USDT"), 10)
        multi = await asyncio.wait_for(ex.watch_trades_for_symbols(["BTC/USDT", "SOL/USDT"]), 10)
        ticker = await asyncio.wait_for(ex.watch_ticker("ETH/USDT"), 10)
        full = await asyncio.wait_for(ex.watch_ticker("BTC/USDT", {"name": "ticker"}), 10)
        return trades, {"multi": multi, "ticker": ticker}, full

    trades, other, full = run(with_exchange(sim.base_url, body, pro=True))
    ids = [int(t["id"]) for t in trades]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    venue = sim.venue
    rows = venue.trades_from(
        "ETH/USDT", from_id=ids[0], limit=10**6, now_ms=trades[-1]["timestamp"]
    )
    by_id = dict(zip(rows.ids.tolist(), rows.prices.tolist(), strict=True))
    assert all(t["price"] == by_id[int(t["id"])] / 100 for t in trades)
    assert other["multi"][0]["symbol"] in ("BTC/USDT", "SOL/USDT")
    mini = other["ticker"]
    expected = venue.ticker_24h("ETH/USDT", mini["info"]["E"])
    assert expected is not None and mini["last"] == expected.last / 100
    assert full["info"]["e"] == "24hrTicker" and full["bid"] < full["ask"]


async def _raw(url: str, requests: list[dict], count: int) -> list[Any]:
    received: list[Any] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        for request in requests:
            await ws.send_str(orjson.dumps(request).decode())
        while len(received) < count:
            msg = await asyncio.wait_for(ws.receive(), 10)
            if msg.type != aiohttp.WSMsgType.TEXT:
                received.append(("closed", msg.type, msg.data))
                break
            received.append(orjson.loads(msg.data))
    return received


def test_subscription_control_messages_are_answered_like_binance(
    sim_factory: fixtures.SimFactory,
) -> None:
    sim = sim_factory()
    requests = [
        {"method": "SUBSCRIBE", "params": ["btcusdt@kline_1m", "ethusdt@aggTrade"], "id": 1},
        {"method": "LIST_SUBSCRIPTIONS", "id": 2},
        {"method": "UNSUBSCRIBE", "params": ["ethusdt@aggTrade"], "id": "three"},
        {"method": "LIST_SUBSCRIPTIONS", "id": 4},
        {"method": "SUBSCRIBE", "params": ["nopeusdt@trade"], "id": 5},
    ]
    got = run(_raw(sim.ws_url, requests, 5))
    replies = [m for m in got if "id" in m]
    assert replies[:4] == [
        {"result": None, "id": 1},
        {"result": ["btcusdt@kline_1m", "ethusdt@aggTrade"], "id": 2},
        {"result": None, "id": "three"},
        {"result": ["btcusdt@kline_1m"], "id": 4},
    ]
    assert replies[4]["id"] == 5 and replies[4]["error"]["code"] == 2


def test_streams_in_the_path_and_combined_query(sim_factory: fixtures.SimFactory) -> None:
    sim = sim_factory(speed=FAST, ws_update_ms=100)
    raw = run(_raw(sim.ws_url + "/btcusdt@kline_1m", [], 2))
    assert all(m["e"] == "kline" and m["k"]["i"] == "1m" for m in raw)
    url = sim.base_url.replace("http", "ws") + "/stream?streams=ethusdt@kline_5m/solusdt@trade"
    combined = run(_raw(url, [], 40))
    streams = {m["stream"] for m in combined}
    assert streams == {"ethusdt@kline_5m", "solusdt@trade"}
    assert all(m["data"]["s"] in ("ETHUSDT", "SOLUSDT") for m in combined)


def test_server_answers_pings(sim_factory: fixtures.SimFactory) -> None:
    sim = sim_factory()

    async def body() -> aiohttp.WSMsgType:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(sim.ws_url, autoping=False) as ws,
        ):
            await ws.ping(b"hello")
            msg = await asyncio.wait_for(ws.receive(), 5)
            assert msg.data == b"hello"
            return msg.type

    assert run(body()) == aiohttp.WSMsgType.PONG


def _trade_ids(messages: list[Any]) -> list[int]:
    return [m["t"] for m in messages if isinstance(m, dict)]


def test_websocket_faults_duplicate_reorder_and_drop(sim_factory: fixtures.SimFactory) -> None:
    sim = sim_factory(speed=FAST)
    url = sim.ws_url + "/btcusdt@trade"
    sim.set_faults(ws_duplicate_every=4)
    ids = _trade_ids(run(_raw(url, [], 12)))
    assert [ids[i] for i in (3, 4, 8, 9)] == [ids[3], ids[3], ids[8], ids[8]]
    assert len(set(ids)) == 10
    sim.set_faults(ws_duplicate_every=0, ws_reorder_every=3)
    ids = _trade_ids(run(_raw(url, [], 9)))
    assert ids[2] > ids[3] and ids[5] > ids[6] and sorted(ids) == sorted(set(ids))
    sim.set_faults(ws_reorder_every=0, ws_drop_every=5)
    got = run(_raw(url, [], 20))
    assert len(_trade_ids(got)) == 5 and got[-1][0] == "closed" and got[-1][2] == 1001


def test_ccxt_pro_reconnects_after_dropped_sockets(sim_factory: fixtures.SimFactory) -> None:
    sim = sim_factory(speed=FAST, faults={"ws_drop_every": 3})

    async def body(ex: Any) -> tuple[int, int]:
        ok = failed = 0
        for _ in range(15):
            try:
                await asyncio.wait_for(ex.watch_trades("BTC/USDT"), 10)
                ok += 1
            except ccxt.NetworkError:
                # a watch pending when the socket drops is rejected; the next one reconnects
                failed += 1
        return ok, failed

    ok, failed = run(with_exchange(sim.base_url, body, pro=True))
    assert ok >= 5 and ok + failed == 15
    assert sim.venue.stats["ws_connections"] >= 2
