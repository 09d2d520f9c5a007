"""The exchange adapter against the simulator: typed results, error mapping, retries."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from tests.fixtures.simulator import SimFactory, run
from tradeflow.config import ExchangeSettings
from tradeflow.exchange import (
    AuthenticationFailed,
    BadSymbol,
    InsufficientFunds,
    OrderNotFound,
    OrderRejected,
    RateLimited,
)
from tradeflow.exchange.ccxt_client import ExchangeClient

MIN = 60_000


class Sleeps:
    """Records the backoff delays the adapter chooses, then sleeps them."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(delay)


def client(base_url: str, sleep: Sleeps | None = None, **fields: Any) -> ExchangeClient:
    settings = ExchangeSettings(base_url=base_url, **fields)
    return ExchangeClient(settings, sleep=sleep)


def test_public_calls_return_typed_values_equal_to_what_was_served(
    sim_factory: SimFactory,
) -> None:
    sim = sim_factory()

    async def body() -> None:
        async with client(sim.base_url) as ex:
            markets = await ex.load_markets()
            assert {"BTC/USDT", "ETH/USDT", "SOL/USDT"} <= set(markets)
            assert markets["BTC/USDT"].quote == "USDT" and markets["BTC/USDT"].active
            now = await ex.fetch_time()
            assert abs(now - sim.now_ms()) < 5_000
            since = now - 120 * MIN
            page = await ex.fetch_ohlcv("BTC/USDT", "1m", since=since, limit=50)
            served = sim.venue.klines("BTC/USDT", "1m", since, None, 50, sim.now_ms())
            rows = np.asarray(served.ohlcv(), dtype=float)
            assert len(page) == 50
            np.testing.assert_array_equal(page["open_time"].to_numpy(), rows[:, 0])
            np.testing.assert_allclose(page[["open", "high", "low", "close", "volume"]]
                                       .to_numpy(), rows[:, 1:6])
            # Binance's quote volume and trade count survive ccxt's 6-column rows.
            assert page["quote_volume"].notna().all() and (page["trades"] > 0).all()
            until = page["open_time"].iloc[9]
            bounded = await ex.fetch_ohlcv("BTC/USDT", "1m", since=since, limit=50, until=until)
            assert bounded["open_time"].iloc[-1] == until and len(bounded) == 10
            ticker = await ex.fetch_ticker("ETH/USDT")
            assert ticker.symbol == "ETH/USDT" and ticker.last > 0
            book = await ex.fetch_order_book("BTC/USDT", limit=5)
            assert book.bids[0][0] < book.asks[0][0]

    run(body())


def test_unknown_symbol_is_bad_symbol_and_not_retried(sim_factory: SimFactory) -> None:
    sim, sleeps = sim_factory(), Sleeps()

    async def body() -> None:
        async with client(sim.base_url, sleeps) as ex:
            with pytest.raises(BadSymbol, match="NOPE/USDT"):
                await ex.fetch_ohlcv("NOPE/USDT", "1m", limit=5)

    run(body())
    assert sleeps.delays == []


@pytest.mark.parametrize(
    "faults",
    [
        {"rate_limit_every": 2, "retry_after_s": 1.0},
        {"error_5xx_every": 2},
        {"truncate_every": 2},
        {"truncate_every": 2, "truncate_mode": "connection"},
        {"timeout_every": 2, "timeout_s": 3.0},
    ],
    ids=["429", "5xx", "truncated-json", "dropped-body", "timeout"],
)
def test_transient_faults_are_retried_until_the_page_arrives(
    sim_factory: SimFactory, faults: dict[str, Any]
) -> None:
    sim, sleeps = sim_factory(), Sleeps()

    async def body() -> int:
        async with client(sim.base_url, sleeps, timeout_ms=1000, retry_base_delay_s=0.05) as ex:
            await ex.load_markets()
            now = await ex.fetch_time()
            sim.set_faults(**faults)
            pages = [await ex.fetch_ohlcv("BTC/USDT", "1m", since=now - 300 * MIN, limit=100)
                     for _ in range(3)]
            return sum(len(p) for p in pages)

    assert run(body()) == 300
    assert sleeps.delays, "a fault should have caused at least one retry"
    if "retry_after_s" in faults:
        assert min(sleeps.delays) >= 1.0  # Retry-After is honoured


