"""The order-flow adapter against the simulator: typed trade frames from the stream and from
paged history equal to what the venue served, the local book through a gap, tickers."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.fixtures.simulator import START_MS, SimFactory, run
from tradeflow.config import ExchangeSettings
from tradeflow.exchange import AuthenticationFailed, OrderBook
from tradeflow.exchange.ccxt_client import ExchangeClient
from tradeflow.exchange.orderflow import OrderFlowClient

MIN = 60_000
FROZEN = 1e-9


def served_aggs(sim: Any, symbol: str, start: int, end: int) -> pd.DataFrame:
    """The venue's aggregated trades in [start, end] in the adapter's units."""
    spec, rows, out = sim.venue.specs[symbol], [], []
    cursor = None
    while True:
        page = sim.venue.agg_trades(symbol, from_id=cursor, start=None if cursor else start,
                                    limit=1000)
        keep = page.times <= end
        rows.append((page.ids[keep], page.times[keep], page.prices[keep], page.qty[keep],
                     page.buyer_maker[keep]))
        if not keep.all() or not len(page):
            break
        cursor = int(page.ids[-1]) + 1
    for ids, times, prices, qty, maker in rows:
        out.append(pd.DataFrame({"id": ids, "ts": times,
                                 "price": prices / 10**spec.price_decimals,
                                 "amount": qty / 10**spec.qty_decimals,
                                 "side": np.where(maker, "sell", "buy")}))
    return pd.concat(out, ignore_index=True)


def flow(base_url: str, **fields: Any) -> tuple[ExchangeClient, OrderFlowClient]:
    client = ExchangeClient(ExchangeSettings(base_url=base_url, **fields))
    return client, OrderFlowClient(client)


def test_history_by_id_and_by_time_is_every_served_trade_once(sim_factory: SimFactory) -> None:
    sim = sim_factory(speed=FROZEN)
    t0, t1 = START_MS - 90 * MIN, START_MS - 60 * MIN - 1

    async def body() -> dict:
        client, of = flow(sim.base_url, rate_limit=False)
        async with client:
            by_time = [p async for p in of.fetch_trades_between("ETH/USDT", t0, t1, limit=500)]
            first = int(by_time[0]["id"].iloc[0])
            by_id = [p async for p in of.trade_pages("ETH/USDT", first + 10, to_id=first + 1234,
                                                     limit=300)]
        return {"time": by_time, "id": by_id, "first": first}

    got = run(body())
    expected = served_aggs(sim, "ETH/USDT", t0, t1)
    by_time = pd.concat(got["time"], ignore_index=True)
    assert len(got["time"]) > 2  # it paged
    pd.testing.assert_frame_equal(by_time, expected, check_dtype=False)
    assert by_time.dtypes.astype(str).tolist()[:4] == ["int64", "int64", "float64", "float64"]
    by_id = pd.concat(got["id"], ignore_index=True)
    first = got["first"]
    assert by_id["id"].tolist() == list(range(first + 10, first + 1235))
    assert by_time["id"].tolist() == list(range(first, first + len(by_time)))


def test_individual_trades_need_a_key_for_history(sim_factory: SimFactory) -> None:
    sim = sim_factory(speed=FROZEN)

    async def body(**keys: Any) -> Any:
        client = ExchangeClient(ExchangeSettings(base_url=sim.base_url, **keys))
        async with client:
            of = OrderFlowClient(client, aggregated=False)
            first = await of.first_trade_id("SOL/USDT", START_MS - 30 * MIN)
            return first, await of.fetch_trades_from_id("SOL/USDT", first, limit=50)

    with pytest.raises(AuthenticationFailed, match="historicalTrades endpoint requires"):
        run(body())
    first, page = run(body(api_key="sim-key", api_secret="sim-secret"))
    served = sim.venue.trades_from("SOL/USDT", from_id=first, limit=50)
    assert page["id"].tolist() == served.ids.tolist()
    assert page["ts"].iloc[0] >= START_MS - 30 * MIN


def test_streams_give_typed_trades_books_and_tickers(sim_factory: SimFactory) -> None:
    sim = sim_factory(speed=60.0, ws_update_ms=100)

    async def body() -> dict:
        client, of = flow(sim.base_url)
        async with client:
            frames: list[pd.DataFrame] = []
            while sum(map(len, frames)) < 30:
                frames.append(await asyncio.wait_for(of.watch_trades("BTC/USDT"), 10))
            book = await asyncio.wait_for(of.watch_order_book("BTC/USDT", depth=5), 10)
            while book.timestamp is None:  # the bare REST snapshot carries no time
                book = await asyncio.wait_for(of.watch_order_book("BTC/USDT", depth=5), 10)
            ticker = await asyncio.wait_for(of.watch_ticker("BTC/USDT"), 10)
            quotes = await asyncio.wait_for(of.watch_bids_asks(["BTC/USDT"]), 10)
        return {"trades": pd.concat(frames, ignore_index=True), "book": book,
                "ticker": ticker, "quotes": quotes}

    got = run(body())
    trades = got["trades"]
    assert trades["id"].tolist() == list(range(trades["id"].iloc[0],
                                               trades["id"].iloc[0] + len(trades)))
    served = served_aggs(sim, "BTC/USDT", int(trades["ts"].iloc[0]), int(trades["ts"].iloc[-1]))
    served = served[served["id"].between(trades["id"].iloc[0], trades["id"].iloc[-1])]
    pd.testing.assert_frame_equal(trades, served.reset_index(drop=True), check_dtype=False)
    book: OrderBook = got["book"]
    assert book_equals_venue(sim, "BTC/USDT", book, 5)
    ticker = got["ticker"]
    assert ticker.bid < ticker.ask and ticker.bid_volume > 0 and ticker.ask_volume > 0
    assert ticker.last > 0 and ticker.timestamp > START_MS
    quote = got["quotes"]["BTC/USDT"]
    assert quote.bid < quote.ask and quote.update_id is not None and np.isnan(quote.last)


def book_equals_venue(sim: Any, symbol: str, book: OrderBook, depth: int) -> bool:
    spec = sim.venue.specs[symbol]
    p, q = 10**spec.price_decimals, 10**spec.qty_decimals
    bids, asks, update_id = sim.venue.book(symbol, depth, book.timestamp)
    return (book.update_id == update_id
            and list(book.bids) == [(a / p, b / q) for a, b in bids]
            and list(book.asks) == [(a / p, b / q) for a, b in asks])


def test_a_book_gap_is_counted_and_the_book_rebuilt(sim_factory: SimFactory) -> None:
    sim = sim_factory(speed=60.0)

    async def body() -> dict:
        client, of = flow(sim.base_url)
        async with client:
            await asyncio.wait_for(of.watch_order_book("SOL/USDT", depth=20), 10)
            sim.set_faults(ws_depth_gap_every=5)
            while of.resyncs.get("SOL/USDT", 0) < 2:
                await asyncio.wait_for(of.watch_order_book("SOL/USDT", depth=20), 10)
            sim.set_faults(ws_depth_gap_every=0)
            books = []
            for _ in range(6):
                books.append(await asyncio.wait_for(of.watch_order_book("SOL/USDT", 20), 10))
        return {"books": [b for b in books if b.timestamp is not None], "of": of}

    got = run(body())
    assert got["of"].resyncs["SOL/USDT"] >= 2
    assert got["books"] and all(book_equals_venue(sim, "SOL/USDT", b, 20) for b in got["books"])
    assert all(len(b.bids) == len(b.asks) == 20 for b in got["books"])
