"""The trader serves the registry's champion: hot swap, missing champion, live refusal."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from pydantic import SecretStr

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


def test_a_live_run_after_paper_runs_keeps_its_own_book(sim_factory: SimFactory,
                                                        tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Live never resumes paper state: each mode books into its own ledger (issue 12, 1)."""
    sim = sim_factory(history_days=0.5, speed=120.0, symbols=("BTC/USDT", "ETH/USDT"),
                      ws_update_ms=100)
    settings = settings_for(tmp_path, sim.base_url)
    live = settings.model_copy(update={"exchange": settings.exchange.model_copy(update={
        "api_key": SecretStr("sim-key"), "api_secret": SecretStr("sim-secret")})})
    strategy_file = tmp_path / "swap.yaml"
    strategy_file.write_text(STRATEGY)
    register_wiggle("tradeflow-swap")
    monkeypatch.setenv("TRADEFLOW_LIVE_CONFIRM", "yes")
    asyncio.run(run_trader(settings, str(strategy_file), max_candles=3))
    paper_ledger = Ledger(settings.ledger_url_for("paper"))
    paper_history = [h.ts for h in paper_ledger.equity_history("swap")]
    paper_ledger.close()
    asyncio.run(run_trader(live, str(strategy_file), mode="live", max_candles=3))
    mlflow.end_run()
    assert settings.ledger_url_for("live") != settings.ledger_url_for("paper")
    books = {mode: Ledger(settings.ledger_url_for(mode)) for mode in ("paper", "live")}
    try:
        assert [h.ts for h in books["paper"].equity_history("swap")] == paper_history
        live_history = books["live"].equity_history("swap")
        assert len(live_history) == 3 and live_history[0].ts > paper_history[-1]
        assert books["live"].trader_state("swap") is not None
    finally:
        for ledger in books.values():
            ledger.close()
    proc = cli(tmp_path, "status")
    assert proc.returncode == 0, proc.stderr
    assert "strategy swap  book paper" in proc.stdout
    assert "strategy swap  book live" in proc.stdout


def test_live_start_with_keys_the_exchange_rejects_refuses_before_anything_starts(
        sim_factory: SimFactory, tmp_path: Path) -> None:
    sim = sim_factory(history_days=0.2)
    strategy_file = tmp_path / "swap.yaml"
    strategy_file.write_text(STRATEGY)
    proc = cli(tmp_path, "trade", "--mode", "live", "--strategy", str(strategy_file), env={
        "TRADEFLOW_EXCHANGE__BASE_URL": sim.base_url,
        "TRADEFLOW_LIVE_CONFIRM": "YES",  # any case
        "TRADEFLOW_EXCHANGE__API_KEY": "not-a-key", "TRADEFLOW_EXCHANGE__API_SECRET": "x"})
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "the exchange rejected the API key" in lines[0], lines
    assert "not-a-key" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["swap.yaml"]  # nothing opened


def test_a_wrong_live_confirmation_says_what_is_expected(tmp_path: Path) -> None:
    proc = cli(tmp_path, "trade", "--mode", "live", env={"TRADEFLOW_LIVE_CONFIRM": "sure"})
    assert proc.returncode == 1
    assert "TRADEFLOW_LIVE_CONFIRM=yes in the environment (it is 'sure')" in proc.stderr
