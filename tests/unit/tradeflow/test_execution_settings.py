"""The strategy's execution section and the order requests it makes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradeflow.config_files import ConfigError
from tradeflow.exchange.order_rules import entry_request, stop_request
from tradeflow.execution_settings import ExecutionSettings
from tradeflow.strategy import load_strategy

STRATEGY = """\
symbols: [BTC/USDT]
features: [{name: returns}]
execution:
  order_type: limit
  time_in_force: IOC
  limit_offset_bps: 10
  exchange_stop: true
"""


def test_the_execution_section_loads_and_defaults_to_market_orders(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(STRATEGY)
    execution = load_strategy(path).execution
    assert (execution.order_type, execution.time_in_force, execution.limit_offset_bps,
            execution.exchange_stop, execution.stop_limit_offset_bps) == \
        ("limit", "IOC", 10.0, True, 20.0)
    assert load_strategy("config/strategies/meanrev_xgb.yaml").execution == ExecutionSettings()


@pytest.mark.parametrize(("line", "message"), [
    ("  order_type: stop\n", "execution.order_type"),
    ("  post_only: true\n", "post_only needs order_type limit with time_in_force GTC"),
    ("  limit_ofset_bps: 5\n", "execution.limit_ofset_bps"),
])
def test_bad_execution_settings_are_one_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("symbols: [BTC/USDT]\nfeatures: [{name: returns}]\nexecution:\n" + line)
    with pytest.raises(ConfigError, match=message) as info:
        load_strategy(path)
    assert "\n" not in str(info.value)


def test_entry_and_stop_requests() -> None:
    limit = ExecutionSettings(order_type="limit", limit_offset_bps=10, time_in_force="FOK")
    buy = entry_request(limit, "buy", 0.5, bid=100.0, ask=100.2)
    assert (buy.type, buy.price, buy.time_in_force) == ("limit", pytest.approx(99.9), "FOK")
    sell = entry_request(limit, "sell", 0.5, bid=100.0, ask=100.2)
    assert sell.price == pytest.approx(100.3002)
    assert entry_request(ExecutionSettings(), "buy", 0.5, 100.0, 100.2).type == "market"
    maker = ExecutionSettings(order_type="limit", post_only=True)
    assert entry_request(maker, "buy", 1.0, 100.0, 100.2).post_only
    long_stop = stop_request(ExecutionSettings(stop_limit_offset_bps=50), 0.5, 95.0)
    assert (long_stop.side, long_stop.amount, long_stop.stop_price) == ("sell", 0.5, 95.0)
    assert long_stop.price == pytest.approx(94.525)
    short_stop = stop_request(ExecutionSettings(), -2.0, 105.0)
    assert (short_stop.side, short_stop.amount) == ("buy", 2.0)
    assert short_stop.price == pytest.approx(105.21)
    with pytest.raises(ValueError, match="no position"):
        stop_request(ExecutionSettings(), 0.0, 95.0)
