"""Observing a running trader: its Prometheus endpoint, ``tradeflow status``, PostgreSQL ledger."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.models import WiggleModel
from tests.fixtures.simulator import SimFactory, frozen_venue
from tradeflow.backtest.live_engine import Candle
from tradeflow.config import ExchangeSettings, Settings, load_settings
from tradeflow.exchange.ccxt_client import ExchangeClient
from tradeflow.strategy import StrategySettings
from trader.app import read_status, status_path
from trader.feed import CandleFeed
from trader.ledger import Ledger
from trader.model_source import FixedModel, ModelSource
from trader.prometheus import TraderMetrics
from trader.replay import ReplayFeed
from trader.runner import Trader

ROOT = Path(__file__).resolve().parents[3]
MIN = 60_000
SYMBOLS = ("BTC/USDT", "ETH/USDT")
WARM = 100  # candles of warm-up history before a replay starts
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def strategy(name: str) -> StrategySettings:
    return StrategySettings.model_validate({
        "name": name, "symbols": list(SYMBOLS), "features": [{"name": "returns"}],
        "signal": {"enter_above": 0.55, "exit_below": 0.5},
        "sizing": {"kind": "fixed_fraction", "fraction": 0.3},
        "costs": {"taker_bps": 10, "maker_bps": 2, "slippage": {"kind": "fixed", "bps": 2}},
        "risk": {"max_orders_per_minute": 1000},
        "starting_balance": 10_000,
    })


class Bullish:
    """Always p(up) = 0.9: buys on the first candle and holds, so a position stays open."""

    warmup = 1
    timeframe = "1m"

    def predict_last(self, candles: pd.DataFrame, symbol: str | None = None) -> float:
        return 0.9


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


async def paper_run(base_url: str, settings: StrategySettings, ledger: Ledger,
                    models: ModelSource, candles: int,
                    setup: Callable[[Trader], None] | None = None, **kwargs: Any) -> Trader:
    """A paper trader on the simulator's streams for ``candles`` timestamps."""
    async with ExchangeClient(ExchangeSettings(base_url=base_url)) as client:
        await client.load_markets()
        feed = CandleFeed(client, settings.symbols, settings.timeframe, stale_after_s=5,
                          grace_s=0.3)
        trader = Trader(settings, ledger=ledger, feed=feed, models=models, **kwargs)
        if setup is not None:
            setup(trader)
        await asyncio.wait_for(trader.run(max_candles=candles), timeout=120)
        return trader


