"""Risk limits: exposure caps, order rate, daily loss, and every kill-switch transition."""

from __future__ import annotations

import json

import pytest

from tradeflow.strategy import RiskSettings
from tradeflow.trading.risk import (
    OrderIntent,
    PortfolioSnapshot,
    RiskManager,
    RiskMode,
    RiskState,
    Verdict,
    cap_target,
)

DAY = 86_400_000
T0 = 20_000 * DAY  # a UTC midnight
SETTINGS = RiskSettings(max_position_fraction=0.5, max_total_exposure=0.8,
                        max_orders_per_minute=2, daily_loss_limit_pct=5,
                        reduce_drawdown_pct=10, max_drawdown_pct=20)


def snap(equity: float = 1_000.0, **positions: float) -> PortfolioSnapshot:
    return PortfolioSnapshot(equity=equity, positions=positions)


def test_cap_target_per_symbol_total_and_never_forcing_a_reduction() -> None:
    assert cap_target(0.9, 0.0, 0.0, 0.5, 0.8) == 0.5
    assert cap_target(-0.9, 0.0, 0.0, 0.5, 0.8) == -0.5
    assert cap_target(0.5, 0.0, 0.6, 0.5, 0.8) == pytest.approx(0.2)
    assert cap_target(0.5, 0.3, 0.7, 0.5, 0.8) == 0.3  # no room: keep, don't cut
    assert cap_target(0.1, 0.3, 0.7, 0.5, 0.8) == 0.1  # reductions always pass
    assert cap_target(-0.5, 0.3, 0.7, 0.5, 0.8) == pytest.approx(-0.1)  # a flip is all new
    assert cap_target(0.4, 0.0, 0.9, 0.5, 0.8) == 0.0


def test_caps_resize_an_intent() -> None:
    rm = RiskManager(SETTINGS)
    d = rm.check(OrderIntent("BTC/USDT", 0.7), snap(ETH_USDT=500.0), T0)
    assert d.verdict is Verdict.RESIZED
    assert d.target == pytest.approx(0.3)
    assert d.allowed and "exposure caps" in d.reasons[0]


def test_rate_limit_blocks_increases_for_a_minute_but_never_reductions() -> None:
    rm = RiskManager(SETTINGS)
    for i in range(2):
        assert rm.check(OrderIntent(f"S{i}/USDT", 0.1), snap(), T0 + i).verdict is Verdict.APPROVED
    d = rm.check(OrderIntent("S9/USDT", 0.1), snap(), T0 + 1_000)
    assert d.verdict is Verdict.REJECTED and "rate limit" in d.reasons[0]
    held = snap(**{"S0/USDT": 100.0})
    assert rm.check(OrderIntent("S0/USDT", 0.0), held, T0 + 2_000).verdict is Verdict.APPROVED
    assert rm.check(OrderIntent("S9/USDT", 0.1), snap(), T0 + 61_000).allowed


def test_daily_loss_limit_blocks_entries_until_the_next_utc_day() -> None:
    rm = RiskManager(SETTINGS)
    rm.observe(1_000.0, T0 + 1)
    assert rm.check(OrderIntent("A/USDT", 0.2), snap(960.0), T0 + 10).verdict is Verdict.APPROVED
    d = rm.check(OrderIntent("B/USDT", 0.2), snap(949.0), T0 + 20)
    assert d.verdict is Verdict.REJECTED and "daily loss" in d.reasons[0]
    # Recovering the same day does not lift it; reductions still pass.
    assert not rm.check(OrderIntent("B/USDT", 0.2), snap(990.0), T0 + 30).allowed
    held = snap(990.0, **{"A/USDT": 190.0})
    assert rm.check(OrderIntent("A/USDT", 0.1), held, T0 + 40).verdict is Verdict.APPROVED
    assert rm.check(OrderIntent("B/USDT", 0.2), snap(990.0), T0 + DAY).allowed


def test_kill_switch_active_reducing_active_halted_resume() -> None:
    rm = RiskManager(SETTINGS)
    assert rm.observe(1_000.0, T0) is RiskMode.ACTIVE
    # 15% drawdown: halfway between 10% and 20% -> targets scaled by 0.5 and reduce-only.
    held = snap(850.0, **{"A/USDT": 340.0})  # 40% of equity
    d = rm.check(OrderIntent("A/USDT", 0.6), held, T0 + DAY)
    assert rm.mode is RiskMode.REDUCING
    assert d.verdict is Verdict.RESIZED and d.target == pytest.approx(0.3)
    assert not rm.check(OrderIntent("B/USDT", 0.1), snap(850.0), T0 + DAY + 1).allowed
    assert rm.observe(950.0, T0 + DAY + 2) is RiskMode.ACTIVE
    assert rm.observe(790.0, T0 + DAY + 3) is RiskMode.HALTED
    assert rm.observe(1_000.0, T0 + DAY + 4) is RiskMode.HALTED  # sticky
    book = snap(1_000.0, **{"A/USDT": 300.0, "B/USDT": 0.0, "C/USDT": -50.0})
    assert [i.symbol for i in rm.flatten_intents(book)] == ["A/USDT", "C/USDT"]
    d = rm.check(OrderIntent("A/USDT", 0.3), book, T0 + DAY + 5)
    assert (d.verdict, d.target) == (Verdict.RESIZED, 0.0)
    assert not rm.check(OrderIntent("B/USDT", 0.1), book, T0 + DAY + 6).allowed
    rm.resume(1_000.0)
    assert rm.observe(1_000.0, T0 + DAY + 7) is RiskMode.ACTIVE
    assert rm.flatten_intents(book) == []


def test_state_survives_a_json_round_trip() -> None:
    rm = RiskManager(SETTINGS)
    rm.check(OrderIntent("A/USDT", 0.2), snap(), T0)
    rm.observe(780.0, T0 + 5)
    restored = RiskState.from_dict(json.loads(json.dumps(rm.state.to_dict())))
    assert restored == rm.state
    assert RiskManager(SETTINGS, restored).mode is RiskMode.HALTED
