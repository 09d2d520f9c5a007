"""Order flow through ccxt and ccxt.pro: trade history paging, the book over websocket, tickers."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import aiohttp
import ccxt
import orjson
import pytest

from tests.fixtures import simulator as fixtures
from tests.fixtures.simulator import START_MS, run, with_exchange

MIN = 60_000
FROZEN = 1e-9
FAST = 60.0


def units(text: str, decimals: int) -> int:
    return int(Decimal(text) * 10**decimals)


def test_agg_trades_paged_by_id_cover_every_trade_once(sim_factory: fixtures.SimFactory) -> None:
    sim = sim_factory(speed=FROZEN)
    venue, sym = sim.venue, "ETH/USDT"
    spec = venue.specs[sym]
    t0, t1 = START_MS - 120 * MIN, START_MS - 60 * MIN  # one hour

    async def body(ex: Any) -> dict:
        first = await ex.publicGetAggTrades({"symbol": "ETHUSDT", "startTime": t0, "limit": 1})
        pages, cursor = [], int(first[0]["a"])
        while True:
            page = await ex.publicGetAggTrades({"symbol": "ETHUSDT", "fromId": cursor})
            pages += [r for r in page if int(r["T"]) < t1]
            if int(page[-1]["T"]) >= t1:
                break
            cursor = int(page[-1]["a"]) + 1
        windows = []
        for start in range(t0, t1, MIN):  # time windows, as ccxt's `since` pages
            params = {"until": start + MIN - 1}
            windows += await ex.fetch_trades(sym, since=start, limit=1000, params=params)
        last = await ex.publicGetAggTrades({"symbol": "ETHUSDT", "endTime": t1 - 1, "limit": 5})
        return {"pages": pages, "windows": windows, "last": last}

    got = run(with_exchange(sim.base_url, body, enableRateLimit=False))
    pages = got["pages"]
    ids = [int(r["a"]) for r in pages]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    trade_ids = [(int(r["f"]), int(r["l"])) for r in pages]
    assert all(b[0] == a[1] + 1 for a, b in zip(trade_ids, trade_ids[1:], strict=False))
    candles = venue.klines(sym, "1m", t0, t1 - 1, limit=60)
    assert trade_ids[0][0] == candles.first_id[0] and trade_ids[-1][1] == candles.last_id[-1]
    volume = sum(units(r["q"], spec.qty_decimals) for r in pages)
    quote = sum(units(r["p"], spec.price_decimals) * units(r["q"], spec.qty_decimals)
                for r in pages)  # fmt: skip
    unit = 10 ** (8 - spec.price_decimals - spec.qty_decimals)
    assert volume == candles.volume.sum() and quote * unit == candles.quote.sum()
    assert [int(t["id"]) for t in got["windows"]] == ids
    assert [int(r["a"]) for r in got["last"]] == ids[-5:]


def test_paging_rules_and_historical_trades(sim_factory: fixtures.SimFactory) -> None:
    sim = sim_factory(speed=FROZEN)
    venue = sim.venue
    url = sim.base_url + "/api/v3"
    from_id = int(venue.trades_from("SOL/USDT", start=START_MS - 30 * MIN, limit=1).ids[0])

    async def body() -> dict:
        async with aiohttp.ClientSession() as session:

            async def get(path: str, **params: Any) -> tuple[int, Any]:
                async with session.get(url + path, params=params) as resp:
                    return resp.status, await resp.json()

            return {
                "mixed": await get("/aggTrades", symbol="SOLUSDT", fromId=5, startTime=START_MS),
                "old": await get("/historicalTrades", symbol="SOLUSDT", fromId=from_id, limit=700),
                "recent": await get("/historicalTrades", symbol="SOLUSDT", limit=3),
            }

    got = run(body())
    assert got["mixed"] == (
        400,
        {"code": -1128, "msg": "Combination of optional parameters invalid."},
    )
    status, old = got["old"]
    assert status == 200 and [r["id"] for r in old] == list(range(from_id, from_id + 700))
    assert got["recent"][1][-1]["id"] == venue.recent_trades("SOL/USDT", 1).ids[-1]

    async def with_ccxt(ex: Any) -> list:
        params = {"fetchTradesMethod": "publicGetHistoricalTrades", "fromId": from_id}
        return await ex.fetch_trades("SOL/USDT", limit=10, params=params)

    # ccxt sends its key to historicalTrades; Binance (and the simulator) do not need one
    trades = run(with_exchange(sim.base_url, with_ccxt, api_key="sim-key", secret="sim-secret"))
    assert [int(t["id"]) for t in trades] == list(range(from_id, from_id + 10))


def _book_equal(ob: Any, venue: Any, symbol: str) -> bool:
    spec = venue.specs[symbol]
    p, q = 10**spec.price_decimals, 10**spec.qty_decimals
    bids, asks, _ = venue.book(symbol, 1000, ob["timestamp"])
    return (ob["bids"] == [[a / p, b / q] for a, b in bids]
            and ob["asks"] == [[a / p, b / q] for a, b in asks])  # fmt: skip


def test_watch_order_book_keeps_the_venue_book_through_a_gap(
    sim_factory: fixtures.SimFactory,
) -> None:
    sim = sim_factory(speed=FAST)

    async def body(ex: Any) -> dict:
        out: dict = {"equal": [], "resyncs": 0}
        while len(out["equal"]) < 10:
            ob = await asyncio.wait_for(ex.watch_order_book("SOL/USDT"), 10)
            if ob["timestamp"] is not None:  # the bare REST snapshot carries no time
                out["equal"].append(_book_equal(ob, sim.venue, "SOL/USDT"))
        sim.set_faults(ws_depth_gap_every=4)
        while out["resyncs"] < 1:
            try:
                await asyncio.wait_for(ex.watch_order_book("SOL/USDT"), 10)
            except ccxt.ChecksumError:
                out["resyncs"] += 1  # an update-id gap: ccxt drops the book and resubscribes
        sim.set_faults(ws_depth_gap_every=0)
        ob = None
        for _ in range(8):
            ob = await asyncio.wait_for(ex.watch_order_book("SOL/USDT"), 10)
        out["after"] = _book_equal(ob, sim.venue, "SOL/USDT")
        out["depth"] = (len(ob["bids"]), len(ob["asks"]))
        return out

    got = run(with_exchange(sim.base_url, body, pro=True))
    assert all(got["equal"]) and got["resyncs"] == 1 and got["after"]
    assert got["depth"] == (1000, 1000)


async def _manage_local_book(url: str, rest: str, seconds: float) -> tuple[dict, dict, int]:
    """Binance's documented "how to manage a local order book correctly", step by step."""
    buffered: list[dict] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        first = orjson.loads((await asyncio.wait_for(ws.receive(), 10)).data)
        buffered.append(first)
        while True:
            async with session.get(rest, params={"symbol": "ETHUSDT", "limit": 5000}) as resp:
                snap = await resp.json()
            if snap["lastUpdateId"] >= first["U"]:
                break
        book = {"b": {}, "a": {}}
        for side, key in (("b", "bids"), ("a", "asks")):
            book[side] = {Decimal(p): Decimal(q) for p, q in snap[key]}
        last_id, last_event = snap["lastUpdateId"], first
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        while loop.time() < until:
            if not buffered:
                buffered.append(orjson.loads((await asyncio.wait_for(ws.receive(), 10)).data))
            event = buffered.pop(0)
            if event["u"] <= last_id:
                continue
            assert event["U"] <= last_id + 1, "missed events: restart"
            for side in ("b", "a"):
                for p, q in event[side]:
                    if Decimal(q):
                        book[side][Decimal(p)] = Decimal(q)
                    else:
                        book[side].pop(Decimal(p), None)
            last_id, last_event = event["u"], event
    return book, last_event, last_id


