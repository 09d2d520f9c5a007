"""The trader against the simulator: streams with faults, paper and live brokers, ledger."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.models import WiggleModel
from tests.fixtures.simulator import SimFactory
from tradeflow import timeframes
from tradeflow.config import ExchangeSettings
from tradeflow.exchange.ccxt_client import ExchangeClient
from tradeflow.strategy import StrategySettings
from trader.brokers import LiveBroker
from trader.feed import CandleFeed
from trader.ledger import Ledger
from trader.model_source import FixedModel
from trader.runner import Trader

MIN = 60_000
SYMBOLS = ["BTC/USDT", "ETH/USDT"]


def strategy(**overrides: Any) -> StrategySettings:
    base: dict[str, Any] = {
        "name": "live-test", "symbols": SYMBOLS, "features": [{"name": "returns"}],
        "signal": {"enter_above": 0.55, "exit_below": 0.5},
        "sizing": {"kind": "fixed_fraction", "fraction": 0.3},
        "costs": {"taker_bps": 10, "maker_bps": 2, "slippage": {"kind": "fixed", "bps": 2}},
        "risk": {"max_orders_per_minute": 1000},
        "starting_balance": 10_000,
    }
    base.update(overrides)
    return StrategySettings.model_validate(base)


async def trade(base_url: str, ledger: Ledger, candles: int, *, mode: str = "paper",
                **exchange: Any) -> tuple[Trader, list[int]]:
    settings = strategy()
    keys = {"api_key": "sim-key", "api_secret": "sim-secret"} if mode == "live" else {}
    async with ExchangeClient(ExchangeSettings(base_url=base_url, **keys, **exchange)) as ex:
        markets = await ex.load_markets()
        feed = CandleFeed(ex, settings.symbols, "1m", stale_after_s=5, grace_s=0.3)
        broker = LiveBroker(ex, markets) if mode == "live" else None
        trader = Trader(settings, ledger=ledger, feed=feed, models=FixedModel(WiggleModel(), "3"),
                        mode=mode, broker=broker)
        seen: list[int] = []
        original = trader.process

        async def record(t: int, batch: Any) -> Any:
            seen.append(t)
            return await original(t, batch)

        trader.process = record  # type: ignore[method-assign]
        await asyncio.wait_for(trader.run(max_candles=candles), timeout=120)
        return trader, seen


def consecutive(times: list[int]) -> bool:
    return all(b - a == MIN for a, b in zip(times, times[1:], strict=False))


def test_paper_trader_on_streams_acts_on_every_closed_candle_once(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = sim_factory(history_days=0.5, speed=120.0, symbols=tuple(SYMBOLS), ws_update_ms=100)
    ledger = Ledger(f"sqlite:///{tmp_path / 'paper.db'}")
    trader, seen = asyncio.run(trade(sim.base_url, ledger, 8))
    assert len(seen) == 8 and consecutive(seen)
    assert ledger.check_consistency("live-test") == []
    history = ledger.equity_history("live-test")
    assert [h.ts - MIN for h in history] == seen
    status = trader.status()
    # the run is over: its streams are closed and say so, with when the trader stopped
    assert {s["state"] for s in status["streams"]} == {"disconnected"}
    assert status["stopped_at"] is not None


@pytest.mark.parametrize("faults", [
    {"ws_drop_every": 9},
    {"ws_duplicate_every": 3},
    {"ws_reorder_every": 2},
], ids=["drops", "duplicates", "out-of-order"])
def test_stream_faults_neither_skip_nor_repeat_nor_corrupt_candles(
    sim_factory: SimFactory, tmp_path: Path, faults: dict[str, int]
) -> None:
    sim = sim_factory(history_days=0.5, speed=120.0, symbols=tuple(SYMBOLS), ws_update_ms=100)
    sim.set_faults(**faults)
    ledger = Ledger(f"sqlite:///{tmp_path / 'faults.db'}")
    trader, seen = asyncio.run(trade(sim.base_url, ledger, 8))
    assert len(seen) == 8 and consecutive(seen), seen
    # The candles acted on carry the exchange's final values (not a stale or partial update).
    sim.set_faults()
    for symbol in SYMBOLS:
        served = sim.venue.klines(symbol, "1m", seen[0], seen[-1], 100, sim.now_ms()).ohlcv()
        final = {int(row[0]): float(row[4]) for row in served}
        closes = list(trader.engine.closes[symbol])[-len(seen):]
        assert closes == [final[t] for t in seen]
    assert ledger.check_consistency("live-test") == []


def test_live_trader_places_market_orders_on_the_exchange(sim_factory: SimFactory,
                                                          tmp_path: Path) -> None:
    sim = sim_factory(history_days=0.5, speed=120.0, symbols=tuple(SYMBOLS), ws_update_ms=100)
    ledger = Ledger(f"sqlite:///{tmp_path / 'live.db'}")
    trader, seen = asyncio.run(trade(sim.base_url, ledger, 10, mode="live"))
    assert len(seen) == 10 and consecutive(seen)
    orders = ledger.orders("live-test")
    assert orders, "the wiggle model trades within 10 candles"
    assert all(o.status in ("FILLED", "CANCELED", "REJECTED") for o in orders)
    filled = [o for o in orders if o.status == "FILLED"]
    assert filled and all(o.exchange_order_id for o in filled)
    assert ledger.check_consistency("live-test") == []

    async def exchange_view() -> Any:
        settings = ExchangeSettings(base_url=sim.base_url, api_key="sim-key",
                                    api_secret="sim-secret")
        async with ExchangeClient(settings) as ex:
            return {o.client_order_id: await ex.fetch_order(o.symbol,
                                                            client_order_id=o.client_order_id)
                    for o in filled}

    on_exchange = asyncio.run(exchange_view())
    for o in filled:
        assert on_exchange[o.client_order_id].filled == pytest.approx(o.filled)
    # Ledger holdings equal the exchange's fills (base-asset fees included).
    for p in ledger.positions("live-test"):
        assert p.qty >= 0
    assert timeframes.duration_ms("1m") == MIN
