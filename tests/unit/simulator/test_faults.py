"""Fault plans: which REST request and which websocket message each fault hits."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from simulator.faults import FaultState, WsFaults, retry_after_header
from simulator.settings import FaultSettings


def verdicts(state: FaultState, walls: list[int]) -> list[str]:
    return [state.plan_rest(1, wall).verdict for wall in walls]


def test_every_nth_request_is_rate_limited_and_retry_after_is_honoured() -> None:
    state = FaultState(FaultSettings(rate_limit_every=3, retry_after_s=2.0))
    # requests 1-2 pass, 3 is limited; 4 at +1s ignores Retry-After; 5 after it passes
    got = verdicts(state, [0, 100, 200, 1_200, 2_300, 2_400])
    assert got == ["ok", "ok", "rate_limited", "rate_limited", "ok", "rate_limited"]
    assert retry_after_header(2.0) == "2" and retry_after_header(0.2) == "1"


def test_ignoring_retry_after_gets_the_ip_banned_with_418() -> None:
    state = FaultState(FaultSettings(rate_limit_every=2, ban_after_violations=2, retry_after_s=1))
    plans = [state.plan_rest(1, wall) for wall in (0, 10, 20, 30, 40, 2_000, 2_100)]
    # 2 is limited; 3 and 4 ignore Retry-After, so 4 starts a ban that 5 runs into;
    # after the ban, violations count afresh: 6 is limited and 7 is only a first violation
    assert [p.status for p in plans] == [200, 429, 429, 418, 418, 429, 429]
    assert plans[3].banned_until_ms == 1_030 and plans[4].retry_after_s == pytest.approx(0.99)


def test_weight_limit_blocks_until_the_next_minute() -> None:
    state = FaultState(FaultSettings(weight_limit_1m=10))
    plans = [state.plan_rest(5, wall) for wall in (0, 1_000, 2_000, 59_000, 60_000)]
    assert [p.verdict for p in plans] == ["ok", "ok", "rate_limited", "rate_limited", "ok"]
    assert [p.used_weight for p in plans] == [5, 10, 15, 20, 5]
    assert plans[2].retry_after_s == pytest.approx(58.0)


def test_server_errors_stalls_latency_and_truncation_hit_their_requests() -> None:
    state = FaultState(FaultSettings(error_5xx_every=2, timeout_every=3, truncate_every=5))
    plans = [state.plan_rest(1, 0) for _ in range(10)]
    assert [p.status for p in plans] == [200, 502, 200, 503, 200, 502, 200, 503, 200, 502]
    assert [i + 1 for i, p in enumerate(plans) if p.stall_s] == [3, 9]
    assert [i + 1 for i, p in enumerate(plans) if p.truncate] == [5]
    state.update(error_5xx_every=0, timeout_every=0, truncate_every=0, latency_ms=250)
    assert state.plan_rest(1, 0).latency_s == 0.25


def test_reset_restore_update_and_outages() -> None:
    configured = FaultSettings(rate_limit_every=2)
    state = FaultState(configured)
    state.plan_rest(1, 0)
    state.update(rate_limit_every=0, error_5xx_every=7)
    assert state.settings.error_5xx_every == 7 and state.requests == 1
    assert state.restore() is configured and state.requests == 0
    state.add_outage(1_000, 2_000)
    assert state.settings.outages == ((1_000, 2_000),)
    with pytest.raises(ValidationError):
        state.update(no_such_fault=1)
    with pytest.raises(ValidationError):
        state.add_outage(5, 5)


def run_ws(settings: FaultSettings, count: int) -> tuple[list[str], int | None]:
    faults = WsFaults(FaultState(settings))
    sent: list[str] = []
    for i in range(1, count + 1):
        frames, close = faults.process(str(i))
        sent += frames
        if close:
            return sent, i
    return sent, None


def test_websocket_duplicates_reorders_and_drops() -> None:
    sent, _ = run_ws(FaultSettings(ws_duplicate_every=3), 7)
    assert sent == ["1", "2", "3", "3", "4", "5", "6", "6", "7"]
    sent, _ = run_ws(FaultSettings(ws_reorder_every=3), 7)
    assert sent == ["1", "2", "4", "3", "5", "7", "6"]
    sent, closed_after = run_ws(FaultSettings(ws_drop_every=4), 10)
    assert sent == ["1", "2", "3", "4"] and closed_after == 4
