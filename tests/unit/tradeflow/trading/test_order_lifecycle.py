"""The order state machine: every legal transition, every illegal one, fills and endings."""

from __future__ import annotations

import itertools

import pytest

from tradeflow.trading.order_lifecycle import (
    IllegalTransition,
    OrderLifecycle,
    OrderState,
    advance,
    can_advance,
    from_exchange,
)

S = OrderState
LEGAL = {
    (S.NEW, S.ACKED), (S.NEW, S.PARTIALLY_FILLED), (S.NEW, S.FILLED), (S.NEW, S.CANCELED),
    (S.NEW, S.REJECTED), (S.NEW, S.EXPIRED),
    (S.ACKED, S.PARTIALLY_FILLED), (S.ACKED, S.FILLED), (S.ACKED, S.CANCELED),
    (S.ACKED, S.EXPIRED),
    (S.PARTIALLY_FILLED, S.PARTIALLY_FILLED), (S.PARTIALLY_FILLED, S.FILLED),
    (S.PARTIALLY_FILLED, S.CANCELED), (S.PARTIALLY_FILLED, S.EXPIRED),
}


@pytest.mark.parametrize(("a", "b"), list(itertools.product(S, S)))
def test_exactly_the_listed_transitions_are_legal(a: OrderState, b: OrderState) -> None:
    assert can_advance(a, b) == ((a, b) in LEGAL)
    if (a, b) in LEGAL:
        assert advance(a, b) is b
    else:
        with pytest.raises(IllegalTransition, match=f"{a.value} cannot become {b.value}"):
            advance(a, b)


def test_terminal_states_go_nowhere() -> None:
    for state in (S.FILLED, S.CANCELED, S.REJECTED, S.EXPIRED):
        assert state.terminal and not state.open
        assert not any(can_advance(state, b) for b in S)


def test_partial_fills_accumulate_with_a_weighted_average() -> None:
    o = OrderLifecycle(amount=1.0).ack()
    assert o.state is S.ACKED and o.ack() == o  # a repeated ack is a no-op
    o = o.fill(0.25, 100.0)
    assert (o.state, o.filled, o.average) == (S.PARTIALLY_FILLED, 0.25, 100.0)
    o = o.fill(0.25, 104.0)
    assert (o.state, o.filled, o.average) == (S.PARTIALLY_FILLED, 0.5, 102.0)
    o = o.fill(0.5, 101.0)
    assert (o.state, o.filled) == (S.FILLED, 1.0)
    assert o.average == pytest.approx(101.5)
    with pytest.raises(IllegalTransition):
        o.fill(0.1, 100.0)  # nothing fills a filled order
    with pytest.raises(IllegalTransition):
        o.end(S.CANCELED)


def test_overfill_and_bad_fills_are_refused() -> None:
    o = OrderLifecycle(amount=1.0).fill(0.6, 10.0)
    with pytest.raises(IllegalTransition, match="overfills"):
        o.fill(0.5, 10.0)
    assert o.fill(0.4 + 1e-13, 10.0).state is S.FILLED  # float noise is not an overfill
    with pytest.raises(ValueError, match="positive"):
        o.fill(0.0, 10.0)
    with pytest.raises(ValueError, match="positive"):
        OrderLifecycle(amount=0.0)


def test_endings() -> None:
    partly = OrderLifecycle(amount=2.0).ack().fill(1.0, 5.0)
    assert partly.end(S.CANCELED).state is S.CANCELED
    assert partly.end(S.EXPIRED).filled == 1.0  # an IOC remainder keeps its fills
    with pytest.raises(IllegalTransition, match="rejected"):
        partly.end(S.REJECTED)
    assert OrderLifecycle(amount=1.0).end(S.REJECTED).state is S.REJECTED
    with pytest.raises(IllegalTransition):
        OrderLifecycle(amount=1.0).ack().end(S.REJECTED)  # accepted orders are not rejected
    with pytest.raises(ValueError, match="not an ending"):
        OrderLifecycle(amount=1.0).end(S.FILLED)
    canceled = OrderLifecycle(amount=1.0).end(S.CANCELED)
    with pytest.raises(IllegalTransition):
        canceled.ack()


@pytest.mark.parametrize(("status", "filled", "state"), [
    ("open", 0.0, S.ACKED), ("open", 0.3, S.PARTIALLY_FILLED), ("closed", 1.0, S.FILLED),
    ("canceled", 0.3, S.CANCELED), ("expired", 0.0, S.EXPIRED), ("rejected", 0.0, S.REJECTED),
])
def test_exchange_statuses_map_to_states(status: str, filled: float, state: OrderState) -> None:
    assert from_exchange(status, filled, 1.0) is state


def test_an_unknown_exchange_status_is_named() -> None:
    with pytest.raises(ValueError, match="'weird'.*open, closed"):
        from_exchange("weird", 0.0, 1.0)
