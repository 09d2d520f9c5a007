"""USDⓈ-M perpetuals (``/fapi/v1``) through ccxt's real binance class loading linear markets."""

from __future__ import annotations

from typing import Any

import aiohttp
import ccxt
import pytest

from tests.fixtures import simulator as fixtures
from tests.fixtures.simulator import CCXT_OPTIONS, START_MS, run, with_exchange

MIN = 60_000
LINEAR = {**CCXT_OPTIONS, "fetchMarkets": {"types": ["linear"]}}
BOTH = {**CCXT_OPTIONS, "fetchMarkets": {"types": ["spot", "linear"]}}


async def get(url: str, **params: Any) -> tuple[int, dict, Any]:
    async with aiohttp.ClientSession() as session, session.get(url, params=params) as resp:
        return resp.status, dict(resp.headers), await resp.json(content_type=None)


def test_linear_markets_load_as_perpetuals_settled_in_usdt(
    sim_factory: fixtures.SimFactory,
) -> None:
    sim = sim_factory(symbols=("BTC/USDT", "ETH/BTC", "SOL/USDT"))

    async def body(ex: Any) -> dict:
        return await ex.load_markets()

    linear = run(with_exchange(sim.base_url, body, options=LINEAR))
    assert set(linear) == {"BTC/USDT:USDT", "SOL/USDT:USDT"}  # ETH/BTC has no USDⓈ-M contract
    btc = linear["BTC/USDT:USDT"]
    assert btc["swap"] and btc["linear"] and not btc["spot"] and btc["active"]
    assert (btc["id"], btc["settle"], btc["contractSize"], btc["expiry"]) == (
        "BTCUSDT", "USDT", 1.0, None)
    # the perpetual trades on the spot market's tick and lot, since it shares its candles
    assert btc["precision"]["price"] == 0.01 and btc["precision"]["amount"] == 1e-05
    assert btc["limits"]["cost"]["min"] == 100.0 and btc["limits"]["market"]["max"] == 120_000
    both = run(with_exchange(sim.base_url, body, options=BOTH))
    assert set(both) == {"BTC/USDT", "ETH/BTC", "SOL/USDT", "BTC/USDT:USDT", "SOL/USDT:USDT"}
    assert sim.venue.stats["requests"] == 3  # one fapi exchangeInfo, then one of each


def test_exchange_info_lists_contracts_as_binance_does(sim_factory: fixtures.SimFactory) -> None:
    sim = sim_factory(listing_delays_days={"SOL/USDT": 5.0})
    status, headers, info = run(get(f"{sim.base_url}/fapi/v1/exchangeInfo"))
    assert status == 200 and headers["x-mbx-used-weight-1m"] == "1"
    by_id = {s["symbol"]: s for s in info["symbols"]}
    btc = by_id["BTCUSDT"]
    assert (btc["pair"], btc["contractType"], btc["marginAsset"], btc["deliveryDate"]) == (
        "BTCUSDT", "PERPETUAL", "USDT", 4_133_404_800_000)
    assert btc["status"] == "TRADING" and btc["onboardDate"] == sim.venue.history_start_ms
    assert by_id["SOLUSDT"]["status"] == "PENDING_TRADING"  # listed after the simulated now
    filters = {f["filterType"]: f for f in btc["filters"]}
    assert list(filters) == ["PRICE_FILTER", "LOT_SIZE", "MARKET_LOT_SIZE", "MAX_NUM_ORDERS",
                             "MAX_NUM_ALGO_ORDERS", "MIN_NOTIONAL", "PERCENT_PRICE"]
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01"
    assert filters["LOT_SIZE"]["stepSize"] == "0.00001"
    assert filters["MIN_NOTIONAL"] == {"filterType": "MIN_NOTIONAL", "notional": "100"}
    assert info["rateLimits"][0]["limit"] == 2400 and {a["asset"] for a in info["assets"]} == {
        "BTC", "ETH", "SOL", "USDT"}


def test_perpetual_klines_are_the_spot_candles(sim_factory: fixtures.SimFactory) -> None:
    sim = sim_factory()
    since = sim.venue.history_start_ms + 7 * MIN

    async def body(ex: Any) -> list:
        return [
            await ex.fetch_ohlcv("ETH/USDT:USDT", "1m", since, 1000),
            await ex.fetch_ohlcv("ETH/USDT:USDT", "1h", since, 30),
            await ex.fetch_ohlcv("ETH/USDT:USDT", "1m", None, 3, {"until": START_MS - 1}),
            await ex.fetch_time(),
        ]

    minutes, hours, last, now = run(with_exchange(sim.base_url, body, options=LINEAR))
    venue = sim.venue
    assert minutes == venue.klines("ETH/USDT", "1m", since, limit=1000).ohlcv().tolist()
    assert hours == venue.klines("ETH/USDT", "1h", since, limit=30).ohlcv().tolist()
    assert [r[0] for r in last] == [START_MS - 3 * MIN, START_MS - 2 * MIN, START_MS - MIN]
    assert now >= START_MS
    # the raw rows are spot's 12 columns; futures allow up to 1500 rows a request
    used = int(run(get(f"{sim.base_url}/fapi/v1/ping"))[1]["x-mbx-used-weight-1m"])
    url = f"{sim.base_url}/fapi/v1/klines"
    status, headers, rows = run(get(url, symbol="BTCUSDT", interval="1m",
                                    startTime=sim.venue.history_start_ms, limit=2000))
    assert status == 200 and len(rows) == 1500
    assert int(headers["x-mbx-used-weight-1m"]) == used + 10  # Binance's weight of > 1000 rows
    assert rows[:5] == run(get(f"{sim.base_url}/api/v3/klines", symbol="BTCUSDT",
                               interval="1m", startTime=sim.venue.history_start_ms,
                               limit=5))[2]


@pytest.mark.parametrize(("params", "code"), [
    ({"symbol": "BTCUSDT", "interval": "1s"}, -1120),  # futures have no 1s klines
    ({"symbol": "BTCUSDC", "interval": "1m"}, -1121),
    ({"interval": "1m"}, -1102),
    ({"symbol": "BTCUSDT"}, -1102),
])
def test_bad_kline_requests_get_binance_errors(
    sim_factory: fixtures.SimFactory, params: dict, code: int
) -> None:
    sim = sim_factory()
    status, _, body = run(get(f"{sim.base_url}/fapi/v1/klines", **params))
    assert status == 400 and body["code"] == code


def test_faults_and_the_perpetuals_switch_apply_to_fapi(sim_factory: fixtures.SimFactory) -> None:
    sim = sim_factory(perpetuals=False)
    status, _, info = run(get(f"{sim.base_url}/fapi/v1/exchangeInfo"))
    assert status == 200 and info["symbols"] == []
    assert run(get(f"{sim.base_url}/fapi/v1/ping"))[:3:2] == (200, {})
    sim.set_faults(rate_limit_every=1)

    async def body(ex: Any) -> dict:
        return await ex.load_markets()

    with pytest.raises(ccxt.DDoSProtection):
        run(with_exchange(sim.base_url, body, options=LINEAR))
