"""Automatic restarts of crashed trader runs: a Prefect automation, and the cap on a restart loop.

A trader flow run whose process dies (``kill -9``, an out-of-memory kill, a lost host) is
marked Crashed by its worker. The automation made here reacts to that event and runs the
same deployment again with the crashed run's strategy, mode and profile, marked
``restart=True``. The new run resumes from the ledger like any restart (nothing is booked
twice: the ledger's writes are idempotent and open orders are reconciled), and
:mod:`trader.exclusive` keeps it from overlapping another trader of the same strategy.

A restarted run counts its strategy's crashes within ``trader.restart_window_s``; from
``trader.max_restarts`` on it refuses to trade and ends Failed (not Crashed, so the
automation does not fire again): a restart loop stops and says why. The count is shown in
``tradeflow status`` and the trader's ``tradeflow_trader_restarts`` metric.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

AUTOMATION = "tradeflow: restart crashed traders"
CRASHED = "prefect.flow-run.Crashed"


def _restart_action(deployment_id: Any) -> Any:
    from prefect.events.actions import RunDeployment

    return RunDeployment(source="selected", deployment_id=deployment_id, parameters={
        "strategy": "{{ flow_run.parameters.strategy }}",
        "mode": "{{ flow_run.parameters.mode }}",
        "config": "{{ flow_run.parameters.config or '' }}",
        "restart": True,
    })


async def ensure_restart_automation(deployment: str = "trader/trader") -> Any:
    """Create (or update) the automation that re-runs ``deployment``'s crashed runs."""
    from prefect.automations import Automation
    from prefect.client.orchestration import get_client
    from prefect.events.schemas.automations import EventTrigger, Posture

    async with get_client() as client:
        target = await client.read_deployment_by_name(deployment)
    automation = Automation(
        name=AUTOMATION,
        description="Runs the trader deployment again when one of its runs crashed, with "
                    "the same strategy, mode and profile (capped by trader.max_restarts).",
        trigger=EventTrigger(
            expect={CRASHED},
            match_related={"prefect.resource.id": f"prefect.deployment.{target.id}"},
            posture=Posture.Reactive, threshold=1, within=dt.timedelta(0)),
        actions=[_restart_action(target.id)])
    try:
        existing = await Automation.aread(name=AUTOMATION)
    except ValueError:
        return await automation.acreate()
    automation.id = existing.id
    await automation.aupdate()
    return automation


async def recent_crashes(deployment_id: Any, strategy: str, window_s: float) -> int:
    """Crashed runs of ``deployment_id`` trading ``strategy`` that started in the window."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterStartTime,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=window_s)
    async with get_client() as client:
        runs = await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.CRASHED])),
                start_time=FlowRunFilterStartTime(after_=since)))
    return sum(1 for r in runs if (r.parameters or {}).get("strategy") == strategy)


def restart_loop_message(strategy: str, crashes: int, window_s: float) -> str:
    return (f"trader of {strategy} crashed {crashes} times in the last {window_s:g} s "
            "(trader.max_restarts); not restarting it again: see its logs "
            "(tradeflow logs trader), fix the cause, then start it yourself")
