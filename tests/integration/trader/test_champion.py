"""The trader serves the registry's champion: hot swap, missing champion, live refusal."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from tests.fixtures.models import register_wiggle
from tests.fixtures.simulator import SimFactory
from tradeflow.config import Settings, load_settings
from trader.app import run_trader
from trader.ledger import Ledger

ROOT = Path(__file__).resolve().parents[3]
STRATEGY = """
name: swap
symbols: [BTC/USDT, ETH/USDT]
timeframe: 1m
features: [{name: returns}]
signal: {enter_above: 0.55, exit_below: 0.5}
sizing: {kind: fixed_fraction, fraction: 0.3}
risk: {max_orders_per_minute: 1000}
"""


def settings_for(tmp_path: Path, base_url: str) -> Settings:
    from models.registry import configure_tracking

    settings = load_settings(env={}, overrides={
        "data_dir": str(tmp_path), "exchange": {"base_url": base_url},
        "trader": {"model_poll_s": 0.3, "metrics_port": 0}})
    configure_tracking(settings)
    return settings


def test_a_champion_promoted_mid_run_is_picked_up_between_candles(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = sim_factory(history_days=0.5, speed=120.0, symbols=("BTC/USDT", "ETH/USDT"),
                      ws_update_ms=100)
    settings = settings_for(tmp_path, sim.base_url)
    strategy_file = tmp_path / "swap.yaml"
    strategy_file.write_text(STRATEGY)
    assert register_wiggle("tradeflow-swap") == "1"

    async def scenario() -> object:
        task = asyncio.create_task(run_trader(settings, str(strategy_file), max_candles=16))
        ledger = Ledger(settings.ledger_url)
        while not task.done():
            await asyncio.sleep(0.2)
            history = ledger.equity_history("swap") if "swap" in ledger.strategies() else []
            if len(history) >= 4:
                break
        await asyncio.to_thread(register_wiggle, "tradeflow-swap", flip=True)
        return await task

    summary = asyncio.run(scenario())
    assert summary.model_versions == ["1", "2"]  # type: ignore[attr-defined]
    ledger = Ledger(settings.ledger_url)
    versions = [d.model_version for d in reversed(ledger.decisions("swap", limit=1000))]
    assert versions and set(versions) <= {"1", "2"}
    assert ledger.trader_state("swap").model_version == "2"
    if "2" in versions:  # decisions after the swap name the new version
        assert versions[versions.index("2"):] == ["2"] * (len(versions) - versions.index("2"))
    mlflow.end_run()


def cli(tmp_path: Path, *args: str, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TRADEFLOW_")}
    base.update({"TRADEFLOW_DATA_DIR": str(tmp_path), "TRADEFLOW_TRADER__METRICS_PORT": "0"})
    base.update(env or {})
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT,
                          env=base, capture_output=True, text=True, timeout=120)


def test_missing_champion_is_a_clear_message(sim_factory: SimFactory, tmp_path: Path) -> None:
    sim = sim_factory(history_days=0.2)
    strategy_file = tmp_path / "swap.yaml"
    strategy_file.write_text(STRATEGY)
    proc = cli(tmp_path, "trade", "--strategy", str(strategy_file),
               env={"TRADEFLOW_EXCHANGE__BASE_URL": sim.base_url})
    assert proc.returncode == 1
    assert "no champion for tradeflow-swap" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("env", [{}, {"TRADEFLOW_LIVE_CONFIRM": "no"}])
def test_live_mode_without_confirmation_refuses_in_one_line(tmp_path: Path,
                                                            env: dict[str, str]) -> None:
    proc = cli(tmp_path, "trade", "--mode", "live", env=env)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "TRADEFLOW_LIVE_CONFIRM=yes" in lines[0]
    assert "Traceback" not in proc.stderr


def test_live_mode_with_confirmation_but_no_keys_refuses(tmp_path: Path) -> None:
    proc = cli(tmp_path, "trade", "--mode", "live", env={"TRADEFLOW_LIVE_CONFIRM": "yes"})
    assert proc.returncode == 1 and "TRADEFLOW_EXCHANGE__API_KEY" in proc.stderr
