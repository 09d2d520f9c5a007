"""``tradeflow up --monitoring``: Debian's Prometheus and Pushgateway beside the rest.

The Prometheus config is generated from the profile under ``<data_dir>/monitoring/``: it
scrapes the trader's and the recorder's metrics endpoints and the Pushgateway (where flow runs
push), and loads the alert rules of ``monitoring/prometheus/alerts.yml``. Both run as services
of the process supervisor, so ``tradeflow status`` lists them and ``tradeflow down`` stops them.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from cli.supervisor import ROOT, Services, free_port, http_ok
from tradeflow.config import Settings
from tradeflow.errors import UserError

RULES = ROOT / "monitoring" / "prometheus" / "alerts.yml"
SERVICES = ("prometheus", "pushgateway")
INSTALL = ("apt-get install -y --no-install-recommends prometheus prometheus-pushgateway")


def binary(name: str) -> str:
    """The path of a Prometheus tool, or a one-line error saying how to install it."""
    path = shutil.which(name)
    if path is None:
        raise UserError(f"{name} is not installed; install it with `{INSTALL}`")
    return path


def prometheus_config(settings: Settings, pushgateway: str | None,
                      rules: Path | None = RULES,
                      extra_targets: dict[str, str] | None = None) -> dict[str, Any]:
    """Prometheus's configuration: one job per metrics endpoint of the profile.

    ``pushgateway`` is ``host:port``; ``extra_targets`` maps more job names to ``host:port``.
    """
    interval = f"{settings.monitoring.scrape_interval_s:g}s"
    jobs: dict[str, list[str]] = {}
    trader = settings.trader
    ports = [trader.metrics_port_of(s) for s in trader.strategies]  # one trader per strategy
    if any(ports):
        jobs["tradeflow-trader"] = [f"127.0.0.1:{p}" for p in ports if p]
    if settings.recorder.metrics_port:
        jobs["tradeflow-recorder"] = [f"127.0.0.1:{settings.recorder.metrics_port}"]
    jobs.update({name: [target] for name, target in (extra_targets or {}).items()})
    scrape: list[dict[str, Any]] = [
        {"job_name": name, "static_configs": [{"targets": targets}]}
        for name, targets in jobs.items()]
    if pushgateway:
        # honor_labels: a pushed series keeps its own job label (the flow's), not "pushgateway".
        scrape.append({"job_name": "pushgateway", "honor_labels": True,
                       "static_configs": [{"targets": [pushgateway]}]})
    config: dict[str, Any] = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": scrape,
    }
    if rules is not None:
        config["rule_files"] = [str(rules)]
    return config


def start_pushgateway(services: Services, directory: Path, port: int) -> str:
    """The Pushgateway on loopback, its pushes persisted under ``directory``; its URL."""
    url = f"http://127.0.0.1:{port}"
    services.start("pushgateway", [binary("prometheus-pushgateway"),
                                   f"--web.listen-address=127.0.0.1:{port}",
                                   f"--persistence.file={directory / 'pushgateway.db'}"],
                   url=url, ready=lambda: http_ok(f"{url}/-/ready"), timeout=60)
    return url


def start_prometheus(services: Services, directory: Path, config: dict[str, Any],
                     port: int) -> str:
    """Prometheus on loopback with ``config`` written to ``directory``; its URL."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    url = f"http://127.0.0.1:{port}"
    services.start("prometheus", [binary("prometheus"), f"--config.file={path}",
                                  f"--storage.tsdb.path={directory / 'tsdb'}",
                                  f"--web.listen-address=127.0.0.1:{port}",
                                  "--web.enable-lifecycle"],
                   url=url, ready=lambda: http_ok(f"{url}/-/ready"), timeout=60)
    return url


def start_monitoring(settings: Settings, services: Services, *,
                     say: Callable[[str], None] = print) -> dict[str, str]:
    """Start what is not running yet; returns the URLs by label."""
    directory = (settings.data_dir / "monitoring").resolve()
    directory.mkdir(parents=True, exist_ok=True)
    gateway = services.running("pushgateway")
    if gateway is None:
        say("starting the Prometheus Pushgateway")
        push_url = start_pushgateway(services, directory,
                                     free_port(settings.monitoring.pushgateway_port))
    else:
        push_url = str(gateway.url)
    prom = services.running("prometheus")
    if prom is None:
        say("starting Prometheus")
        config = prometheus_config(settings, push_url.removeprefix("http://"))
        prom_url = start_prometheus(services, directory, config,
                                    free_port(settings.monitoring.prometheus_port))
    else:
        prom_url = str(prom.url)
    return {"Prometheus": prom_url, "Pushgateway": push_url}
