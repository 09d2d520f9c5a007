"""Paper fills against the simulator's live order book, through ccxt, booked with their basis."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from tests.fixtures.models import WiggleModel
from tests.fixtures.simulator import SimFactory
from tests.integration.trader.test_live import SYMBOLS, consecutive, strategy
from tradeflow.config import ExchangeSettings
from tradeflow.exchange.ccxt_client import ExchangeClient
from tradeflow.exchange.orderflow import OrderFlowClient
from trader.feed import CandleFeed
from trader.ledger import Ledger
from trader.model_source import FixedModel
from trader.order_flow import LiveOrderFlow
from trader.paper_fills import BookPaperBroker
from trader.runner import Trader


class FlowWiggle(WiggleModel):
    """The wiggle model, declaring order-flow inputs; keeps the last window it was given."""

    accepts_columns = True

    def __init__(self) -> None:
        super().__init__()
        self.pipeline = SimpleNamespace(inputs=("trade_count", "trade_qty", "book_bid_px"))
        self.windows: dict[str, dict[str, np.ndarray]] = {}

    def predict_last(self, candles: Any, symbol: str | None = None) -> float:
        self.windows[str(symbol)] = {k: np.array(v) for k, v in candles.items()}
        close = np.asarray(candles["close"])
        return float(1.0 / (1.0 + np.exp(-np.log(close[-1] / close[-6]) * self.gain)))


async def trade_on_the_book(base_url: str, ledger: Ledger, candles: int,
                            model: WiggleModel | None = None,
                            holdings: list[tuple[dict[str, float], dict[str, float]]] | None = None,
                            ) -> tuple[Trader, list[int]]:
    settings = strategy()
    async with ExchangeClient(ExchangeSettings(base_url=base_url)) as ex:
        await ex.load_markets()
        feed = CandleFeed(ex, settings.symbols, "1m", stale_after_s=5, grace_s=0.3)
        flow = LiveOrderFlow(settings.symbols, "1m", max_book_age_s=5.0, book_poll_s=0.2)
        broker = BookPaperBroker(flow, taker_bps=10.0, slippage_bps=2.0, quote="USDT")
        trader = Trader(settings, ledger=ledger, feed=feed,
                        models=FixedModel(model or WiggleModel(gain=800.0), "3"), mode="paper",
                        broker=broker, order_flow=flow)
        streams = asyncio.create_task(flow.run(OrderFlowClient(ex)))
        seen: list[int] = []
        original = trader.process

        async def record(t: int, batch: object) -> object:
            seen.append(t)
            result = await original(t, batch)  # type: ignore[arg-type]
            if holdings is not None:  # the engine's positions and the ledger's, after candle t
                engine = trader.engine
                assert engine is not None
                holdings.append(({s: engine.books[s].position.qty for s in settings.symbols},
                                 {p.symbol: p.qty for p in ledger.positions(settings.name)}))
            return result

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
    holdings: list[tuple[dict[str, float], dict[str, float]]] = []
    trader, seen = asyncio.run(trade_on_the_book(sim.base_url, ledger, 14, holdings=holdings))
    assert len(seen) == 14 and consecutive(seen)
    # What the book filled is what the engine holds (exit rules and equity see it), candle
    # by candle: an entry filled by the broker opens the engine's position.
    for engine_qty, ledger_qty in holdings:
        assert engine_qty == pytest.approx({s: ledger_qty.get(s, 0.0) for s in SYMBOLS})
    assert any(q > 0 for _, held in holdings for q in held.values()), "never held anything"
    assert trader.engine is not None and trader.engine.risk.mode.value == "active"
    assert ledger.check_consistency("live-test") == []
    fills = ledger.fills("live-test")
    assert fills, ([(o.status, o.error) for o in ledger.orders("live-test")],
                   trader.summary)
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


def test_the_model_gets_each_candle_s_order_flow_from_the_live_streams(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    # The simulator's candles are exact aggregates of its trade tape: a candle the trade
    # stream saw whole must hand the model its trade count and the candle's volume.
    sim = sim_factory(history_days=0.5, speed=60.0, symbols=tuple(SYMBOLS), ws_update_ms=100)
    ledger = Ledger(f"sqlite:///{tmp_path / 'flow.db'}")
    model = FlowWiggle()
    asyncio.run(trade_on_the_book(sim.base_url, ledger, 6, model))
    for symbol in SYMBOLS:
        window = model.windows[symbol]
        assert set(window) >= {"trade_count", "trade_qty", "book_bid_px"}
        live = np.isfinite(window["trade_qty"])
        # Warm-up candles came over REST: no order flow; the first live candle was entered
        # mid-way; later ones were seen whole.
        assert not live[:-5].any() and live[-4:].all(), window["trade_qty"][-8:]
        np.testing.assert_allclose(window["trade_qty"][-4:], window["volume"][-4:], rtol=1e-9)
        assert (window["trade_count"][-4:] > 0).all()
        assert np.isfinite(window["book_bid_px"][-4:]).all()
