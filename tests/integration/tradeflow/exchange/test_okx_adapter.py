"""The adapter on the second venue: ccxt's own okx classes against the simulator's OKX API,
chosen by the exchange id alone, with the same typed results (and the same prices) as on
Binance."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.fixtures.simulator import SimFactory, run
from tradeflow.config import ExchangeSettings
from tradeflow.exchange import BadSymbol, RateLimited
from tradeflow.exchange.ccxt_client import ExchangeClient
from tradeflow.exchange.watch import MarketWatch

MIN = 60_000


def client(base_url: str, exchange_id: str = "okx", **fields: Any) -> ExchangeClient:
    return ExchangeClient(ExchangeSettings(id=exchange_id, base_url=base_url, **fields))


def test_public_calls_on_okx_equal_what_binance_serves(sim_factory: SimFactory) -> None:
    sim = sim_factory(venues=("binance", "okx"), speed=1e-9)

    async def body() -> None:
        async with client(sim.base_url) as okx, client(sim.base_url, "binance") as binance:
            markets = await okx.load_markets()
            assert set(markets) == {"BTC/USDT", "ETH/USDT", "SOL/USDT"}
            assert markets["BTC/USDT"].price_step == 0.01 and markets["BTC/USDT"].active
            assert okx.exchange.market("BTC/USDT")["id"] == "BTC-USDT"
            assert okx.ohlcv_page_limit == 300
            assert abs(await okx.fetch_time() - sim.now_ms()) < 5_000
            now = sim.now_ms()
            # wider than a page: OKX answers the newest candles before `until`, so the adapter
            # bounds the page to `limit` from `since` (else the first 700 would be skipped)
            since, until = now - 1000 * MIN, now - 10 * MIN
            page = await okx.fetch_ohlcv("BTC/USDT", "1m", since=since, limit=300, until=until)
            twin = await binance.fetch_ohlcv("BTC/USDT", "1m", since=since, limit=300,
                                             until=until)
            assert len(page) == 300 and int(page["open_time"].iloc[0]) == since // MIN * MIN
            core = ["open_time", "open", "high", "low", "close", "volume"]
            np.testing.assert_array_equal(page[core].to_numpy(), twin[core].to_numpy())
            big = await okx.fetch_ohlcv("BTC/USDT", "1m", since=since, limit=1000, until=until)
            assert big.equals(page)  # the backfill's 1,000 is OKX's 300, still from `since`
            last = await okx.fetch_ohlcv("BTC/USDT", "1m", since=until - 5 * MIN, limit=300,
                                         until=until)
            assert int(last["open_time"].iloc[-1]) == until // MIN * MIN  # `until` inclusive
            ticker, twin_ticker = (await okx.fetch_ticker("BTC/USDT"),
                                   await binance.fetch_ticker("BTC/USDT"))
            assert ticker.last == twin_ticker.last and ticker.bid == twin_ticker.bid
            book = await okx.fetch_order_book("BTC/USDT", 5)
            assert len(book.bids) == 5 and book.bids[0][0] < book.asks[0][0]
            with pytest.raises(BadSymbol):
                await okx.fetch_ohlcv("DOGE/USDT", "1m")

    run(body())


def test_rate_limit_on_okx_is_retried_as_rate_limited(sim_factory: SimFactory) -> None:
    sim = sim_factory(venues=("okx",), speed=1e-9)
    sim.set_faults(rate_limit_every=2)

    async def body() -> None:
        async with client(sim.base_url, max_retries=0, rate_limit_max_wait_s=0) as ex:
            await ex.load_markets()
            with pytest.raises(RateLimited):
                await ex.fetch_time()

    run(body())


def test_okx_streams_through_the_market_watch(sim_factory: SimFactory) -> None:
    """Candles arrive without a closed flag (OKX's confirm is dropped by ccxt); trades, the
    ticker and the book arrive typed."""
    sim = sim_factory(venues=("okx",), speed=60.0)

    async def body() -> None:
        async with client(sim.base_url) as ex:
            watch = MarketWatch(ex)
            assert not watch.trades_by_id
            candles = await watch.watch("candles", "BTC/USDT")
            assert candles and all(c.closed is None for c in candles)
            trades = await watch.watch("trades", "BTC/USDT")
            assert len(trades) and set(trades["side"]) <= {"buy", "sell"}
            ticker = await watch.watch("ticker", "BTC/USDT")
            assert ticker.bid is not None and ticker.ask is not None and ticker.bid < ticker.ask
            book = await watch.watch("book", "BTC/USDT")
            assert book.bids and book.asks and book.bids[0][0] < book.asks[0][0]

    run(body())


def test_backfill_on_okx_under_faults_loses_and_repeats_nothing(sim_factory: SimFactory) -> None:
    """OKX's 429s (code 50011, no Retry-After), 503s (50001), cut bodies and stalls, and an
    outage: every candle once, the outage recorded as the only gap."""
    from tradeflow import timeframes
    from tradeflow.market.backfill import EMPTY_TWICE, Window, backfill_many
    from tradeflow.market.store import MarketStore, SeriesKey

    sim = sim_factory(venues=("okx",), history_days=1.5, speed=1e-9)
    now = sim.now_ms()
    outage = (timeframes.floor(now - 600 * MIN, "1m"), timeframes.floor(now - 600 * MIN, "1m")
              + 44 * MIN)
    sim.add_outage(*outage)
    sim.set_faults(rate_limit_every=7, error_5xx_every=11, truncate_every=13, timeout_every=17,
                   timeout_s=2.0)
    store = MarketStore(":memory:")
    series = [SeriesKey("okx", s, tf) for s in ("BTC/USDT", "ETH/USDT") for tf in ("1m", "5m")]

    async def body() -> list[Any]:
        async with client(sim.base_url, retry_base_delay_s=0.05, timeout_ms=1000) as ex:
            return await backfill_many(ex, store, series, Window(now - 1440 * MIN), now,
                                       empty_retry_delay=0.05)

    reports = run(body())
    refused = sim.venue.faults.requests - sim.venue.stats["requests"]  # 429s and 503s
    assert refused >= 4, refused
    assert [r.status for r in reports] == ["ok"] * 4, [r.error for r in reports]
    assert store.duplicate_count() == 0
    for report in reports:
        assert report.missing == 0, report
        gaps = store.unfillable(report.key)
        assert len(gaps) == 1 and gaps[0].reason == EMPTY_TWICE
        assert timeframes.floor(outage[0], report.key.timeframe) <= gaps[0].start_time
        assert gaps[0].end_time < outage[1]
        stored = store.read(report.key)
        served = sim.venue.klines(report.key.symbol, report.key.timeframe,
                                  start=int(stored["open_time"].iloc[0]), limit=2000, now_ms=now)
        closed = served.open_time[served.closed]
        assert stored["open_time"].tolist() == closed.tolist()


def test_orders_and_balance_on_okx(sim_factory: SimFactory) -> None:
    """OKX's private API through the adapter: a market order comes back filled (OKX only
    acknowledges it: the adapter asks for the fills), is found again by our client id (which
    OKX would refuse as ``tf-...``: sent as ``tf...``), a resting order cancels, and OKX's
    refusals map to the typed errors."""
    from tradeflow.exchange import AuthenticationFailed, InsufficientFunds, OrderNotFound
    from tradeflow.exchange.order_rules import OrderRequest

    sim = sim_factory(venues=("okx",), speed=1.0)
    keys = {"api_key": "sim-key", "api_secret": "sim-secret", "api_password": "sim-passphrase"}
    cid = "tf-" + "ab" * 16

    async def body() -> None:
        async with client(sim.base_url, **keys) as ex:
            start = await ex.fetch_balance()
            assert start.free["USDT"] == 100_000.0
            order = await ex.create_order("BTC/USDT", "buy", "market", 0.01, client_order_id=cid)
            assert order.status == "closed" and order.filled == 0.01 and order.average
            assert order.client_order_id == cid
            again = await ex.fetch_order("BTC/USDT", client_order_id=cid)
            assert again.id == order.id and again.filled == 0.01
            # the broker's own record of the order holds OKX's spelling of our id
            assert [o.client_id for o in sim.server.broker.accounts["sim-key"].orders.values()
                    ] == ["tf" + "ab" * 15]
            last = (await ex.fetch_ticker("BTC/USDT")).last
            resting = await ex.place_order("BTC/USDT", OrderRequest(
                "buy", 0.01, "limit", round(last * 0.95, 2)), client_order_id="tf-rest1")
            assert [o.id for o in await ex.fetch_open_orders("BTC/USDT")] == [resting.id]
            await ex.cancel_order(resting.id, "BTC/USDT")
            assert await ex.fetch_open_orders("BTC/USDT") == []
            with pytest.raises(OrderNotFound):
                await ex.cancel_order(resting.id, "BTC/USDT")
            with pytest.raises(InsufficientFunds):
                await ex.create_order("BTC/USDT", "buy", "market", 100.0,
                                      client_order_id="tf-toomuch")
            end = await ex.fetch_balance()
            assert end.free["BTC"] == pytest.approx(0.01 * 0.999)
        async with client(sim.base_url, **{**keys, "api_password": "wrong"}) as ex:
            with pytest.raises(AuthenticationFailed):
                await ex.fetch_balance()

    run(body())