def test_prometheus_endpoint_serves_the_running_traders_metrics(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = sim_factory(history_days=0.5, speed=120.0, symbols=SYMBOLS, ws_update_ms=100)
    settings = strategy("obs-metrics")
    ledger = Ledger(f"sqlite:///{tmp_path / 'metrics.db'}")
    metrics = TraderMetrics(settings.name)
    port = metrics.serve(free_port())
    assert port is not None
    status_file = tmp_path / "status.json"  # as run_trader does: the stream state goes with it
    seen: dict[str, Any] = {}
    traders: list[Trader] = []

    def on_persisted(t: int, batch: Mapping[str, Candle], _at: float) -> None:
        # The trader is paused here (this runs on its loop), so what the endpoint serves
        # must match its state exactly. Scraped once the stream gauges were set (by the first
        # status write) and an order was placed.
        trader = traders[0]
        engine = trader.engine
        assert engine is not None
        if seen or not status_file.exists() or trader.summary.orders == 0:
            return
        seen.update(t=t, batch=dict(batch), samples=scrape(port), candles=trader.summary.candles,
                    equity=engine.equity(), drawdown=engine.risk.drawdown(engine.equity()),
                    positions={s: b.position.side * b.position.qty
                               for s, b in engine.books.items()},
                    decisions=ledger.decisions(settings.name, limit=None),
                    orders=ledger.orders(settings.name))

    def setup(trader: Trader) -> None:
        traders.append(trader)
        trader.on_persisted = on_persisted

    asyncio.run(paper_run(sim.base_url, settings, ledger, FixedModel(WiggleModel(), "3"), 14,
                          setup, metrics=metrics, status_path=status_file))
    assert seen, "no scrape: no status file or no order while the trader ran"
    samples, name = seen["samples"], settings.name
    for symbol, candle in seen["batch"].items():
        assert value(samples, "tradeflow_price", strategy=name, symbol=symbol) == candle.close
    for symbol, qty in seen["positions"].items():
        assert value(samples, "tradeflow_position_qty", strategy=name, symbol=symbol) == qty
    assert value(samples, "tradeflow_equity", strategy=name) == seen["equity"]
    assert value(samples, "tradeflow_pnl", strategy=name) == seen["equity"] - 10_000
    assert value(samples, "tradeflow_drawdown", strategy=name) == seen["drawdown"]
    assert value(samples, "tradeflow_model_version", strategy=name) == 3.0
    # One latency observation per processed timestamp, all of them well under the top bucket.
    count = value(samples, "tradeflow_decision_latency_seconds_count", strategy=name)
    assert count == seen["candles"]
    assert value(samples, "tradeflow_decision_latency_seconds_bucket", strategy=name,
                 le="5.0") == count
    assert 0 < value(samples, "tradeflow_decision_latency_seconds_sum", strategy=name) < count
    # Decisions: every earlier timestamp's (holds included, counted after this hook) plus the
    # recorded ones of this timestamp; the recorded ones are the ledger's signal decisions.
    counted = [(dict(labels)["action"], v) for (n, labels), v in samples.items()
               if n == "tradeflow_decisions_total" and dict(labels)["strategy"] == name]
    signals = [d for d in seen["decisions"] if d.kind == "signal"]
    assert sum(v for action, v in counted if action != "hold") == len(signals)
    now = [d for d in signals if d.candle_open_time == seen["t"]]
    assert sum(v for _, v in counted) == (seen["candles"] - 1) * len(SYMBOLS) + len(now)
    orders = sum(v for (n, labels), v in samples.items() if n == "tradeflow_orders_total")
    assert orders == len(seen["orders"]) > 0  # no exit rules: every order is a signal's
    for symbol in SYMBOLS:
        states = {s: value(samples, "tradeflow_stream_state", strategy=name, symbol=symbol,
                           state=s) for s in ("connecting", "connected", "reconnecting", "failed")}
        assert states == {"connecting": 0.0, "connected": 1.0, "reconnecting": 0.0,
                          "failed": 0.0}
        age = value(samples, "tradeflow_last_message_age_seconds", strategy=name, symbol=symbol)
        assert 0.0 <= age < 5.0
    # The endpoint goes away with the trader.
    with pytest.raises(OSError):
        scrape(port)


def cli_status(data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEFLOW_")}
    env["TRADEFLOW_DATA_DIR"] = str(data_dir)
    return subprocess.run([sys.executable, "-m", "cli.main", "status"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)


def test_tradeflow_status_prints_positions_pnl_and_stream_state(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = sim_factory(history_days=0.5, speed=120.0, symbols=SYMBOLS, ws_update_ms=100)
    settings: Settings = load_settings(env={}, overrides={"data_dir": str(tmp_path)})
    plan = strategy("obs-status")
    ledger = Ledger(settings.ledger_url)
    asyncio.run(paper_run(sim.base_url, plan, ledger, FixedModel(Bullish(), "5"), 5,
                          status_path=status_path(settings, plan.name)))
    status = read_status(settings, plan.name)
    assert status is not None and status["mode"] == "paper"
    prices = {s["symbol"]: s["last_price"] for s in status["streams"]}
    summary = ledger.summary(plan.name, prices)
    held = [p for p in ledger.positions(plan.name) if p.qty > 0]
    assert {p.symbol for p in held} == set(SYMBOLS), "the bullish model holds every symbol"
    ledger.close()

    proc = cli_status(tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith(f"strategy {plan.name}  book paper  model v5  risk active"), out
    equity, start = summary["equity"], summary["starting_balance"]
    assert f"equity {equity:,.2f}" in out
    assert f"PnL {equity - start:+,.2f}" in out and equity != start
    for p in held:
        assert f"{p.symbol:<10} qty {p.qty:.6g}" in out
    # The run is over: the trader says when it stopped and its streams are disconnected.
    stopped = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(status["stopped_at"]))
    assert f"  trader stopped at {stopped}" in out
    for symbol in SYMBOLS:
        assert f"stream {symbol:<10} disconnected" in out
    assert "no running trader status found" not in out


def recorded(symbols: tuple[str, ...]) -> tuple[dict[str, pd.DataFrame], int]:
    """Seven hours of the simulator's 1m candles per symbol, and where the replay starts."""
    venue = frozen_venue(history_days=0.3, symbols=symbols)
    frames = {}
    for s in symbols:
        k = venue.klines(s, "1m", venue.history_start_ms, limit=10_000)
        frame = pd.DataFrame(k.ohlcv()[k.closed],
                             columns=["open_time", "open", "high", "low", "close", "volume"])
        frame["open_time"] = frame["open_time"].astype(np.int64)
        frames[s] = frame
    return frames, venue.history_start_ms + WARM * MIN


@pytest.mark.postgres
def test_replay_with_the_ledger_on_postgres_is_consistent_and_matches_sqlite(
    postgres_url: str, tmp_path: Path
) -> None:
    candles, start = recorded(SYMBOLS)
    plan = strategy("obs-pg")
    runs = {}
    for backend, url in (("postgres", postgres_url),
                         ("sqlite", f"sqlite:///{tmp_path / 'replay.db'}")):
        with Ledger(url) as ledger:
            trader = Trader(plan, ledger=ledger, feed=ReplayFeed(candles, start),
                            models=FixedModel(WiggleModel(), "9"))
            summary = asyncio.run(trader.run())
            assert ledger.check_consistency(plan.name) == [], backend
            history = [h.ts for h in ledger.equity_history(plan.name)]
            decided = {d.id: d.candle_open_time
                       for d in ledger.decisions(plan.name, limit=None)}
            runs[backend] = (
                summary.candles, history,
                sorted((f.ts, f.symbol, f.side, round(f.amount, 9), round(f.price, 9))
                       for f in ledger.fills(plan.name)),
                [(o.client_order_id, o.status, decided[o.decision_id])
                 for o in ledger.orders(plan.name)],
                ledger.trader_state(plan.name).cash,
            )
    candles_done, history, fills, orders, cash = runs["postgres"]
    assert candles_done == len(candles[SYMBOLS[0]]) - WARM
    assert history == [start + (i + 1) * MIN for i in range(candles_done)]
    assert len(fills) > 20
    # Orders decided at the last close wait for an open that the recording does not have.
    assert {status for _, status, _ in orders} <= {"FILLED", "CANCELED", "NEW"}
    assert all(when == history[-1] - MIN for _, status, when in orders if status == "NEW")
    assert runs["postgres"][:4] == runs["sqlite"][:4]
    assert cash == pytest.approx(runs["sqlite"][4], rel=1e-12)
