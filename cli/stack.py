"""The owner's everyday setup: ``tradeflow up`` and ``tradeflow down``.

``up`` keeps running, in the background: the exchange simulator (when the profile's exchange
is the local simulator), a Prefect server, a process worker of ``tradeflow-local`` with every
deployment of prefect.yaml (daily retrain at 02:00 UTC, backfill every 15 minutes), the MLflow
UI, and one trader run per strategy of the profile (``trader.strategy`` and ``trader.also``,
each with its own metrics port), with the automation that restarts a crashed trader run
(:mod:`trader.restarts`). With no champion yet, it runs one daily retrain first so the trader
has a model. ``down`` cancels the trader runs and stops them all.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cli.profile import Profile
from cli.supervisor import (
    ROOT,
    Services,
    deploy_all,
    free_port,
    http_ok,
    start_prefect_server,
    start_simulator,
    start_worker,
)
from tradeflow.config import Settings
from tradeflow.errors import UserError
from trader.restarts import ensure_restart_automation

ORDER = ["worker", "mlflow-ui", "prefect-server", "simulator", "prometheus", "pushgateway"]


def services_for(settings: Settings) -> Services:
    return Services(settings.data_dir / "services")


def up(settings: Profile, profile: Path, *, monitoring: bool = False,
       say: Callable[[str], None] = print) -> dict[str, str]:
    """Start everything that is not already running; returns the URLs.

    ``monitoring`` also starts Prometheus and the Pushgateway, and the worker's flow runs push
    their metrics there."""
    services = services_for(settings)
    data = settings.data_dir.resolve()
    urls: dict[str, str] = {}
    worker_env = {"TRADEFLOW_CONFIG": str(profile.resolve())}
    if monitoring:
        from cli.monitoring import start_monitoring

        monitored = start_monitoring(settings, services, say=say)
        urls.update(monitored)
        worker_env["TRADEFLOW_MONITORING__PUSHGATEWAY_URL"] = monitored["Pushgateway"]
    base = settings.exchange.base_url
    if base and urlsplit(base).hostname in ("127.0.0.1", "localhost"):
        port = urlsplit(base).port or settings.simulator.port
        if not http_ok(f"{base}/api/v3/ping"):
            say(f"starting the exchange simulator on {base}")
            start_simulator(services, profile, port)
        urls["exchange (simulator)"] = base
    server = services.running("prefect-server")
    if server is None:
        say("starting the Prefect server")
        api = start_prefect_server(services, data / "prefect", free_port(4200))
        server = services.running("prefect-server")
    assert server is not None and server.url is not None
    api = f"{server.url}/api"
    urls["Prefect UI"] = server.url
    tracking = settings.mlflow_tracking_uri
    if tracking.startswith(("sqlite:", "file:")) or "://" not in tracking:
        if services.running("mlflow-ui") is None:
            port = free_port(5000)
            say("starting the MLflow UI")
            services.start("mlflow-ui", [str(Path(sys.executable).parent / "mlflow"), "ui",
                                         "--backend-store-uri", tracking,
                                         "--default-artifact-root",
                                         settings.mlflow_artifact_root, "--host", "127.0.0.1",
                                         "--port", str(port)],
                           url=f"http://127.0.0.1:{port}",
                           ready=lambda: http_ok(f"http://127.0.0.1:{port}/health"),
                           timeout=120)
        urls["MLflow UI"] = services.running("mlflow-ui").url  # type: ignore[union-attr]
    else:
        urls["MLflow UI"] = tracking
    home = data / "prefect"
    say("deploying prefect.yaml to the tradeflow-local work pool")
    deploy_all(api, home)
    if services.running("worker") is None:
        start_worker(services, api, home, worker_env)
    elif monitoring and "TRADEFLOW_MONITORING__PUSHGATEWAY_URL" not in _env_of(
            services.running("worker")):
        say("the worker was started without --monitoring: its flow runs do not push metrics "
            "until `tradeflow down` and `tradeflow up --monitoring`")
    os.environ["PREFECT_API_URL"] = api
    asyncio.run(ensure_restart_automation("trader/trader"))
    # The deployments run the profile's strategies, whatever prefect.yaml's default says.
    if not _has_champion(settings, settings.trader.strategy):
        say("no champion yet: running daily-retrain once now (a few minutes)")
        _run_and_wait("daily-retrain/daily-retrain", {"strategy": settings.trader.strategy})
    for strategy in settings.trader.strategies:
        _start_trader(settings, strategy, say)
        port = settings.trader.metrics_port_of(strategy)
        if port:
            urls[f"trader metrics ({Path(strategy).stem})"] = \
                f"http://127.0.0.1:{port}/metrics"
    return urls


def _start_trader(settings: Settings, strategy: str, say: Callable[[str], None]) -> None:
    """One trader run of ``strategy``, unless one is running or queued already."""
    if not _has_champion(settings, strategy):
        say(f"{strategy}: no champion (train and promote it: tradeflow train / promote, or "
            "the daily-retrain deployment); its trader is not started")
    elif asyncio.run(_active_runs("trader/trader", strategy)):
        say(f"{strategy}: a trader run is already active")
    else:
        _run_and_wait("trader/trader", {"strategy": strategy, "mode": settings.trader.mode},
                      wait=False)
        say(f"started the trader of {strategy} ({settings.trader.mode})")


def down(settings: Settings, services_dir: Path | None = None, *,
         say: Callable[[str], None] = print) -> list[str]:
    """Cancel the trader's run and stop every recorded service."""
    services = Services(services_dir) if services_dir else services_for(settings)
    server = services.running("prefect-server")
    if server is not None and server.url:
        os.environ["PREFECT_API_URL"] = f"{server.url}/api"
        try:
            cancelled = asyncio.run(_cancel_runs("trader/trader"))
            if cancelled:
                say(f"cancelled {cancelled} trader run(s)")
        except Exception as exc:  # the server may already be half-stopped
            say(f"could not cancel trader runs: {exc}")
    stopped = services.stop_all(ORDER)
    return stopped