def test_rate_limit_waits_spend_no_retries_until_their_cap(sim_factory: SimFactory) -> None:
    sim, sleeps = sim_factory(), Sleeps()

    async def body() -> None:
        async with client(sim.base_url, sleeps, max_retries=0, retry_base_delay_s=0.05,
                          rate_limit_max_wait_s=2.5) as ex:
            await ex.load_markets()
            sim.set_faults(rate_limit_every=1, retry_after_s=0.0)
            await ex.fetch_ohlcv("BTC/USDT", "1m", limit=5)

    with pytest.raises(RateLimited) as err:
        run(body())
    # no retries allowed, yet it waited as told (Retry-After: 1) until the waits reached the cap
    assert err.value.retryable and sleeps.delays == pytest.approx([1.0, 1.0, 0.5])


def test_a_429_pauses_every_caller_of_the_client(sim_factory: SimFactory) -> None:
    sim, sleeps = sim_factory(), Sleeps()

    async def body() -> int:
        async with client(sim.base_url, sleeps, max_retries=0) as ex:
            now = await ex.fetch_time()
            await ex.load_markets()
            # fewer callers than N: the simulator's "every Nth" cannot hit each round's first
            sim.set_faults(rate_limit_every=4, retry_after_s=1.0)

            async def three_pages(symbol: str) -> int:
                return sum([len(await ex.fetch_ohlcv(symbol, "1m", since=now - 300 * MIN,
                                                     limit=100)) for _ in range(3)])

            return sum(await asyncio.gather(*map(three_pages, ("BTC/USDT", "ETH/USDT",
                                                               "SOL/USDT"))))

    assert run(body()) == 900  # with no retries at all: the 429s only made callers wait
    assert sleeps.delays and min(sleeps.delays) > 0


def test_markets_are_asked_again_after_a_truncated_exchange_info(
        sim_factory: SimFactory) -> None:
    sim = sim_factory(faults={"truncate_every": 2})

    async def body() -> tuple[set[str], int]:
        async with client(sim.base_url, retry_base_delay_s=0.05) as ex:
            await ex.fetch_time()  # request 1; request 2, the exchangeInfo, is cut short
            markets = await ex.load_markets()
            page = await ex.fetch_ohlcv("BTC/USDT", "1m", limit=50)
            return set(markets), len(page)

    markets, rows = run(body())
    assert {"BTC/USDT", "ETH/USDT", "SOL/USDT"} <= markets and rows == 50


def test_a_plain_http_connection_error_does_not_mention_ssl() -> None:
    import aiohttp

    from tradeflow.exchange.ccxt_client import map_error

    async def refused() -> Exception:
        async with aiohttp.ClientSession() as session:
            try:
                await session.get("http://127.0.0.1:9/")
            except aiohttp.ClientConnectorError as exc:
                return exc
        raise AssertionError("nothing listens on port 9")

    raw = run(refused())
    assert "ssl:default" in str(raw)  # what aiohttp says, even for plain http
    err = map_error(raw)
    assert "127.0.0.1:9" in str(err) and "ssl" not in str(err), str(err)


def test_signed_calls_orders_and_balance(sim_factory: SimFactory) -> None:
    sim = sim_factory()

    async def body() -> None:
        async with client(sim.base_url, api_key="sim-key", api_secret="sim-secret") as ex:
            balance = await ex.fetch_balance()
            assert balance.free["USDT"] == 100_000
            order = await ex.create_order("BTC/USDT", "buy", "market", 0.01,
                                          client_order_id="tf-test-1")
            assert order.client_order_id == "tf-test-1" and order.status == "closed"
            assert order.filled == pytest.approx(0.01)
            again = await ex.fetch_order("BTC/USDT", client_order_id="tf-test-1")
            assert again.id == order.id
            trades = await ex.fetch_my_trades("BTC/USDT")
            assert trades and trades[-1].order_id == order.id
            ticker = await ex.fetch_ticker("BTC/USDT")
            limit = await ex.create_order("BTC/USDT", "buy", "limit", 0.01,
                                          price=round(ticker.last * 0.5, 2),
                                          client_order_id="tf-test-2")
            assert [o.id for o in await ex.fetch_open_orders("BTC/USDT")] == [limit.id]
            canceled = await ex.cancel_order(limit.id, "BTC/USDT")
            assert canceled.status == "canceled"
            with pytest.raises(OrderNotFound):
                await ex.fetch_order("BTC/USDT", client_order_id="tf-never-sent")
            with pytest.raises(InsufficientFunds):
                await ex.create_order("BTC/USDT", "buy", "market", 1_000_000,
                                      client_order_id="tf-test-3")

    run(body())


