"""Public REST endpoints through ccxt's real binance class, checked against the venue."""

from __future__ import annotations

import socket
from typing import Any

import aiohttp
import ccxt
import numpy as np
import pytest

from simulator.server import SimulatorServer, start_in_thread
from simulator.settings import SimulatorSettings
from tests.fixtures import simulator as fixtures
from tests.fixtures.simulator import START_MS, run, with_exchange

MIN = 60_000
FROZEN = 1e-9  # a clock that practically stands still, for exact "now" comparisons


async def get(url: str, **params: Any) -> tuple[int, dict, Any]:
    async with aiohttp.ClientSession() as session, session.get(url, params=params) as resp:
        return resp.status, dict(resp.headers), await resp.json(content_type=None)


def test_load_markets_only_reads_exchange_info(sim_factory: fixtures.SimFactory) -> None:
    sim = sim_factory()

    async def body(ex: Any) -> dict:
        return await ex.load_markets()

    markets = run(with_exchange(sim.base_url, body))
    assert set(markets) == {"BTC/USDT", "ETH/USDT", "SOL/USDT"}
    assert sim.venue.stats["requests"] == 1
    btc = markets["BTC/USDT"]
    assert btc["spot"] and btc["active"] and btc["id"] == "BTCUSDT"
    assert btc["precision"] == {"amount": 1e-05, "price": 0.01, "base": 1e-08, "quote": 1e-08}
    assert btc["limits"]["cost"]["min"] == 5.0 and btc["limits"]["amount"]["min"] == 1e-05


def test_fetch_ohlcv_returns_the_model_candles(sim_factory: fixtures.SimFactory) -> None:
    sim = sim_factory()
    since = sim.venue.history_start_ms + 17 * MIN

    async def body(ex: Any) -> list:
        return [
            await ex.fetch_ohlcv("ETH/USDT", "1m", since, 1000),
            await ex.fetch_ohlcv("ETH/USDT", "1h", since, 30),
            await ex.fetch_ohlcv("ETH/USDT", "1d", None, 5),
        ]

    minutes, hours, days = run(with_exchange(sim.base_url, body))
    venue = sim.venue
    assert minutes == venue.klines("ETH/USDT", "1m", since, limit=1000).ohlcv().tolist()
    assert hours == venue.klines("ETH/USDT", "1h", since, limit=30).ohlcv().tolist()
    assert [r[0] for r in days] == venue.klines("ETH/USDT", "1d", limit=5).open_time.tolist()


def test_thirty_days_paginate_to_43200_consecutive_candles(
    sim_factory: fixtures.SimFactory,
) -> None:
    sim = sim_factory(history_days=30)
    since = sim.venue.history_start_ms

    async def body(ex: Any) -> tuple[list, list]:
        params = {"paginate": True, "paginationCalls": 50, "until": START_MS - 1}
        paged = await ex.fetch_ohlcv("BTC/USDT", "1m", since, None, params)
        looped: list = []
        cursor = since
        while cursor < START_MS:
            page = await ex.fetch_ohlcv("BTC/USDT", "1m", cursor, 1000, {"until": START_MS - 1})
            looped += page
            cursor = page[-1][0] + MIN
        return paged, looped

    paged, looped = run(with_exchange(sim.base_url, body, enableRateLimit=False))
    for rows in (paged, looped):
        times = np.array([r[0] for r in rows])
        assert times.size == 43_200 == np.unique(times).size
        assert times[0] == since and (np.diff(times) == MIN).all()
    expected = sim.venue.klines("BTC/USDT", "1m", since, START_MS - 1, limit=50_000).ohlcv()
    assert looped == expected.tolist()