def _env_of(service: Any) -> str:
    """The environment of a running service's process (empty when unreadable)."""
    try:
        return Path(f"/proc/{service.pid}/environ").read_text(errors="replace")
    except OSError:
        return ""


def _has_champion(settings: Settings, strategy: str) -> bool:
    """Whether ``strategy`` can trade: its champion is registered, or it needs no model (a
    sources strategy without an ``ml`` source)."""
    from models.registry import champion, configure_tracking
    from models.signal_sources import needs_model
    from tradeflow.strategy import load_strategy

    loaded = load_strategy(strategy)
    if loaded.sources and not needs_model(loaded):
        return True
    configure_tracking(settings)
    return champion(loaded.model_name) is not None


def _run_and_wait(name: str, parameters: dict[str, Any], *, wait: bool = True) -> Any:
    from prefect.deployments import run_deployment

    run = run_deployment(name, parameters=parameters, timeout=1800 if wait else 0,
                         poll_interval=2)
    if wait and (run.state is None or not run.state.is_completed()):
        state = run.state.name if run.state else "?"
        raise UserError(f"{name} ended {state}: {run.state.message if run.state else ''}")
    return run


async def _active_runs(name: str, strategy: str | None = None) -> list[Any]:
    """Running, pending or scheduled runs of deployment ``name`` (of ``strategy`` only, when
    given)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    async with get_client() as client:
        deployment = await client.read_deployment_by_name(name)
        runs = await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(
                any_=[StateType.RUNNING, StateType.PENDING, StateType.SCHEDULED]))))
    return [r for r in runs
            if strategy is None or (r.parameters or {}).get("strategy") == strategy]


async def _cancel_runs(name: str) -> int:
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelling

    runs = await _active_runs(name)
    async with get_client() as client:
        for run in runs:
            await client.set_flow_run_state(run.id, Cancelling(), force=True)
    return len(runs)


def services_status(settings: Settings) -> list[tuple[str, bool, str | None, str]]:
    """(name, alive, url, log) of each recorded service."""
    return [(s.name, s.alive, s.url, s.log) for s in services_for(settings).load().values()]


__all__ = ["ROOT", "down", "services_status", "up"]
