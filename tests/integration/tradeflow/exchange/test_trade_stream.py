"""The direct trade stream (the recorder's fast path) against ccxt.pro's parse of the same
simulator frames, and its behaviour through dropped, duplicated and reordered messages."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.fixtures.simulator import SimFactory, run
from tradeflow.config import ExchangeSettings
from tradeflow.exchange import ExchangeError
from tradeflow.exchange.ccxt_client import ExchangeClient
from tradeflow.exchange.direct_ws import direct_stream_url
from tradeflow.exchange.orderflow import OrderFlowClient
from tradeflow.exchange.trade_stream import DirectTradeStream


async def collect(flow: OrderFlowClient, symbol: str, at_least: int) -> pd.DataFrame:
    frames: list[pd.DataFrame] = []
    while sum(map(len, frames)) < at_least:
        frames.append(await asyncio.wait_for(flow.watch_trades(symbol), 10))
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("aggregated", [True, False], ids=["aggTrade", "trade"])
def test_direct_trades_equal_ccxt_parse_of_the_same_frames(sim_factory: SimFactory,
                                                           aggregated: bool) -> None:
    sim = sim_factory(speed=60.0, ws_update_ms=100)

    async def body() -> tuple[pd.DataFrame, pd.DataFrame]:
        async with ExchangeClient(ExchangeSettings(base_url=sim.base_url)) as client:
            await client.load_markets()
            direct = OrderFlowClient(client, aggregated=aggregated, direct_trades=True)
            slow = OrderFlowClient(client, aggregated=aggregated)
            try:
                # both subscribe to the one simulator stream: the same frames reach both
                return await asyncio.gather(collect(direct, "ETH/USDT", 400),
                                            collect(slow, "ETH/USDT", 400))
            finally:
                await direct.close()

    fast, slow = run(body())
    for frame in (fast, slow):
        ids = frame["id"].to_numpy()
        assert (np.diff(ids) == 1).all()
    lo = max(fast["id"].iloc[0], slow["id"].iloc[0])
    hi = min(fast["id"].iloc[-1], slow["id"].iloc[-1])
    assert hi - lo > 100
    pick = lambda f: f[f["id"].between(lo, hi)].reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(pick(fast), pick(slow))
    assert set(fast["side"]) == {"buy", "sell"}


def test_a_drop_hands_out_what_came_raises_then_reconnects(sim_factory: SimFactory) -> None:
    sim = sim_factory(speed=60.0, ws_update_ms=100)
    sim.set_faults(ws_drop_every=150, ws_duplicate_every=7, ws_reorder_every=11)

    async def body() -> tuple[pd.DataFrame, int, int]:
        async with ExchangeClient(ExchangeSettings(base_url=sim.base_url)) as client:
            await client.load_markets()
            flow = OrderFlowClient(client, direct_trades=True)
            frames, errors = [], 0
            try:
                while errors < 3:
                    try:
                        frames.append(await asyncio.wait_for(flow.watch_trades("SOL/USDT"), 10))
                    except ExchangeError as exc:
                        assert exc.retryable
                        errors += 1
                        frames.append(await asyncio.wait_for(flow.watch_trades("SOL/USDT"), 10))
            finally:
                await flow.close()
            return pd.concat(frames, ignore_index=True), errors, flow.reconnects

    got, errors, reconnects = run(body())
    assert errors == 3 and reconnects == 3
    ids = got["id"].to_numpy()
    assert len(ids) > len(np.unique(ids))  # duplicates pass through as received
    assert (np.diff(ids) < 0).any()  # and so do reordered messages
    spec = sim.venue.specs["SOL/USDT"]
    unique = got.drop_duplicates("id").sort_values("id").reset_index(drop=True)
    served = sim.venue.agg_trades("SOL/USDT", from_id=int(unique["id"].iloc[0]),
                                  limit=int(unique["id"].iloc[-1] - unique["id"].iloc[0]) + 1)
    index = {int(i): k for k, i in enumerate(served.ids)}
    rows = [index[int(i)] for i in unique["id"]]
    assert unique["price"].tolist() == (served.prices[rows] / 10**spec.price_decimals).tolist()
    assert unique["amount"].tolist() == (served.qty[rows] / 10**spec.qty_decimals).tolist()


def test_trades_nobody_takes_beyond_the_limit_are_dropped_oldest_first(
        sim_factory: SimFactory) -> None:
    sim = sim_factory(speed=60.0, ws_update_ms=100)

    async def body() -> tuple[pd.DataFrame, pd.DataFrame]:
        async with ExchangeClient(ExchangeSettings(base_url=sim.base_url)) as client:
            await client.load_markets()
            url = direct_stream_url(client.exchange, "BTC/USDT", "aggTrade")
            assert url is not None and url.endswith("/ws/btcusdt@aggTrade")
            stream = DirectTradeStream(url, "aggTrade", limit=50)
            try:
                first = await asyncio.wait_for(stream.next(), 10)
                await asyncio.sleep(1.0)  # far more than 50 trades arrive meanwhile
                return first, await asyncio.wait_for(stream.next(), 10)
            finally:
                await stream.close()

    first, kept = run(body())
    assert len(kept) == 50
    assert (np.diff(kept["id"].to_numpy()) == 1).all()
    assert kept["id"].iloc[0] > first["id"].iloc[-1] + 1  # the oldest went: a hole
    # every column dropped the same rows: the kept trades are the venue's
    spec = sim.venue.specs["BTC/USDT"]
    served = sim.venue.agg_trades("BTC/USDT", from_id=int(kept["id"].iloc[0]), limit=50)
    assert kept["ts"].tolist() == served.times.tolist()
    assert kept["price"].tolist() == (served.prices / 10**spec.price_decimals).tolist()
    assert kept["amount"].tolist() == (served.qty / 10**spec.qty_decimals).tolist()
    assert kept["side"].tolist() == np.where(served.buyer_maker, "sell", "buy").tolist()


def test_only_binance_spot_streams_are_read_directly(sim_factory: SimFactory) -> None:
    sim = sim_factory()

    async def body() -> list[Any]:
        async with ExchangeClient(ExchangeSettings(base_url=sim.base_url)) as client:
            await client.load_markets()
            ex = client.exchange
            return [direct_stream_url(ex, "SOL/USDT", "trade"),
                    direct_stream_url(ex, "NOPE/USDT", "trade")]

    known, unknown = run(body())
    assert known == sim.base_url.replace("http://", "ws://") + "/ws/solusdt@trade"
    assert unknown is None
    with pytest.raises(ValueError, match="must be one of aggTrade, trade"):
        DirectTradeStream("ws://127.0.0.1:1/ws/x", "depth")