def test_raw_klines_have_binance_columns_and_errors(sim_factory: fixtures.SimFactory) -> None:
    sim = sim_factory()
    url = sim.base_url + "/api/v3/klines"

    async def body() -> list:
        return [
            await get(url, symbol="BTCUSDT", interval="5m", limit=3),
            await get(url, symbol="BTCUSDT", interval="1m", limit=1000),
            await get(url, symbol="NOPEUSDT", interval="1m"),
            await get(url, symbol="BTCUSDT", interval="7m"),
            await get(url, interval="1m"),
            await get(url, symbol="BTCUSDT", interval="1m", startTime=5, endTime=4),
        ]

    ok, big, bad_symbol, bad_interval, missing, reversed_range = run(body())
    status, headers, rows = ok
    assert status == 200 and len(rows) == 3
    assert [type(v) for v in rows[0]] == [
        int,
        str,
        str,
        str,
        str,
        str,
        int,
        str,
        int,
        str,
        str,
        str,
    ]
    assert rows[-1][6] == rows[-1][0] + 5 * MIN - 1
    assert headers["x-mbx-used-weight"] == headers["x-mbx-used-weight-1m"] == "1"
    assert big[1]["x-mbx-used-weight"] == "6"  # limit 1000 weighs 5
    assert bad_symbol[:1] + (bad_symbol[2],) == (400, {"code": -1121, "msg": "Invalid symbol."})
    assert bad_interval[2] == {"code": -1120, "msg": "Invalid interval."}
    assert missing[2]["code"] == -1102 and reversed_range[2]["code"] == -1023


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        ({"symbol": "NOPEUSDT", "interval": "1m"}, ccxt.BadSymbol),
        ({"symbol": "BTCUSDT", "interval": "7m"}, ccxt.BadRequest),
    ],
)
def test_ccxt_maps_kline_errors(
    sim_factory: fixtures.SimFactory, request_: dict, error: type[Exception]
) -> None:
    sim = sim_factory()

    async def body(ex: Any) -> None:
        await ex.publicGetKlines(request_)

    with pytest.raises(error):
        run(with_exchange(sim.base_url, body))


def test_ticker_book_trades_and_time_match_the_venue(sim_factory: fixtures.SimFactory) -> None:
    sim = sim_factory(speed=FROZEN)
    venue, now = sim.venue, sim.now_ms()

    async def body(ex: Any) -> dict:
        return {
            "ticker": await ex.fetch_ticker("SOL/USDT"),
            "book": await ex.fetch_order_book("SOL/USDT", 20),
            "trades": await ex.fetch_trades("SOL/USDT", limit=50),
            "since": await ex.fetch_trades("SOL/USDT", since=now - 10 * MIN, limit=20),
            "raw": await ex.publicGetTrades({"symbol": "SOLUSDT", "limit": 5}),
            "time": await ex.fetch_time(),
            "prices": await ex.fetch_last_prices(["SOL/USDT"]),
            "bidask": await ex.fetch_bids_asks(["SOL/USDT"]),
        }

    got = run(with_exchange(sim.base_url, body))
    spec = venue.specs["SOL/USDT"]
    # decimal strings parse to the double nearest to units / 10**decimals
    p_div, q_div = 10**spec.price_decimals, 10**spec.qty_decimals
    t = venue.ticker_24h("SOL/USDT", now)
    assert t is not None
    ticker = got["ticker"]
    assert ticker["last"] == t.last / p_div and ticker["open"] == t.open / p_div
    assert ticker["high"] == t.high / p_div and ticker["baseVolume"] == t.volume / q_div
    bids, asks, update_id = venue.book("SOL/USDT", 20, now)
    assert got["book"]["bids"] == [[p / p_div, q / q_div] for p, q in bids]
    assert got["book"]["asks"][0] == [asks[0][0] / p_div, asks[0][1] / q_div]
    assert got["book"]["nonce"] == update_id
    # ccxt's fetch_trades reads aggTrades: one per taker order and price
    recent = venue.agg_trades("SOL/USDT", limit=50, now_ms=now)
    assert [int(tr["id"]) for tr in got["trades"]] == recent.ids.tolist()
    assert [tr["price"] for tr in got["trades"]] == (recent.prices / p_div).tolist()
    assert all(tr["timestamp"] >= now - 10 * MIN for tr in got["since"])
    raw_ids = venue.recent_trades("SOL/USDT", 5, now).ids
    assert len(got["since"]) == 20 and got["raw"][-1]["id"] == raw_ids[-1]
    assert got["time"] == now
    assert got["prices"]["SOL/USDT"]["price"] == ticker["last"]
    assert got["bidask"]["SOL/USDT"]["bid"] == bids[0][0] / p_div


def test_in_process_server_and_thread_handle_context_managers() -> None:
    settings = SimulatorSettings(port=0, start_time_ms=START_MS, history_days=1.0)

    async def body() -> tuple[str, Any]:
        async with SimulatorServer(settings) as sim:
            return sim.ws_url, (await get(sim.base_url + "/api/v3/time"))[2]

    ws_url, payload = run(body())
    assert ws_url.startswith("ws://127.0.0.1:") and ws_url.endswith("/ws")
    assert START_MS <= payload["serverTime"] < START_MS + 60_000
    with start_in_thread(settings) as handle:
        assert handle.settings.port > 0 and handle.now_ms() >= START_MS
        port = handle.settings.port
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
