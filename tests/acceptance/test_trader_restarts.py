"""Acceptance: two strategies' traders side by side through Prefect; a killed one is restarted.

The session's Prefect server with the repository's prefect.yaml deployed, a process worker, the
restart automation `tradeflow up` creates, and two trader runs of the `trader/trader`
deployment (one per strategy) on paper against the simulator, booking into one PostgreSQL
ledger. Checked:

1. both run at once, and a second run of a strategy already trading is refused (Failed, one
   line naming the strategy);
2. kill -9 of one trader's process: its run is Crashed, the automation starts a new run of the
   same strategy (``restart=True``), which resumes from the ledger and reports one restart in
   its status; the other trader keeps running;
3. a second crash within the window (``max_restarts: 1``) is not restarted: the run the
   automation starts declines with one line saying why;
4. both ledgers' books are consistent and no order was placed twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.prefect import PrefectServer, stop_worker
from tests.fixtures.simulator import SimFactory

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.postgres]

STRATEGY = """name: {name}
symbols: [BTC/USDT, ETH/USDT]
timeframe: 1m
features: [{{name: returns}}]
signal: {{enter_above: 0.55, exit_below: 0.5}}
sizing: {{kind: fixed_fraction, fraction: 0.3}}
risk: {{max_orders_per_minute: 1000}}
"""


def wait_for(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.5)


async def runs_of(strategy: str) -> list[Any]:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        deployment = await client.read_deployment_by_name("trader/trader")
        from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

        runs = await client.read_flow_runs(deployment_filter=DeploymentFilter(
            id=DeploymentFilterId(any_=[deployment.id])))
    return sorted((r for r in runs if (r.parameters or {}).get("strategy") == strategy),
                  key=lambda r: r.created)


def states(strategy: str) -> list[str]:
    return [r.state.name if r.state else "?" for r in asyncio.run(runs_of(strategy))]


def status_of(data_dir: Path, name: str) -> dict[str, Any] | None:
    path = data_dir / "trader" / f"{name}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def test_two_traders_run_side_by_side_and_a_killed_one_is_restarted(
    deployed: PrefectServer, sim_factory: SimFactory, postgres_url: str, tmp_path: Path
) -> None:
    from prefect.deployments import run_deployment

    from models.registry import configure_tracking
    from tests.fixtures.models import register_wiggle
    from tradeflow.config import load_settings
    from trader.ledger import Ledger
    from trader.restarts import ensure_restart_automation

    sim = sim_factory(history_days=0.5, speed=60.0, symbols=("BTC/USDT", "ETH/USDT"),
                      ws_update_ms=200)
    files = {}
    for name in ("restart-a", "restart-b"):
        files[name] = tmp_path / f"{name}.yaml"
        files[name].write_text(STRATEGY.format(name=name))
    data_dir = tmp_path / "data"
    profile = tmp_path / "profile.yaml"
    profile.write_text(yaml.safe_dump({
        "data_dir": str(data_dir), "symbols": ["BTC/USDT", "ETH/USDT"], "timeframes": ["1m"],
        "exchange": {"base_url": sim.base_url, "retry_base_delay_s": 0.1},
        "mlflow": {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"},
        "ledger": {"url": postgres_url},
        "trader": {"strategy": str(files["restart-a"]), "also": [str(files["restart-b"])],
                   "metrics_port": 0, "model_poll_s": 2, "max_restarts": 1},
    }))
    settings = load_settings(profile, env={})
    configure_tracking(settings)
    for name in files:
        register_wiggle(f"tradeflow-{name}", flip=name == "restart-b")
    asyncio.run(ensure_restart_automation("trader/trader"))

    worker_env = dict(deployed.env, TRADEFLOW_CONFIG=str(profile))
    worker = deployed.start_worker("tradeflow-local", ROOT, tmp_path / "worker.log",
                                   env=worker_env)
    try:
        for name in files:
            run_deployment("trader/trader", timeout=0,
                           parameters={"strategy": str(files[name]), "mode": "paper"})
        first = {name: wait_for(f"{name} trading", lambda n=name: (
            (s := status_of(data_dir, n)) and s.get("last_candle") and s), 120)
            for name in files}
        assert first["restart-a"]["restarts"] == 0

        # (1) a second run of a strategy that is trading is refused, the first goes on
        second = run_deployment("trader/trader", timeout=120,
                                parameters={"strategy": str(files["restart-a"]),
                                            "mode": "paper"})
        assert second.state is not None and second.state.is_failed(), second.state
        assert "already being traded" in (second.state.message or ""), second.state.message

        # (2) kill -9 the trader of restart-a: its run crashes and is started again
        os.kill(first["restart-a"]["pid"], signal.SIGKILL)
        wait_for("the killed run marked Crashed",
                 lambda: "Crashed" in states(str(files["restart-a"])), 60)
        restarted = wait_for("a restarted trader of restart-a", lambda: (
            (s := status_of(data_dir, "restart-a")) and s.get("pid") != first["restart-a"]["pid"]
            and s.get("last_candle") and s), 180)
        assert restarted["restarts"] == 1
        runs = asyncio.run(runs_of(str(files["restart-a"])))
        assert runs[-1].parameters.get("restart") is True
        assert runs[-1].state is not None and runs[-1].state.is_running()
        b = status_of(data_dir, "restart-b")
        assert b is not None and b["pid"] == first["restart-b"]["pid"], "the other runs on"
        assert "Crashed" not in states(str(files["restart-b"]))

        shown = subprocess.run([sys.executable, "-m", "cli.main", "status"], cwd=ROOT,
                               env=dict(worker_env), capture_output=True, text=True,
                               timeout=60)
        assert shown.returncode == 0, shown.stderr
        assert "restarted 1x after a crash" in shown.stdout, shown.stdout
        assert "restart-b" in shown.stdout

        # (3) a restart loop is capped: a second crash within the window (max_restarts 1)
        # is not restarted again, and the run that declined says why
        os.kill(restarted["pid"], signal.SIGKILL)
        declined = wait_for("the restart loop refused", lambda: [
            r for r in asyncio.run(runs_of(str(files["restart-a"])))
            if r.state and r.state.is_failed() and "crashed 2 times" in (r.state.message or "")],
            180)
        assert declined[0].parameters.get("restart") is True
        assert "tradeflow logs trader" in (declined[0].state.message or "")
    finally:
        from prefect.client.orchestration import get_client
        from prefect.states import Cancelling

        async def cancel_all() -> None:
            async with get_client() as client:
                for name in files:
                    for run in await runs_of(str(files[name])):
                        if run.state and not run.state.is_final():
                            await client.set_flow_run_state(run.id, Cancelling(), force=True)

        asyncio.run(cancel_all())
        time.sleep(3)
        stop_worker(worker)

    # (4) one consistent book per strategy, no order twice
    with Ledger(postgres_url) as ledger:
        for name in files:
            assert ledger.check_consistency(name) == []
            ids = [o.client_order_id for o in ledger.orders(name)]
            assert len(ids) == len(set(ids))
