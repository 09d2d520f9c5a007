"""A real flow run pushes its batch to a real Pushgateway, whether it completes or fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.prefect import PrefectServer
from tests.fixtures.prometheus import gateway_samples, pushgateway
from tests.integration.flows.test_validate import NOW, candles
from tradeflow.market.store import MarketStore


@pytest.fixture(autouse=True)
def send_logs_while_the_server_is_up() -> Iterator[None]:
    yield
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[str]:
    services, url = pushgateway(tmp_path / "gateway")
    try:
        yield url
    finally:
        services.stop_all()


def test_validate_pushes_its_figures_pass_or_fail(prefect_server: PrefectServer,
                                                  tmp_path: Path, gateway: str) -> None:
    from flows.validate import validate

    data = tmp_path / "data"
    MarketStore(data / "market.duckdb").upsert(candles(bad=3), exchange="binance",
                                               symbol="BTC/USDT", timeframe="1m")
    profile = tmp_path / "profile.yaml"
    profile.write_text(f"data_dir: {data}\nstore: {{path: {data / 'market.duckdb'}}}\n"
                       "validation: {max_hard_failure_share: 0.002}\n"
                       f"monitoring: {{pushgateway_url: '{gateway}'}}\n")
    # 3 of 1440 quarantined = 0.21% > 0.2%: the run fails, and says so on the gateway.
    state = validate(symbols=["BTC/USDT"], timeframes=["1m"], config=str(profile),
                     now_ms=NOW, return_state=True)
    assert state.is_failed(), state
    pushed = gateway_samples(gateway)
    group = frozenset({("job", "tradeflow_validate"), ("instance", ""), ("flow", "validate")})
    assert pushed[("tradeflow_flow_success", group)] == 0.0
    assert pushed[("tradeflow_validation_candles_judged", group)] == 1440
    assert pushed[("tradeflow_validation_quarantine_share", group)] == pytest.approx(3 / 1440)
    assert pushed[("tradeflow_validation_failures",
                   group | {("rule", "high_ge_body"), ("policy", "quarantine")})] == 3
    assert pushed[("tradeflow_flow_duration_seconds", group)] > 0
    assert ("push_time_seconds", frozenset({("job", "tradeflow_validate"),
                                            ("instance", "")})) in pushed
