"""Background services of a local tradeflow setup: start, health-check, record, stop.

Used by ``tradeflow up`` / ``down`` / ``status`` (services under ``data/services``) and by
``tradeflow demo`` (its own, under ``data/demo/services``, stopped when it ends). Each service
is a process in its own session, so stopping it stops its children too (a Prefect worker's
flow runs). Their pids, URLs and log files are recorded in ``state.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from tradeflow.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    pid: int
    url: str | None
    log: str
    started_at: float

    @property
    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return _not_zombie(self.pid)


def _not_zombie(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "\nState:\tZ" not in status


def free_port(preferred: int | None = None) -> int:
    """``preferred`` when nothing listens there, else any free loopback port."""
    if preferred:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", preferred))
                return preferred
            except OSError:
                pass
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= resp.status < 400
    except (OSError, ValueError):
        return False


class Services:
    """The services recorded in ``<directory>/state.json``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.state_file = directory / "state.json"

    def load(self) -> dict[str, Service]:
        try:
            raw = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}
        return {name: Service(**data) for name, data in raw.items()}

    def _save(self, services: dict[str, Service]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({n: asdict(s) for n, s in services.items()}, indent=2))
        tmp.replace(self.state_file)

    def running(self, name: str) -> Service | None:
        service = self.load().get(name)
        return service if service is not None and service.alive else None

    def start(self, name: str, cmd: list[str], *, env: dict[str, str] | None = None,
              url: str | None = None, ready: Callable[[], bool] | None = None,
              timeout: float = 120.0) -> Service:
        """Start ``cmd`` in the background and wait until ``ready()`` (or it dies)."""
        existing = self.running(name)
        if existing is not None:
            return existing
        self.directory.mkdir(parents=True, exist_ok=True)
        log = self.directory / f"{name}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env or dict(os.environ), stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        service = Service(name, proc.pid, url, str(log), time.time())
        services = self.load()
        services[name] = service
        self._save(services)
        deadline = time.monotonic() + timeout
        while ready is not None and not ready():
            if proc.poll() is not None:
                raise UserError(f"{name} exited with code {proc.returncode} while starting; "
                                f"see {log}")
            if time.monotonic() > deadline:
                self.stop(name)
                raise UserError(f"{name} did not become ready within {timeout:.0f}s; see {log}")
            time.sleep(0.3)
        return service

    def stop(self, name: str, grace: float = 20.0) -> bool:
        """Stop a service and everything it started; True when it was running."""
        services = self.load()
        service = services.pop(name, None)
        self._save(services)
        if service is None or not service.alive:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(service.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while service.alive and time.monotonic() < deadline:
            time.sleep(0.2)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(service.pid, os.WNOHANG)
        if service.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(service.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(service.pid, os.WNOHANG)
        return True

    def stop_all(self, order: list[str] | None = None) -> list[str]:
        names = order or list(self.load())
        return [n for n in names if self.stop(n)]


def prefect_env(api_url: str, home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for Prefect commands against a local server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_API_URL=api_url, PREFECT_HOME=str(home.resolve()),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_UI_ENABLED="true",
               PWD=str(ROOT))
    env.update(extra or {})
    return env


def start_prefect_server(services: Services, home: Path, port: int) -> str:
    """``prefect server start`` on loopback with its database under ``home``."""
    api = f"http://127.0.0.1:{port}/api"
    env = prefect_env(api, home)
    env.pop("PREFECT_API_URL")
    # The UI must call this server's API, not the default port's.
    env.update(PREFECT_UI_API_URL=api, PREFECT_SERVER_API_PORT=str(port))
    services.start("prefect-server", [str(BIN / "prefect"), "server", "start", "--host",
                                      "127.0.0.1", "--port", str(port)],
                   env=env, url=f"http://127.0.0.1:{port}",
                   ready=lambda: http_ok(f"{api}/health"), timeout=120)
    return api


def prefect_cli(api_url: str, home: Path, *args: str, timeout: float = 300,
                extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a ``prefect`` command against the local server; one-line error on failure."""
    proc = subprocess.run([str(BIN / "prefect"), *args], cwd=ROOT,
                          env=prefect_env(api_url, home, extra_env), capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise UserError(f"prefect {' '.join(args[:2])} failed: {tail[0]}")
    return proc


POOL = "tradeflow-local"


def deploy_all(api_url: str, home: Path) -> None:
    """Create the ``tradeflow-local`` process pool and deploy every deployment of prefect.yaml."""
    prefect_cli(api_url, home, "work-pool", "create", POOL, "--type", "process", "--overwrite")
    prefect_cli(api_url, home, "--no-prompt", "deploy", "--all")


def start_worker(services: Services, api_url: str, home: Path, env: dict[str, str]) -> None:
    """A process worker of the ``tradeflow-local`` pool, with ``env`` for its flow runs;
    returns once it has reported to the server, so a run created next is picked up at the
    worker's next poll rather than after its start-up.

    It asks its one-machine server for due runs every second instead of Prefect's 10 s
    (``PREFECT_WORKER_QUERY_SECONDS``): a deployment run starts ~4.5 s sooner on average,
    for one cheap loopback query a second.
    """
    since = time.time()
    services.start("worker", [str(BIN / "prefect"), "worker", "start", "--pool", POOL],
                   env=prefect_env(api_url, home,
                                   {**env, "PREFECT_WORKER_QUERY_SECONDS": "1"}),
                   ready=lambda: worker_online(api_url, POOL, since), timeout=120)


def worker_online(api_url: str, pool: str, since: float) -> bool:
    """Whether a worker of ``pool`` has sent the server a heartbeat after ``since``."""
    request = urllib.request.Request(f"{api_url}/work_pools/{pool}/workers/filter",
                                     data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=2.0) as resp:
            workers = json.loads(resp.read())
    except (OSError, ValueError):
        return False
    return any(w.get("last_heartbeat_time") and
               datetime.fromisoformat(w["last_heartbeat_time"]).timestamp() >= since
               for w in workers)


def start_simulator(services: Services, profile: Path, port: int) -> str:
    """``tradeflow sim`` of ``profile`` on loopback ``port``; its base URL once it answers."""
    base = f"http://127.0.0.1:{port}"
    services.start("simulator", [sys.executable, "-m", "cli.main", "--config",
                                 str(profile), "sim", "--port", str(port)], url=base,
                   ready=lambda: http_ok(f"{base}/api/v3/ping"), timeout=60)
    return base


def start_recorder(services: Services, profile: Path, base_url: str) -> Service:
    """``tradeflow record`` of ``profile`` against ``base_url``, in the background (no metrics
    port: the demo's trader and recorder would compete for it)."""
    env = {**os.environ, "TRADEFLOW_EXCHANGE__BASE_URL": base_url}
    return services.start("recorder", [sys.executable, "-m", "cli.main", "--config",
                                       str(profile), "record", "--quiet", "--metrics-port", "0"],
                          env=env)
