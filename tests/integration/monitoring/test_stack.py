"""`tradeflow up --monitoring`'s Prometheus and Pushgateway: started, scraping, listed, stopped."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cli.main import main
from cli.monitoring import prometheus_config, start_monitoring
from cli.profile import load_profile
from cli.stack import down, services_for
from cli.supervisor import free_port
from tests.fixtures.prometheus import need, targets_up, wait_for
from trader.prometheus import TraderMetrics


def test_config_scrapes_the_profiles_endpoints_and_loads_the_rules(tmp_path: Path) -> None:
    settings = load_profile(env={"TRADEFLOW_TRADER__METRICS_PORT": "9200",
                                 "TRADEFLOW_RECORDER__METRICS_PORT": "0",
                                 "TRADEFLOW_MONITORING__SCRAPE_INTERVAL_S": "5"})
    config = prometheus_config(settings, "127.0.0.1:9091")
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    assert set(jobs) == {"tradeflow-trader", "pushgateway"}
    assert jobs["tradeflow-trader"]["static_configs"] == [{"targets": ["127.0.0.1:9200"]}]
    assert jobs["pushgateway"]["honor_labels"] is True
    assert config["global"]["scrape_interval"] == "5s"
    assert Path(config["rule_files"][0]).is_file()


def test_up_monitoring_starts_both_status_lists_them_down_stops_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    need("prometheus")
    need("prometheus-pushgateway")
    trader = TraderMetrics("s")
    port = trader.serve(free_port())
    assert port
    trader.equity.labels("s").set(1000.0)
    profile = tmp_path / "profile.yaml"
    profile.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        f"trader: {{metrics_port: {port}}}\nrecorder: {{metrics_port: 0}}\n"
        f"monitoring: {{prometheus_port: {free_port()}, pushgateway_port: {free_port()}, "
        "scrape_interval_s: 1}\n")
    settings = load_profile(str(profile), env={})
    services = services_for(settings)
    try:
        urls = start_monitoring(settings, services, say=lambda _: None)
        prom, gateway = urls["Prometheus"], urls["Pushgateway"]
        assert (tmp_path / "data" / "monitoring" / "prometheus.yml").is_file()
        wait_for(lambda: targets_up(prom) == {"tradeflow-trader": "up", "pushgateway": "up"},
                 what="both targets up")
        # Idempotent: a second start keeps the running processes.
        pids = {n: s.pid for n, s in services.load().items()}
        assert start_monitoring(settings, services, say=lambda _: None) == urls
        assert {n: s.pid for n, s in services.load().items()} == pids
        assert main(["--config", str(profile), "status"]) == 0
        out = capsys.readouterr().out
        assert f"prometheus      running  {prom}" in out
        assert f"pushgateway     running  {gateway}" in out
        procs = list(services.load().values())
        assert sorted(down(settings, say=lambda _: None)) == ["prometheus", "pushgateway"]
        time.sleep(0.2)
        assert not any(p.alive for p in procs)
    finally:
        services.stop_all()
        trader.close()
