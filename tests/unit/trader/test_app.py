"""The trader's start-up checks: live confirmation, metrics port, the book's ledger."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from tradeflow.config import load_settings
from tradeflow.errors import UsageError, UserError
from trader.app import check_live, check_metrics_port, ledger_for

KEYS = {"api_key": SecretStr("k"), "api_secret": SecretStr("s")}


def test_live_confirmation_is_yes_in_any_case() -> None:
    settings = load_settings(env={})
    settings = settings.model_copy(update={"exchange": settings.exchange.model_copy(update=KEYS)})
    for value in ("yes", "YES", " Yes "):
        check_live("live", settings, env={"TRADEFLOW_LIVE_CONFIRM": value})
    with pytest.raises(UserError, match=r"LIVE_CONFIRM=yes in the environment \(it is 'y'\)"):
        check_live("live", settings, env={"TRADEFLOW_LIVE_CONFIRM": "y"})
    check_live("paper", settings, env={})


@pytest.mark.parametrize("port", [-1, 65536, 70000])
def test_a_metrics_port_outside_tcp_is_a_usage_error(port: int) -> None:
    with pytest.raises(UsageError, match=f"--metrics-port {port}: must be 0"):
        check_metrics_port(port)
    for fine in (None, 0, 9108, 65535):
        check_metrics_port(fine)


def test_each_book_has_its_ledger_and_reading_creates_none(tmp_path: Path) -> None:
    settings = load_settings(env={}, overrides={"data_dir": str(tmp_path / "data")})
    assert ledger_for(settings, "live", create=False) is None
    assert not (tmp_path / "data").exists()
    paper = ledger_for(settings, "paper")
    paper.init_strategy("s", 1_000.0)
    paper.close()
    assert sorted(p.name for p in (tmp_path / "data").glob("*.db")) == ["ledger.db"]
    live = ledger_for(settings, "live")
    assert live.strategies() == []  # the live book never sees the paper one
    live.close()