def test_the_documented_local_book_procedure_ends_with_the_venue_book(
    sim_factory: fixtures.SimFactory,
) -> None:
    sim = sim_factory(speed=FAST / 4, book_levels=2000)
    url = sim.ws_url + "/ethusdt@depth@100ms"
    book, event, last_id = run(_manage_local_book(url, sim.base_url + "/api/v3/depth", 2.0))
    bids, asks, update_id = sim.venue.book("ETH/USDT", 5000, event["E"])
    assert update_id == last_id
    spec = sim.venue.specs["ETH/USDT"]
    p, q = Decimal(10) ** spec.price_decimals, Decimal(10) ** spec.qty_decimals
    assert sorted(book["b"].items(), reverse=True) == [(a / p, b / q) for a, b in bids]
    assert sorted(book["a"].items()) == [(a / p, b / q) for a, b in asks]
    assert len(bids) == len(asks) == 2000


def test_watch_trades_ticker_and_bids_asks_parse(sim_factory: fixtures.SimFactory) -> None:
    sim = sim_factory(speed=FAST, ws_update_ms=100)

    async def body(ex: Any) -> dict:
        trades: list = []
        while len(trades) < 30:
            trades += await asyncio.wait_for(ex.watch_trades("BTC/USDT"), 10)
        aggs = await asyncio.wait_for(ex.watch_trades("ETH/USDT", params={"name": "aggTrade"}),
                                      10)  # fmt: skip
        ticker = await asyncio.wait_for(ex.watch_ticker("BTC/USDT", {"name": "ticker"}), 10)
        quotes = await asyncio.wait_for(ex.watch_bids_asks(["BTC/USDT"]), 10)
        return {"trades": trades, "aggs": aggs, "ticker": ticker, "quotes": quotes}

    got = run(with_exchange(sim.base_url, body, pro=True))
    ids = [int(t["id"]) for t in got["trades"]]
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # every trade, in order
    assert all(t["side"] in ("buy", "sell") and t["amount"] > 0 for t in got["trades"])
    agg_ids = [int(t["id"]) for t in got["aggs"]]
    assert agg_ids == sorted(agg_ids) and got["aggs"][0]["info"]["e"] == "aggTrade"
    ticker = got["ticker"]
    assert ticker["bid"] < ticker["ask"] and ticker["last"] > 0 and ticker["quoteVolume"] > 0
    quote = got["quotes"]["BTC/USDT"]
    assert quote["bid"] < quote["ask"] and quote["bidVolume"] > 0 and quote["askVolume"] > 0
    bids, asks, update_id = sim.venue.book("BTC/USDT", 1, quote["timestamp"] or sim.now_ms())
    assert int(quote["info"]["u"]) <= sim.venue.books["BTC/USDT"].update_id(sim.now_ms())


