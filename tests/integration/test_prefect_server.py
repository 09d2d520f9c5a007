"""The pinned Prefect stack: server, deploy, a process worker and a deployment run, all clean."""

from __future__ import annotations

import re
import textwrap
import time
from pathlib import Path

import pytest

from cli.supervisor import POOL, Services, start_worker, worker_online
from tests.fixtures.prefect import PrefectServer, http_422_in, server_errors, stop_worker

pytestmark = pytest.mark.slow

FLOW = '''
from prefect import flow, task


@task
def add(a: int, b: int) -> int:
    return a + b


@flow(log_prints=True)
def hello(n: int = 1) -> int:
    result = add(n, 2)
    print(f"hello result {result}")
    return result
'''


def test_deploy_worker_and_deployment_run_complete(prefect_server: PrefectServer,
                                                   tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "hello.py").write_text(FLOW)
    (project / "prefect.yaml").write_text(textwrap.dedent(f"""\
        name: smoke
        pull:
        - prefect.deployments.steps.set_working_directory:
            directory: {project}
        deployments:
        - name: smoke
          entrypoint: hello.py:hello
          parameters: {{n: 40}}
          work_pool: {{name: smoke-pool}}
          schedules:
          - cron: "0 2 * * *"
            timezone: UTC
            active: false
        """))
    prefect_server.cli("work-pool", "create", "smoke-pool", "--type", "process")
    deploy = prefect_server.cli("--no-prompt", "deploy", "--all", cwd=project)
    assert "successfully created" in deploy.stdout
    assert not http_422_in(deploy.stdout + deploy.stderr)
    worker = prefect_server.start_worker("smoke-pool", project, tmp_path / "worker.log")
    try:
        run = prefect_server.cli("deployment", "run", "hello/smoke", "--watch",
                                 "--watch-timeout", "150", cwd=project, timeout=180)
    finally:
        stop_worker(worker, grace=30)
    out = run.stdout + run.stderr
    assert re.search(r"finished successfully in 'Completed'", out), out
    server_log = (prefect_server.home / "server.log").read_text()
    errors = server_errors(server_log)
    assert not errors, errors[0][-3000:]


def test_start_worker_returns_once_the_worker_has_reported(prefect_server: PrefectServer,
                                                            tmp_path: Path) -> None:
    """``tradeflow up`` and the demo create runs right after starting the worker: it must be
    online by then, not still importing Prefect."""
    prefect_server.cli("work-pool", "create", POOL, "--type", "process", "--overwrite")
    since = time.time()
    assert not worker_online(prefect_server.api_url, POOL, since)
    services = Services(tmp_path / "services")
    try:
        start_worker(services, prefect_server.api_url, prefect_server.home, {})
        assert worker_online(prefect_server.api_url, POOL, since)
    finally:
        assert services.stop("worker")
