"""The one-command demo: the whole platform on one laptop, from an empty data/demo.

1. the exchange simulator, accelerated (one 1m candle per second) with a learnable edge;
2. a local Prefect server, the `tradeflow-local` process pool, `prefect deploy --all` and a
   worker, so everything below runs as deployments exactly as in production;
3. daily-retrain: backfill -> validate -> train -> promote (MLflow under data/demo);
4. the trader deployment on the champion, paper, for an hour of simulated market, while the
   order-flow recorder (`tradeflow record`) stores the symbols' trades, book snapshots and
   tickers;
5. a backtest report of the champion and a summary of where to look; then every process
   it started is stopped (unless ``keep``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cli.profile import load_profile
from cli.supervisor import (
    ROOT,
    Services,
    deploy_all,
    free_port,
    start_prefect_server,
    start_recorder,
    start_simulator,
    start_worker,
)
from tradeflow.config import Settings
from tradeflow.errors import UserError

DEMO_PROFILE = ROOT / "config" / "demo.yaml"


@dataclass
class DemoReport:
    """What the demo did and where its results are."""

    prefect_ui: str = ""
    simulator: str = ""
    stages: dict[str, float] = field(default_factory=dict)
    retrain: dict[str, Any] = field(default_factory=dict)
    champion: str | None = None
    trader: dict[str, Any] = field(default_factory=dict)
    ledger: dict[str, Any] = field(default_factory=dict)
    orderflow: dict[str, int] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    orchestration_s: float = 0.0


class _Stage:
    def __init__(self, report: DemoReport, name: str, say: Callable[[str], None]) -> None:
        self.report, self.name, self.say = report, name, say

    def __enter__(self) -> None:
        self.say(f"-> {self.name}")
        self.started = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        took = time.perf_counter() - self.started
        self.report.stages[self.name] = took
        if exc[0] is None:
            self.say(f"   done in {took:.1f}s")


def run_demo(*, profile: Path = DEMO_PROFILE, trade_candles: int = 60, keep: bool = False,
             say: Callable[[str], None] = print) -> DemoReport:
    """Run the demo end to end; returns the report (``say`` prints progress)."""
    settings = load_profile(str(profile), env={k: v for k, v in os.environ.items()
                                           if not k.startswith("TRADEFLOW_")})
    data = settings.data_dir.resolve()
    if ROOT / "data" not in (data, *data.parents):
        raise UserError(f"the demo's data_dir must be under {ROOT / 'data'}, not {data}")
    report = DemoReport()
    shutil.rmtree(data, ignore_errors=True)  # the demo always starts from an empty market
    services = Services(data / "services")
    try:
        _run(settings, profile, data, services, report, trade_candles, say)
    finally:
        if not keep:
            stopped = services.stop_all(["recorder", "worker", "prefect-server", "simulator"])
            if stopped:
                say(f"stopped: {', '.join(stopped)}")
    return report


def _run(settings: Settings, profile: Path, data: Path, services: Services, report: DemoReport,
         trade_candles: int, say: Callable[[str], None]) -> None:
    with _Stage(report, "start simulator and Prefect server", say):
        sim_port = free_port()
        report.simulator = start_simulator(services, profile, sim_port)
        ui_port = free_port(4200)
        api = start_prefect_server(services, data / "prefect", ui_port)
        report.prefect_ui = f"http://127.0.0.1:{ui_port}"
    flows_env = {"TRADEFLOW_CONFIG": str(profile.resolve()),
                 "TRADEFLOW_EXCHANGE__BASE_URL": report.simulator}
    with _Stage(report, "deploy (prefect deploy --all) and start a worker", say):
        deploy_all(api, data / "prefect")
        _pause_schedules(api, "backfill/backfill")
        start_worker(services, api, data / "prefect", flows_env)
    strategy = settings.trader.strategy
    with _Stage(report, "daily-retrain: backfill, validate, train, promote", say):
        report.retrain = _run_deployment(api, "daily-retrain/daily-retrain",
                                         {"strategy": strategy}, report)
    champion = _champion(settings, strategy)
    report.champion = champion
    if champion is None:
        say("   no model passed promotion, so there is no champion to trade (see the "
            "promote artifact in the Prefect UI)")
    else:
        say(f"   champion: version {champion}")
        with _Stage(report, f"paper trader on the champion ({trade_candles} candles), "
                    "order flow recorded meanwhile", say):
            start_recorder(services, profile, report.simulator)
            try:
                report.trader = _run_deployment(api, "trader/trader",
                                                {"strategy": strategy, "mode": "paper",
                                                 "max_candles": trade_candles}, report)
            finally:
                services.stop("recorder")  # SIGTERM: it writes what it holds, then exits
            report.orderflow = _orderflow_counts(settings)
    with _Stage(report, "reports and summary", say):
        report.files, report.ledger = _results(settings, strategy, data)


def _orderflow_counts(settings: Settings) -> dict[str, int]:
    from tradeflow.market.orderflow_store import open_orderflow_store

    store = open_orderflow_store(settings)
    try:
        return store.counts(settings.exchange.id)
    finally:
        store.close()


def _pause_schedules(api: str, deployment: str) -> None:
    """The 15-minute backfill would compete with the demo's own runs."""
    os.environ["PREFECT_API_URL"] = api
    from prefect.client.orchestration import get_client

    async def pause() -> None:
        async with get_client() as client:
            found = await client.read_deployment_by_name(deployment)
            for schedule in found.schedules:
                await client.update_deployment_schedule(found.id, schedule.id, active=False)

    asyncio.run(pause())


