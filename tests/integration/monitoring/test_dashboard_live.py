"""The dashboard against running processes: the simulator, `tradeflow record` and a paper
`tradeflow trade` (a technical strategy that trades often, paper fills against the live
book) scraped by a real Prometheus, flows' batches on a real Pushgateway. Every panel's
query returns series (the served-model panel excepted: a strategy of technical sources serves
no model version), and `tradeflow dashboard` renders them all into a PNG."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cli.monitoring import prometheus_config, start_prometheus
from cli.profile import load_profile
from cli.supervisor import free_port
from tests.fixtures.prometheus import api, need, pushgateway, targets_up, wait_for
from tests.fixtures.simulator import SimFactory
from tradeflow.monitoring.dashboard import fetch, load_dashboard
from tradeflow.monitoring.push import flow_metrics, record_training

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "monitoring" / "grafana" / "tradeflow.json"
# Flow panels are fed by pushes; only the ones this test pushes are expected to show.
PUSHED = {"Last run succeeded", "Flow run duration", "Hours since the last run reported",
          "Training: out-of-sample AUC and Sharpe"}
WITHOUT_MODEL = {"Served model version"}

STRATEGY = """name: busy_rsi
symbols: [BTC/USDT, ETH/USDT]
timeframe: 1m
sources:
  - {kind: rsi, period: 3, buy_below: 45, sell_above: 55}
signal: {enter_above: 0.55, exit_below: 0.5}
sizing: {kind: fixed_fraction, fraction: 0.3}
risk: {max_orders_per_minute: 1000}
"""


def test_every_panel_has_series_from_running_trader_and_recorder(
        sim_factory: SimFactory, tmp_path: Path) -> None:
    need("prometheus")
    sim = sim_factory(history_days=0.2, speed=60.0, symbols=("BTC/USDT", "ETH/USDT"),
                      ws_update_ms=100)
    strategy = tmp_path / "busy_rsi.yaml"
    strategy.write_text(STRATEGY)
    tport, rport = free_port(), free_port()
    services, gateway = pushgateway(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEFLOW_")}
    env.update(TRADEFLOW_DATA_DIR=str(tmp_path / "data"),
               TRADEFLOW_EXCHANGE__BASE_URL=sim.base_url,
               TRADEFLOW_TRADER__PAPER_FILLS="book",
               TRADEFLOW_TRADER__METRICS_PORT=str(tport),
               TRADEFLOW_RECORDER__METRICS_PORT=str(rport),
               TRADEFLOW_RECORDER__SYMBOLS="BTC/USDT,ETH/USDT",
               TRADEFLOW_MONITORING__SCRAPE_INTERVAL_S="1",
               TRADEFLOW_MONITORING__PUSHGATEWAY_URL=gateway)
    run = [sys.executable, "-m", "cli.main"]
    procs = [subprocess.Popen([*run, cmd, *extra], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=(tmp_path / f"{cmd}.log").open("wb"))
             for cmd, extra in (("record", ["--quiet"]),
                                ("trade", ["--strategy", str(strategy), "--mode", "paper"]))]
    try:
        settings = load_profile(env=env)
        with flow_metrics(settings, "train") as m:  # a flow's batch, pushed by the real code
            record_training(m, {"model": "busy_rsi", "auc": 0.55, "sharpe": 0.4, "trades": 9,
                                "version": "1"})
        config = prometheus_config(settings, gateway.removeprefix("http://"))
        url = start_prometheus(services, tmp_path / "prometheus", config, free_port())
        wait_for(lambda: sorted(targets_up(url).values()) == ["up"] * 3, timeout=90,
                 what="trader, recorder and pushgateway scraped")
        # Orders (the busy strategy trades within a few candles) and the live book.
        wait_for(lambda: api(url, "query", query="tradeflow_orders_total")["result"]
                 and api(url, "query", query="tradeflow_book_depth")["result"]
                 and api(url, "query", query="tradeflow_recorder_trades_refetched")["result"],
                 timeout=120, what="an order, the trader's book depth and recorder figures")
        time.sleep(4)  # a few more scrapes, so rate() and histogram_quantile() have two points
        board = load_dashboard(DASHBOARD)
        panels = fetch(url, board, minutes=5, scrape_interval_s=1,
                       variables={"symbol": "BTC/USDT"})
        flows_row = next(p["gridPos"]["y"] for p in board["panels"]
                         if p["type"] == "row" and p["title"].startswith("Flows"))
        flow_titles = {p["title"] for p in board["panels"]
                       if p["type"] != "row" and p["gridPos"]["y"] > flows_row}
        expected_empty = (flow_titles - PUSHED) | WITHOUT_MODEL
        empty = {p.title for p in panels if not p.series}
        extra = [(p.title, [x.legend for x in p.series]) for p in panels
                 if p.title in expected_empty - empty]
        assert empty == expected_empty, (
            f"without series: {sorted(empty - expected_empty)}; unexpectedly with: {extra}")
        depth = {(s.legend): s.points[-1][1] for p in panels for s in p.series
                 if p.spec["type"] == "bargauge"}
        bids = [depth[f"bids {n}"] for n in range(1, 11)]
        assert bids == sorted(bids) and bids[0] > 0, "cumulative bid depth grows by level"

        out = tmp_path / "dashboard.png"
        proc = subprocess.run([*run, "dashboard", "--prometheus", url, "--minutes", "5",
                               "--out", str(out)], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        total = len(panels)
        assert f"{total - len(expected_empty)} of {total} panels with data" in proc.stdout
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 50_000
        assert not list(tmp_path.glob(".dashboard.png.tmp"))
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        stuck = []
        for p, name in zip(procs, ("record", "trade"), strict=True):
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                stuck.append(name)
                p.kill()
                p.wait()
        services.stop_all()
    assert not stuck, f"{stuck} did not stop within 60 s of SIGTERM"
    for p, name in zip(procs, ("record", "trade"), strict=True):
        assert p.returncode == 0, (tmp_path / f"{name}.log").read_text()[-2000:]


def test_dashboard_command_says_what_is_wrong(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEFLOW_")}
    env["TRADEFLOW_DATA_DIR"] = str(tmp_path)
    run = [sys.executable, "-m", "cli.main", "dashboard"]
    for extra, message in (
            ([], "Prometheus is not running for this profile: start it with `tradeflow up "
                 "--monitoring` or pass --prometheus URL"),
            (["--prometheus", f"http://127.0.0.1:{free_port()}"], "did not answer"),
            (["--minutes", "0"], "--minutes 0: must be more than 0")):
        proc = subprocess.run([*run, *extra], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode != 0 and message in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "monitoring").exists()

