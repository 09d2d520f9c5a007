"""A flow run's metrics batch: its figures, success or failure, and a dead gateway tolerated."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tradeflow.config import load_settings
from tradeflow.monitoring.push import (
    flow_metrics,
    job_name,
    record_backfill,
    record_promotion,
    record_training,
    record_validation,
)


def test_a_failed_run_still_records_success_zero_and_a_dead_gateway_only_warns(
        caplog: pytest.LogCaptureFixture) -> None:
    # Port 9 (discard) on loopback: nothing listens; the push fails fast.
    settings = load_settings(env={"TRADEFLOW_MONITORING__PUSHGATEWAY_URL": "http://127.0.0.1:9"})
    with pytest.raises(RuntimeError, match="boom"), flow_metrics(settings, "train") as m:
        raise RuntimeError("boom")
    assert m.samples()[("tradeflow_flow_success", (("flow", "train"),))] == 0.0
    assert m.samples()[("tradeflow_flow_duration_seconds", (("flow", "train"),))] >= 0.0
    assert "metrics of train not pushed to http://127.0.0.1:9" in caplog.text
    with flow_metrics(load_settings(env={}), "train") as ok:
        pass
    assert ok.samples()[("tradeflow_flow_success", (("flow", "train"),))] == 1.0
    assert job_name("daily-retrain") == "tradeflow_daily_retrain"


def test_each_flows_figures_become_gauges() -> None:
    with flow_metrics(load_settings(env={}), "x") as m:
        key = SimpleNamespace(symbol="BTC/USDT", timeframe="1m")
        record_backfill(m, [SimpleNamespace(key=key, stored=10, missing=2, unfillable=3,
                                            pages=4, status="failed")])
        record_validation(m, {"candles": 100, "quarantine_candles": 3, "quarantine_share": 0.03,
                              "max_hard_failure_share": 0.01,
                              "rules": [{"rule": "gap", "policy": "warn", "failed": 2},
                                        {"rule": "gap", "policy": "warn", "failed": 5}]})
        record_training(m, {"model": "m", "auc": 0.61, "sharpe": 1.5, "trades": 12,
                            "version": "7"})
        record_promotion(m, {"model": "m", "decision": "kept_champion", "challenger": "7"})
        m.set("odd", "not a number", "n/a")  # logged and skipped, never raised
    s = m.samples()
    assert not any(name == "tradeflow_odd" for name, _ in s)
    assert s[("tradeflow_validation_candles_judged", (("flow", "x"),))] == 100
    series = (("flow", "x"), ("symbol", "BTC/USDT"), ("timeframe", "1m"))
    assert s[("tradeflow_backfill_candles_stored", series)] == 10
    assert s[("tradeflow_backfill_candles_unfillable", series)] == 3
    assert s[("tradeflow_backfill_series_failed", (("flow", "x"),))] == 1
    assert s[("tradeflow_validation_failures",
              (("flow", "x"), ("policy", "warn"), ("rule", "gap")))] == 7
    assert s[("tradeflow_validation_quarantine_share", (("flow", "x"),))] == 0.03
    assert s[("tradeflow_training_auc", (("flow", "x"), ("model", "m")))] == 0.61
    assert s[("tradeflow_training_model_version", (("flow", "x"), ("model", "m")))] == 7
    assert s[("tradeflow_promotion_promoted", (("flow", "x"), ("model", "m")))] == 0
