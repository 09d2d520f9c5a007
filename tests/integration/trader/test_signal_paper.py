"""`tradeflow trade --strategy config/strategies/rsi_meanrev.yaml --mode paper` against the
simulator: a sources strategy paper-trades with no model registered (nothing of MLflow is
created), and its paper fills are the backtester's on the candles it traded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from models.signal_sources import signal_strategy
from tests.fixtures.simulator import SimFactory
from tradeflow.backtest import backtest_strategy_portfolio
from tradeflow.strategy import load_strategy
from trader.ledger import Ledger

ROOT = Path(__file__).resolve().parents[3]
STRATEGY = ROOT / "config" / "strategies" / "rsi_meanrev.yaml"
MIN = 60_000
COLUMNS = ["open_time", "open", "high", "low", "close", "volume"]


def cli(tmp_path: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TRADEFLOW_")}
    base.update({"TRADEFLOW_DATA_DIR": str(tmp_path), "TRADEFLOW_TRADER__METRICS_PORT": "0",
                 **env})
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=base,
                          capture_output=True, text=True, timeout=300)


def sim_candles(venue: object, symbol: str, end: int) -> pd.DataFrame:
    """Every closed 1m candle the simulator serves up to ``end`` (its whole history)."""
    klines = venue.klines(symbol, "1m", venue.history_start_ms, end, limit=10**8)  # type: ignore[attr-defined]
    frame = pd.DataFrame(klines.ohlcv(), columns=COLUMNS)[klines.closed]
    frame["open_time"] = frame["open_time"].astype(np.int64)
    return frame.reset_index(drop=True)


def test_paper_trading_rsi_meanrev_needs_no_model_and_fills_as_the_backtester(
        sim_factory: SimFactory, tmp_path: Path) -> None:
    strategy = load_strategy(STRATEGY)
    # Seed 15: the shipped strategy (it trades rarely, by design) enters and exits 186-203
    # simulated minutes after the start, inside the 220 candles traded whenever the trader
    # starts within the first 18 s (10 simulated minutes per second).
    sim = sim_factory(history_days=0.5, speed=600.0, symbols=strategy.symbols,
                      ws_update_ms=100, seed=15)
    proc = cli(tmp_path, "trade", "--strategy", "config/strategies/rsi_meanrev.yaml",
               "--mode", "paper", "--max-candles", "220",
               env={"TRADEFLOW_EXCHANGE__BASE_URL": sim.base_url})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "**Trader `rsi_meanrev` (paper)**" in proc.stdout and "| signals |" in proc.stdout
    # No registry was opened: no MLflow database or artifact directory under the data dir.
    assert not [p.name for p in tmp_path.iterdir() if "mlflow" in p.name or p.name == "mlruns"]

    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    history = ledger.equity_history(strategy.name)
    assert len(history) == 220
    first, last = history[0].ts - MIN, history[-1].ts - MIN  # open times of the candles traded
    assert ledger.check_consistency(strategy.name) == []
    ours = sorted((f.ts, f.symbol, f.side, round(f.amount, 9), round(f.price, 9))
                  for f in ledger.fills(strategy.name))
    decisions = [d for d in ledger.decisions(strategy.name, limit=None) if d.kind == "signal"]
    assert all(d.model_version == "signals" for d in decisions)
    assert all([x["source"] for x in d.signals or ()] == ["rsi", "trend_15m", "aggregate"]
               for d in decisions)
    ledger.close()

    # The backtester on the same candles: sources evaluated over the whole history, the
    # portfolio backtested from the first candle the trader processed.
    signals = signal_strategy(strategy)
    candles = {s: sim_candles(sim.venue, s, last) for s in strategy.symbols}
    frames, proba = {}, {}
    for s, frame in candles.items():
        assert frame["open_time"].iloc[-1] == last
        i = int(np.searchsorted(frame["open_time"].to_numpy(), first))
        proba[s] = signals.probabilities(frame)[i:]
        frames[s] = frame.iloc[i:].reset_index(drop=True)
    result = backtest_strategy_portfolio(frames, proba, strategy)
    expected = sorted((int(r.time), r.symbol, r.side, round(r.qty, 9), round(r.price, 9))
                      for r in result.fills.itertuples(index=False))
    assert len(expected) >= 2, "no trade in the candles traded: did the start take > 18 s?"
    assert ours == expected