def test_wrong_secret_is_an_authentication_error_without_secrets_in_it(
    sim_factory: SimFactory,
) -> None:
    sim = sim_factory()

    async def body() -> None:
        async with client(sim.base_url, api_key="sim-key", api_secret="not-the-secret") as ex:
            await ex.fetch_balance()

    with pytest.raises(AuthenticationFailed) as err:
        run(body())
    message = str(err.value)
    assert "not-the-secret" not in message and "sim-key" not in message
    assert "signature=" not in message or "signature=***" in message


def test_watch_ohlcv_streams_candles(sim_factory: SimFactory) -> None:
    sim = sim_factory(speed=60.0, ws_update_ms=100)

    async def body() -> list[Any]:
        async with client(sim.base_url) as ex:
            await ex.load_markets()
            seen = []
            for _ in range(3):
                seen.extend(await ex.watch_ohlcv("BTC/USDT", "1m"))
            return seen

    candles = run(body())
    assert candles and all(c.symbol == "BTC/USDT" and c.high >= c.low for c in candles)


def test_the_market_types_to_load_come_from_the_profile() -> None:
    from tradeflow.config import ExchangeSettings
    from tradeflow.exchange.ccxt_client import build_exchange

    spot = build_exchange(ExchangeSettings())
    both = build_exchange(ExchangeSettings(market_types=("spot", "linear")))
    assert spot.options["fetchMarkets"]["types"] == ["spot"]
    assert both.options["fetchMarkets"]["types"] == ["spot", "linear"]


def test_a_base_url_redirects_the_futures_apis_too() -> None:
    from tradeflow.config import ExchangeSettings
    from tradeflow.exchange.ccxt_client import build_exchange

    ex = build_exchange(ExchangeSettings(base_url="http://127.0.0.1:8765",
                                         market_types=("spot", "linear")))
    api = ex.urls["api"]
    assert api["public"] == "http://127.0.0.1:8765/api/v3"
    assert api["fapiPublic"] == "http://127.0.0.1:8765/fapi/v1"  # linear markets and klines
    assert api["dapiPublic"] == "http://127.0.0.1:8765/dapi/v1"


def test_limit_orders_with_time_in_force_post_only_and_stops(sim_factory: SimFactory) -> None:
    from tradeflow.exchange.order_rules import OrderRequest, prepare

    sim = sim_factory()

    async def body() -> None:
        async with client(sim.base_url, api_key="sim-key", api_secret="sim-secret") as ex:
            market = (await ex.load_markets())["BTC/USDT"]
            last = (await ex.fetch_ticker("BTC/USDT")).last
            far_below = prepare(OrderRequest("buy", 0.01, "limit", price=last * 0.9,
                                             time_in_force="IOC"), market, last)
            ioc = await ex.place_order("BTC/USDT", far_below, client_order_id="tf-ioc")
            assert (ioc.status, ioc.filled) == ("expired", 0.0)
            marketable = prepare(OrderRequest("buy", 0.01, "limit", price=last * 1.1,
                                              post_only=True), market, last)
            with pytest.raises(OrderRejected):
                await ex.place_order("BTC/USDT", marketable, client_order_id="tf-maker")
            bought = await ex.place_order("BTC/USDT", prepare(OrderRequest("buy", 0.01), market,
                                          last), client_order_id="tf-entry")
            assert bought.status == "closed"
            stop = prepare(OrderRequest("sell", 0.005, "stop_loss_limit", price=last * 0.94,
                                        stop_price=last * 0.95), market, last)
            resting = await ex.place_order("BTC/USDT", stop, client_order_id="tf-stop")
            assert resting.status == "open"
            (open_,) = await ex.fetch_open_orders("BTC/USDT")
            assert open_.client_order_id == "tf-stop"

    run(body())
