"""Acceptance: prefect deploy --all, a process worker, the daily retrain, the paper trader.

A real Prefect server on loopback (the session's), the repository's prefect.yaml, a worker
of the `tradeflow-local` process pool, and `prefect deployment run ... --watch`:

1. daily-retrain on a market with a learnable edge completes and leaves a champion;
2. the trader deployment loads that champion and trades on paper;
3. a second daily-retrain on a pure random walk trains a worse challenger: the champion
   stays, and the decision is recorded on the challenger's version.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from tests.fixtures.prefect import PrefectServer, stop_worker
from tests.fixtures.simulator import SimFactory

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

STRATEGY = {
    "name": "acceptance", "symbols": ["BTC/USDT", "ETH/USDT"], "timeframe": "1m",
    "features": [{"name": "returns", "horizons": [1, 2, 3, 5, 10, 15, 60]},
                 {"name": "volatility", "windows": [10, 60]}, {"name": "rsi", "period": 14},
                 {"name": "time_of_day", "day_of_week": False}],
    "label": {"kind": "forward_return", "horizon": 10, "threshold_bps": 0},
    "model": {"kind": "xgboost", "params": {"n_estimators": 120, "max_depth": 3,
                                            "learning_rate": 0.05, "min_child_weight": 100,
                                            "subsample": 0.7, "colsample_bytree": 0.8}},
    "training": {"window_days": 9, "folds": 3, "pooled": True,
                 "baselines": ["flat", "momentum"]},
    "signal": {"enter_above": 0.75, "exit_below": 0.55},
    "sizing": {"kind": "fixed_fraction", "fraction": 0.45},
    "costs": {"taker_bps": 5, "maker_bps": 2, "slippage": {"kind": "fixed", "bps": 2}},
    "risk": {"max_position_fraction": 0.5, "max_total_exposure": 1.0},
    "promotion": {"metric": "sharpe", "min_trades": 10, "max_drawdown_pct": 25,
                  "evaluation_days": 2},
}


def profile(path: Path, data_dir: Path, base_url: str, tracking: str, ledger: str) -> Path:
    path.write_text(yaml.safe_dump({
        "data_dir": str(data_dir), "symbols": STRATEGY["symbols"], "timeframes": ["1m"],
        "exchange": {"base_url": base_url, "retry_base_delay_s": 0.1},
        "backfill": {"days": 12},
        "mlflow": {"tracking_uri": tracking},
        "ledger": {"url": ledger},
        "trader": {"metrics_port": 0, "model_poll_s": 2},
    }))
    return path


def run_deployment(server: PrefectServer, name: str, *params: str) -> str:
    args = ["deployment", "run", name, "--watch", "--watch-timeout", "400"]
    for p in params:
        args += ["--param", p]
    proc = server.cli(*args, cwd=ROOT, timeout=450, check=False)
    out = proc.stdout + proc.stderr
    assert "finished successfully in 'Completed'" in out, out[-4000:]
    return out


def pause_backfill_schedule(server: PrefectServer) -> None:
    """The 15-minute backfill would run on its own during the test; keep the test exact."""
    from prefect.client.orchestration import get_client

    async def pause() -> None:
        async with get_client() as client:
            deployment = await client.read_deployment_by_name("backfill/backfill")
            for schedule in deployment.schedules:
                await client.update_deployment_schedule(deployment.id, schedule.id,
                                                        active=False)

    asyncio.run(pause())


def test_deploy_daily_retrain_trader_and_a_worse_challenger(
    deployed: PrefectServer, sim_factory: SimFactory, tmp_path: Path
) -> None:
    from models.registry import champion, configure_tracking, list_versions
    from tradeflow.config import load_settings
    from trader.ledger import Ledger

    planted = sim_factory(history_days=12.0, speed=60.0, signal_strength=1.0,
                          symbols=tuple(STRATEGY["symbols"]), start_time_ms=None,
                          ws_update_ms=200)
    strategy = tmp_path / "acceptance.yaml"
    strategy.write_text(yaml.safe_dump(STRATEGY))
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    first = profile(tmp_path / "planted.yaml", tmp_path / "planted", planted.base_url,
                    tracking, ledger_url)

    server = deployed
    pause_backfill_schedule(server)
    worker = server.start_worker("tradeflow-local", ROOT, tmp_path / "worker.log",
                                 env={"TRADEFLOW_CONFIG": str(first)})
    try:
        run_deployment(server, "daily-retrain/daily-retrain", f"strategy={strategy}")
        settings = load_settings(first, env={})
        configure_tracking(settings)
        best = champion("tradeflow-acceptance")
        assert best is not None, "the first model on a learnable market becomes champion"
        assert best.tags.get("promotion.decision") == "promoted"

        run_deployment(server, "trader/trader", f"strategy={strategy}", "max_candles=8")
        ledger = Ledger(ledger_url)
        state = ledger.trader_state("acceptance")
        assert state.model_version == best.version
        assert len(ledger.equity_history("acceptance")) >= 8
        assert ledger.check_consistency("acceptance") == []

        noise = sim_factory(history_days=12.0, speed=60.0, signal_strength=0.0,
                            symbols=tuple(STRATEGY["symbols"]), start_time_ms=None, seed=7)
        second = profile(tmp_path / "noise.yaml", tmp_path / "noise", noise.base_url,
                         tracking, ledger_url)
        run_deployment(server, "daily-retrain/daily-retrain", f"strategy={strategy}",
                       f"config={second}")
        after = champion("tradeflow-acceptance")
        assert after is not None and after.version == best.version
        newest = list_versions("tradeflow-acceptance")[0]
        assert newest.version != best.version
        assert newest.tags.get("promotion.decision") in ("kept_champion", "rejected")
        assert newest.tags.get("promotion.reason")
    finally:
        stop_worker(worker)
