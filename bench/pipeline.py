"""Benchmark: the demo's stage timings and the share of Prefect orchestration overhead.

Runs `tradeflow demo` (keeping its Prefect server up), then reads every flow run, task run and
the top-level runs' states and logs from the Prefect API and prints:

* the demo's stages (wall time), and each flow run's own time: subflows of the daily
  retrain (backfill, validate, train, promote) and the trader;
* the work: time inside task bodies (the trader's work is its flow body, counted too);
* where each deployment run's wall time went: until a worker took it (Scheduled -> Pending),
  the flow-run process and Prefect engine start (to the end of its pull steps), the import of
  the flow's module (to Running), flow bodies and subflow state handling outside task runs,
  the work, and creating the run and noticing its end;
* the orchestration overhead: the wall time of the two deployment runs (each
  ``run_deployment`` call, creation to return) minus the work, and its share of the
  deployment runs and of the whole demo. The same figure over the demo's stages is printed
  too: the trader's stage also starts and stops the order-flow recorder, which is no part of
  a deployment run.

Run: ``.venv/bin/python bench/pipeline.py [--candles 60]`` (stops everything at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Running bench/x.py puts bench/ first on sys.path, where simulator.py would shadow the
# simulator package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from cli.demo_run import print_report, run_demo  # noqa: E402
from cli.supervisor import Services  # noqa: E402

# The flow-run process logs this after its pull steps, just before it imports the flow's module.
PULLED = "All deployment steps completed successfully"


async def runs_and_tasks() -> tuple[list, list]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    async with get_client() as client:
        flows = await client.read_flow_runs(limit=200)
        tasks, offset = [], 0
        while True:  # the server serves at most 200 per page
            page = await client.read_task_runs(limit=200, offset=offset)
            tasks += page
            offset += len(page)
            if len(page) < 200:
                break
        names = {f.id: (await client.read_flow(f.flow_id)).name for f in flows}
        marks = {}
        for f in flows:
            if f.parent_task_run_id is None and f.start_time is not None:
                states = await client.read_flow_run_states(f.id)
                logs = await client.read_logs(LogFilter(
                    flow_run_id=LogFilterFlowRunId(any_=[f.id])), limit=200)
                marks[f.id] = (
                    min((s.timestamp for s in states if s.type.value == "PENDING"), default=None),
                    min((log.timestamp for log in logs if log.message.startswith(PULLED)),
                        default=None))
    return [(names[f.id], f, marks.get(f.id, (None, None))) for f in flows], tasks


def seconds(value: timedelta | None) -> float:
    return value.total_seconds() if value else 0.0


def covered(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of intervals: concurrent task runs count once."""
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candles", type=int, default=60)
    args = parser.parse_args()
    report = run_demo(trade_candles=args.candles, keep=True, say=lambda _: None)
    try:
        flows, tasks = asyncio.run(runs_and_tasks())
    finally:
        Services(ROOT / "data" / "demo" / "services").stop_all(
            ["worker", "prefect-server", "simulator"])
    print_report(report)
    print("\nflow runs (own running time):")
    flows = [(n, f, p) for n, f, p in flows if f.start_time is not None]  # not future schedules
    for name, run, _ in sorted(flows, key=lambda x: x[1].start_time):
        pickup = (run.start_time - run.created).total_seconds()
        indent = "  " if run.parent_task_run_id else ""
        print(f"  {indent}{name:<16} {seconds(run.total_run_time):7.1f}s"
              + (f"   (waited {pickup:.1f}s for a worker and a process)" if not indent else ""))
    spans = [(t.start_time.timestamp(), t.end_time.timestamp()) for t in tasks
             if t.start_time is not None and t.end_time is not None]
    task_work = covered(spans)
    trader_work = sum(seconds(f.total_run_time) for n, f, _ in flows if n == "trader")
    work = task_work + trader_work
    print(f"\ntask runs: {len(tasks)}, {task_work:.1f}s with at least one task body running; "
          f"trader flow body {trader_work:.1f}s")
    runs = {"daily-retrain": report.retrain, "trader": report.trader}
    top = {n: (f, p) for n, f, p in flows if f.parent_task_run_id is None}
    print("\nwhere each deployment run's wall time went (run_deployment call to its return):")
    for name, (run, (pending, pulled)) in top.items():
        wall = float(runs.get(name, {}).get("wall_s", 0.0))
        start, end = run.start_time.timestamp(), run.end_time.timestamp()
        body = end - start
        mine = body if name == "trader" else covered(
            [(max(a, start), min(b, end)) for a, b in spans if b > start and a < end])
        queued = (pending - run.created).total_seconds() if pending else float("nan")
        boot = (pulled - pending).total_seconds() if pending and pulled else float("nan")
        load = (run.start_time - pulled).total_seconds() if pulled else float("nan")
        rest = wall - (run.end_time - run.created).total_seconds()
        print(f"  {name:<14} {wall:6.1f}s wall: {queued:5.1f}s until a worker took it, "
              f"{boot:5.1f}s process and Prefect engine start, {load:5.1f}s importing the "
              f"flow's module, {body - mine:5.1f}s flow bodies "
              f"and subflow states outside task runs, {mine:6.1f}s work, "
              f"{rest:4.1f}s create and notice the end")
    deployment_wall = sum(float(r.get("wall_s", 0.0)) for r in runs.values())
    stage_wall = sum(report.stages[s] for s in report.stages
                     if s.startswith(("daily-retrain", "paper trader")))
    overhead = max(0.0, deployment_wall - work)
    total = sum(report.stages.values())
    print(f"deployment runs (daily-retrain + trader): {deployment_wall:.1f}s wall, "
          f"{work:.1f}s work, {overhead:.1f}s orchestration")
    print(f"  (their demo stages, with the recorder's start and stop around the trader: "
          f"{stage_wall:.1f}s, {max(0.0, stage_wall - work):.1f}s beyond the work = "
          f"{max(0.0, stage_wall - work) / stage_wall:.1%})")
    print(f"Prefect orchestration overhead: {overhead:.1f}s = "
          f"{overhead / deployment_wall:.1%} of the deployment runs, "
          f"{overhead / total:.1%} of the whole demo ({total:.1f}s incl. server start, deploy)")
    if not top:
        print("(no flow runs found)")


if __name__ == "__main__":
    main()
