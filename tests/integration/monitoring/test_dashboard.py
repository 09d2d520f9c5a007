"""The Grafana dashboard as code: its structure, and every panel's PromQL evaluated by a real
Prometheus that scrapes a trader's and a recorder's metrics endpoints and a Pushgateway fed by
flow-run batches. Each query must parse and return series (Grafana itself is not installed)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from cli.monitoring import prometheus_config, start_prometheus
from cli.profile import load_profile
from cli.supervisor import free_port
from tests.fixtures.prometheus import api, need, pushgateway, targets_up, wait_for
from tradeflow.monitoring.push import (
    flow_metrics,
    record_backfill,
    record_promotion,
    record_training,
    record_validation,
)
from tradeflow.recorder.status import RecorderMetrics
from trader.prometheus import TraderMetrics

GRAFANA = Path(__file__).resolve().parents[3] / "monitoring" / "grafana"
# Grafana's interval variables, as Grafana would fill them in for a short range.
GRAFANA_VARS = {"$__rate_interval": "30s", "$__interval": "5s", "$__range": "5m",
                "$symbol": "BTC/USDT"}


def dashboard() -> dict[str, Any]:
    return json.loads((GRAFANA / "tradeflow.json").read_text())


def queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target of every panel."""
    return [(p["title"], t["expr"]) for p in dashboard()["panels"] if p["type"] != "row"
            for t in p["targets"]]


def promql(expr: str) -> str:
    for var, value in GRAFANA_VARS.items():
        expr = expr.replace(var, value)
    return expr


def test_dashboard_structure_and_datasource() -> None:
    board = dashboard()
    assert board["uid"] == "tradeflow" and board["schemaVersion"] >= 36
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    source = yaml.safe_load((GRAFANA / "datasource.yml").read_text())["datasources"][0]
    panels = [p for p in board["panels"] if p["type"] != "row"]
    assert len(panels) >= 20
    for p in panels:
        assert p["datasource"] == {"type": "prometheus", "uid": source["uid"]}, p["title"]
        grid = p["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0, p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert p["targets"] and len(refs) == len(set(refs)), p["title"]
    titles = " ".join(p["title"] for p in panels)
    for topic in ("Price", "volume", "depth", "Risk state", "Trades per second", "Equity", "PnL",
                  "Positions", "latency", "stream state",
                  "breaker", "Recorder messages", "Validation", "Training", "Promotion"):
        assert topic in titles, topic


@pytest.fixture
def fed_prometheus(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """A real Prometheus scraping a trader's and a recorder's endpoints and a Pushgateway
    holding a batch of every flow; yields its URL and a function that moves the counters."""
    need("prometheus")
    trader, recorder = TraderMetrics("meanrev"), RecorderMetrics("binance")
    services, gateway = pushgateway(tmp_path)
    try:
        tport, rport = trader.serve(free_port()), recorder.serve(free_port())
        settings = load_profile(env={"TRADEFLOW_TRADER__METRICS_PORT": str(tport),
                                     "TRADEFLOW_RECORDER__METRICS_PORT": str(rport),
                                     "TRADEFLOW_MONITORING__SCRAPE_INTERVAL_S": "1",
                                     "TRADEFLOW_MONITORING__PUSHGATEWAY_URL": gateway})
        s = "meanrev"
        for sym, price in (("BTC/USDT", 42000.0), ("ETH/USDT", 2500.0)):
            trader.price.labels(s, sym).set(price)
            trader.position.labels(s, sym).set(0.1)
            trader.set_stream(sym, "connected", 0.4)
            trader.volume.labels(s, sym).set(3.5)
            trader.set_order_flow(sym, {"last_price": price, "price_age_s": 0.2,
                                        "depth": {"bids": [1.0, 2.5], "asks": [0.5, 2.0]}})
        trader.set_risk("active")
        trader.equity.labels(s).set(10_050.0)
        trader.pnl.labels(s).set(50.0)
        trader.drawdown.labels(s).set(0.01)
        trader.model_version.labels(s).set(3)
        trader.set_breaker("binance", "closed", 0)
        recorder.rate.labels("binance", "BTC/USDT", "trades").set(12.5)
        recorder.resyncs.labels("binance", "BTC/USDT", "book").set(0)
        recorder.reconnects.labels("binance", "BTC/USDT", "trades").set(1)
        recorder.stored.labels("binance", "trades").set(1000)
        recorder.messages.labels("binance", "BTC/USDT", "trades").inc(10)
        recorder.refetched.labels("binance").set(0)
        recorder.age.labels("binance", "BTC/USDT", "trades").set(0.3)
        key = SimpleNamespace(symbol="BTC/USDT", timeframe="1m")
        with flow_metrics(settings, "backfill") as m:
            record_backfill(m, [SimpleNamespace(key=key, stored=1440, missing=0, unfillable=5,
                                                pages=2, status="ok")])
        with flow_metrics(settings, "validate") as m:
            record_validation(m, {"candles": 1440, "quarantine_candles": 1,
                                  "quarantine_share": 1 / 1440, "max_hard_failure_share": 0.01,
                                  "rules": [{"rule": "extreme_return", "policy": "warn",
                                             "failed": 2}]})
        with flow_metrics(settings, "train") as m:
            record_training(m, {"model": "meanrev", "auc": 0.58, "sharpe": 1.2, "trades": 40,
                                "version": "3"})
        with flow_metrics(settings, "promote") as m:
            record_promotion(m, {"model": "meanrev", "decision": "promoted", "challenger": "3"})

        def tick() -> None:
            trader.decisions.labels(s, "BTC/USDT", "hold").inc()
            trader.orders.labels(s, "buy").inc()
            trader.fills.labels(s).inc()
            trader.latency.labels(s).observe(0.003)
            recorder.messages.labels("binance", "BTC/USDT", "trades").inc(5)

        tick()
        config = prometheus_config(settings, gateway.removeprefix("http://"))
        url = start_prometheus(services, tmp_path / "prometheus", config, free_port())
        wait_for(lambda: set(targets_up(url).values()) == {"up"} and len(targets_up(url)) == 3,
                 what="trader, recorder and pushgateway targets up")
        yield url, tick
    finally:
        services.stop_all()
        trader.close()
        recorder.close()


def test_every_panel_query_returns_series_from_a_real_prometheus(
        fed_prometheus: tuple[str, Any]) -> None:
    url, tick = fed_prometheus
    # Counters must move between scrapes for rate() and histogram_quantile() to have series.
    for _ in range(8):
        tick()
        time.sleep(0.5)
    empty = []
    for title, expr in queries():
        query = promql(expr)
        assert "$" not in query, f"{title}: unresolved Grafana variable in {expr}"
        api(url, "query", query=query)  # parses (an API error fails here, naming the query)
        deadline = time.monotonic() + 15
        while not api(url, "query", query=query)["result"]:
            if time.monotonic() > deadline:
                empty.append(f"{title}: {expr}")
                break
            tick()
            time.sleep(0.5)
    assert not empty, "queries without series:\n" + "\n".join(empty)