def _run_deployment(api: str, name: str, parameters: dict[str, Any],
                    report: DemoReport) -> dict[str, Any]:
    os.environ["PREFECT_API_URL"] = api
    from prefect.deployments import run_deployment

    started = time.perf_counter()
    # Its end is noticed within 0.2 s: one loopback read per poll.
    run = run_deployment(name, parameters=parameters, timeout=900, poll_interval=0.2)
    state = run.state
    if state is None or not state.is_completed():
        message = state.message if state is not None else "no state"
        raise UserError(f"{name} ended {state.name if state else '?'}: {message}")
    work = _work_seconds(run)
    wall = time.perf_counter() - started
    report.orchestration_s += max(0.0, wall - work)
    return {"flow_run": str(run.id), "state": state.name, "run_s": round(work, 1),
            "wall_s": round(wall, 1)}


def _work_seconds(run: Any) -> float:
    """Wall time the flow run itself was Running (the rest is orchestration overhead)."""
    start, end = getattr(run, "start_time", None), getattr(run, "end_time", None)
    if start is None or end is None:
        return 0.0
    return max(0.0, (end - start).total_seconds())


def _champion(settings: Settings, strategy_path: str) -> str | None:
    from models.registry import champion, configure_tracking
    from tradeflow.strategy import load_strategy

    configure_tracking(settings)
    info = champion(load_strategy(strategy_path).model_name)
    return info.version if info else None


def _results(settings: Settings, strategy_path: str, data: Path) -> tuple[dict[str, str],
                                                                          dict[str, Any]]:
    from tradeflow.strategy import load_strategy
    from trader.app import ledger_for

    strategy = load_strategy(strategy_path)
    files: dict[str, str] = {}
    site = data / "gx" / "uncommitted" / "data_docs" / "local_site"
    for name, label in (("summary.html", "Validation summary"), ("index.html", "Data Docs")):
        if (site / name).exists():
            files[label] = str((site / name).relative_to(ROOT))
    plots = sorted((data / "mlartifacts").rglob("*.png")) if (data / "mlartifacts").exists() \
        else []
    for plot in plots[:2]:
        files[f"MLflow artifact {plot.name}"] = str(plot.relative_to(ROOT))
    ledger: dict[str, Any] = {}
    lg = ledger_for(settings)
    try:
        if strategy.name in lg.strategies():
            ledger = lg.summary(strategy.name)
    finally:
        lg.close()
    return files, ledger


def print_report(report: DemoReport, settings_profile: Path = DEMO_PROFILE,
                 say: Callable[[str], None] = print) -> None:
    """Where to look, and what happened."""
    total = sum(report.stages.values())
    say("")
    say(f"tradeflow demo finished in {total:.0f}s")
    for name, took in report.stages.items():
        say(f"  {took:6.1f}s  {name}")
    say("")
    say("Where to look:")
    say(f"  Prefect UI:   {report.prefect_ui}  (flow runs, artifacts, the daily schedule; "
        "stopped now - run `tradeflow demo --keep` to keep it up)")
    say(f"  MLflow UI:    .venv/bin/mlflow ui --backend-store-uri "
        f"sqlite:///{Path('data/demo/mlflow.db')} --port 5000   then http://127.0.0.1:5000")
    for label, path in report.files.items():
        say(f"  {label}: {path}")
    say("")
    if report.champion:
        say(f"Model: champion version {report.champion}")
    led = report.ledger
    if led:
        start = led.get("starting_balance") or 0.0
        equity = led.get("equity") or 0.0
        say(f"Ledger (data/demo/ledger.db): {led.get('fills', 0)} fills, "
            f"{led.get('orders', {}).get('total', 0)} orders, equity {equity:,.2f} "
            f"(PnL {equity - start:+,.2f}), model version {led.get('model_version')}")
        for p in led.get("positions", []):
            if p.get("qty"):
                say(f"  holding {p['symbol']} {p['qty']:.6g} @ {p['avg_price']:.6g}")
    flow = report.orderflow
    if flow:
        say(f"Order flow recorded while the trader ran (data/demo/market.duckdb): "
            f"{flow.get('trades', 0)} trades, {flow.get('book_snapshots', 0)} book snapshots, "
            f"{flow.get('tickers', 0)} tickers")
