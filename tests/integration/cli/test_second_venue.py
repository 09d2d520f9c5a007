"""The second venue end to end, chosen by the exchange id alone: backfill, validate, train and
backtest through the CLI, paper and live trading, on the simulator's OKX API (ccxt's real okx
classes).

OKX pages candles 300 at a time, newest first, and streams them without a closed flag (ccxt
drops OKX's ``confirm``), so the trader decides on a candle once the next one has started; every
decision's price is checked against the candle's final close as the venue served it.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import yaml
from pydantic import SecretStr

from tests.fixtures.models import register_wiggle
from tests.fixtures.simulator import SimFactory
from tests.integration.cli.test_record import env
from tests.integration.models.test_training_support import write_strategy
from tradeflow import timeframes
from tradeflow.config import load_settings
from tradeflow.market.store import MarketStore, SeriesKey
from trader.app import run_trader
from trader.ledger import Ledger

REPO = Path(__file__).resolve().parents[3]
SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
STRATEGY = """
name: okxpaper
symbols: [BTC/USDT]
timeframe: 1m
features: [{name: returns}]
signal: {enter_above: 0.55, exit_below: 0.5}
sizing: {kind: fixed_fraction, fraction: 0.3}
risk: {max_orders_per_minute: 1000}
"""


def profile_for(root: Path, base_url: str) -> Path:
    profile = root / "profile.yaml"
    profile.write_text(yaml.safe_dump({
        "data_dir": str(root / "state"), "symbols": SYMBOLS, "timeframes": ["1m"],
        "exchange": {"id": "okx", "base_url": base_url},
        "store": {"path": str(root / "market.duckdb")},
        "mlflow": {"tracking_uri": f"sqlite:///{root / 'mlflow.db'}",
                   "artifact_root": (root / "artifacts").resolve().as_uri()}}))
    return profile


def cli(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", "--config", str(profile), *args],
                          cwd=REPO, env=env(), capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_backfill_validate_train_backtest_on_okx(sim_factory: SimFactory,
                                                tmp_path: Path) -> None:
    sim = sim_factory(venues=("okx",), speed=1e-9, history_days=1.5, signal_strength=1.0,
                      symbols=tuple(SYMBOLS))
    profile = profile_for(tmp_path, sim.base_url)
    done = cli(profile, "backfill", "--days", "1", "--no-progress")
    assert done.returncode == 0, done.stderr
    store = MarketStore(tmp_path / "market.duckdb")
    now = sim.now_ms()
    last = timeframes.last_closed_open(now, "1m")
    for symbol in SYMBOLS:
        stored = store.read(SeriesKey("okx", symbol, "1m"))
        served = sim.venue.klines(symbol, "1m", start=int(stored["open_time"].iloc[0]),
                                  end=last, limit=2000, now_ms=now)
        assert len(stored) == len(served) >= 1440  # no candle lost or repeated across pages
        assert stored["open_time"].tolist() == served.open_time.tolist()
        assert stored["close"].tolist() == (served.close / 10**served.price_decimals).tolist()
        assert store.read(SeriesKey("binance", symbol, "1m")).empty
    checked = cli(profile, "validate", "--all")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "validation passed" in checked.stdout, checked.stdout
    strategy = write_strategy(
        tmp_path, "okxmodel", symbols=["BTC/USDT"], model={"kind": "logistic"},
        training={"window_days": 0.9, "folds": 2, "pooled": True},
        promotion={"metric": "sharpe", "min_trades": 1, "max_drawdown_pct": 25,
                   "evaluation_days": 0.1})
    trained = cli(profile, "train", "--strategy", str(strategy), "--end", str(now))
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert "never validated" not in trained.stdout
    assert "registered: tradeflow-okxmodel version 1" in trained.stdout
    tested = cli(profile, "backtest", "--strategy",
                 str(REPO / "config" / "strategies" / "rsi_meanrev.yaml"))
    assert tested.returncode == 0, tested.stderr
    assert "Traceback" not in tested.stderr


def test_paper_trading_on_okx_decides_on_final_candles(sim_factory: SimFactory,
                                                      tmp_path: Path) -> None:
    from models.registry import configure_tracking

    sim = sim_factory(venues=("okx",), history_days=0.5, speed=120.0, ws_update_ms=100,
                      symbols=("BTC/USDT",))
    settings = load_settings(env={}, overrides={
        "data_dir": str(tmp_path), "exchange": {"id": "okx", "base_url": sim.base_url},
        "trader": {"metrics_port": 0}})
    configure_tracking(settings)
    strategy_file = tmp_path / "okxpaper.yaml"
    strategy_file.write_text(STRATEGY)
    register_wiggle("tradeflow-okxpaper")
    # Holds are not stored: enough candles that the wiggle model enters on any market path
    # (6 were all holds once, on a falling one).
    summary = asyncio.run(run_trader(settings, str(strategy_file), max_candles=20))
    mlflow.end_run()
    assert summary.candles == 20
    decisions = list(reversed(Ledger(settings.ledger_url).decisions("okxpaper", limit=100)))
    times = [d.candle_open_time for d in decisions]
    assert times and times == sorted(set(times))  # each candle once, in order
    now = sim.now_ms()
    for d in decisions:
        final = sim.venue.klines("BTC/USDT", "1m", start=d.candle_open_time,
                                 end=d.candle_open_time, limit=1, now_ms=now)
        assert final.closed[0]
        assert d.price == final.close[0] / 10**final.price_decimals, d


def test_live_trading_on_okx_books_what_the_venue_filled(sim_factory: SimFactory,
                                                       tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Live mode on OKX by the exchange id (and the key's passphrase): every order the ledger
    books is the venue's order, found under OKX's spelling of its client id, with its fills."""
    from models.registry import configure_tracking
    from tradeflow.exchange.venues import venue_client_id

    sim = sim_factory(venues=("okx",), history_days=0.5, speed=120.0, ws_update_ms=100,
                      symbols=("BTC/USDT",))
    settings = load_settings(env={}, overrides={
        "data_dir": str(tmp_path), "exchange": {"id": "okx", "base_url": sim.base_url},
        "trader": {"metrics_port": 0}})
    settings = settings.model_copy(update={"exchange": settings.exchange.model_copy(update={
        "api_key": SecretStr("sim-key"), "api_secret": SecretStr("sim-secret"),
        "api_password": SecretStr("sim-passphrase")})})
    configure_tracking(settings)
    strategy_file = tmp_path / "okxpaper.yaml"
    strategy_file.write_text(STRATEGY)
    register_wiggle("tradeflow-okxpaper")
    monkeypatch.setenv("TRADEFLOW_LIVE_CONFIRM", "yes")
    summary = asyncio.run(run_trader(settings, str(strategy_file), mode="live", max_candles=20))
    mlflow.end_run()
    ledger = Ledger(settings.ledger_url_for("live"))
    booked = [o for o in ledger.orders("okxpaper") if o.filled > 0]
    venue_orders = {o.client_id: o for o in
                    sim.server.broker.accounts["sim-key"].orders.values()}
    assert summary.orders == len(ledger.orders("okxpaper"))
    assert ledger.orders("okxpaper"), "the wiggle model traded nothing in 20 candles"
    assert booked, "orders booked without their fills"
    for order in booked:
        sent = venue_orders[venue_client_id("okx", order.client_order_id)]
        assert order.exchange_order_id == str(sent.order_id)
        qty = sent.executed_qty / 10**sent.spec.qty_decimals
        assert order.filled == pytest.approx(qty)
    ledger.close()
