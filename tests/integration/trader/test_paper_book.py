"""Paper fills against the simulator's live order book, through ccxt, booked with their basis."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from tests.fixtures.models import WiggleModel
from tests.fixtures.simulator import SimFactory
from tests.integration.trader.test_live import SYMBOLS, consecutive, strategy
from tradeflow.config import ExchangeSettings
from tradeflow.exchange.ccxt_client import ExchangeClient
from trader.feed import CandleFeed
from trader.ledger import Ledger
from trader.model_source import FixedModel
from trader.order_flow import LiveOrderFlow
from trader.paper_fills import BookPaperBroker
from trader.runner import Trader


async def trade_on_the_book(base_url: str, ledger: Ledger, candles: int
                            ) -> tuple[Trader, list[int]]:
    settings = strategy()
    async with ExchangeClient(ExchangeSettings(base_url=base_url)) as ex:
        await ex.load_markets()
        feed = CandleFeed(ex, settings.symbols, "1m", stale_after_s=5, grace_s=0.3)
        flow = LiveOrderFlow(settings.symbols, "1m", max_book_age_s=5.0, book_poll_s=0.2)
        broker = BookPaperBroker(flow, taker_bps=10.0, slippage_bps=2.0, quote="USDT")
        trader = Trader(settings, ledger=ledger, feed=feed, models=FixedModel(WiggleModel(), "3"),
                        mode="paper", broker=broker, order_flow=flow)
        streams = asyncio.create_task(flow.run(ex))
        seen: list[int] = []
        original = trader.process

        async def record(t: int, batch: object) -> object:
            seen.append(t)
            return await original(t, batch)  # type: ignore[arg-type]

        trader.process = record  # type: ignore[method-assign]
        try:
            await asyncio.wait_for(trader.run(max_candles=candles), timeout=120)
        finally:
            streams.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await streams
        return trader, seen


def test_paper_orders_fill_against_the_live_book_with_fees_and_basis(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = sim_factory(history_days=0.5, speed=120.0, symbols=tuple(SYMBOLS), ws_update_ms=100)
    ledger = Ledger(f"sqlite:///{tmp_path / 'paper.db'}")
    trader, seen = asyncio.run(trade_on_the_book(sim.base_url, ledger, 10))
    assert len(seen) == 10 and consecutive(seen)
    assert ledger.check_consistency("live-test") == []
    fills = ledger.fills("live-test")
    assert fills, "the wiggle model trades within 10 candles"
    on_book = [f for f in fills if f.basis and f.basis["source"] == "book"]
    assert on_book, [f.basis for f in fills]
    for f in on_book:
        levels = f.basis["levels"]  # type: ignore[index]
        assert sum(q for _, q in levels) == pytest.approx(f.amount)
        assert f.price == pytest.approx(sum(p * q for p, q in levels) / f.amount)
        assert f.fee == pytest.approx(f.price * f.amount * 10 / 1e4)
        assert f.trade_id.startswith("x-paper-")
    status = trader.status()["order_flow"]
    assert set(status) == set(SYMBOLS)
    assert all(s["book_age_s"] is not None and s["last_price"] for s in status.values())