def test_rest_extras_through_ccxt(sim_factory: fixtures.SimFactory) -> None:
    sim = sim_factory(speed=FROZEN)
    venue = sim.venue

    async def body(ex: Any) -> dict:
        return {
            "seconds": await ex.fetch_ohlcv("BTC/USDT", "1s", START_MS - 90_000, 60),
            "avg": await ex.publicGetAvgPrice({"symbol": "BTCUSDT"}),
            "ui": await ex.publicGetUiKlines({"symbol": "BTCUSDT", "interval": "1m", "limit": 5}),
            "hour": await ex.publicGetTicker({"symbol": "BTCUSDT", "windowSize": "1h"}),
            "mini": await ex.publicGetTicker({"symbols": '["BTCUSDT"]', "type": "MINI"}),
            "book": await ex.fetch_bids_asks(["BTC/USDT"]),
        }

    got = run(with_exchange(sim.base_url, body))
    seconds = venue.klines("BTC/USDT", "1s", START_MS - 90_000, limit=60)
    assert got["seconds"] == seconds.ohlcv().tolist()
    price, last_ms = venue.avg_price("BTC/USDT")
    assert got["avg"] == {"mins": 5, "price": f"{Decimal(price) / 10**8:.8f}", "closeTime": last_ms}
    ui, raw = got["ui"], venue.klines("BTC/USDT", "1m", limit=5)
    assert [r[1] for r in ui[1:]] == [r[4] for r in ui[:-1]]  # opens at the close before
    assert [r[4] for r in ui] == [f"{c / 100:.8f}" for c in raw.close.tolist()]
    hour = got["hour"]
    assert hour["openTime"] == START_MS - 60 * MIN and hour["closeTime"] == sim.now_ms()
    assert int(hour["count"]) == int(hour["lastId"]) - int(hour["firstId"]) + 1
    assert set(got["mini"][0]) == {"symbol", "openPrice", "highPrice", "lowPrice", "lastPrice",
                                   "volume", "quoteVolume", "openTime", "closeTime", "firstId",
                                   "lastId", "count"}  # fmt: skip
    bids, asks, _ = venue.book("BTC/USDT", 1)
    assert got["book"]["BTC/USDT"]["ask"] == asks[0][0] / 100


@pytest.mark.parametrize("interval", ["1s", "1m"])
def test_kline_streams_include_one_second(sim_factory: fixtures.SimFactory, interval: str) -> None:
    sim = sim_factory(speed=1.0, ws_update_ms=100)

    async def body(ex: Any) -> list:
        return await asyncio.wait_for(ex.watch_ohlcv("SOL/USDT", interval), 10)

    candles = run(with_exchange(sim.base_url, body, pro=True))
    assert candles and candles[-1][5] >= 0
