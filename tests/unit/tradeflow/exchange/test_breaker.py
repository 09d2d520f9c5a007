"""The circuit breaker's closed -> open -> half-open -> closed cycle on a hand-driven clock."""

from __future__ import annotations

import asyncio

import pytest

from tradeflow.exchange.breaker import BreakerState, CircuitBreaker, CircuitOpen
from tradeflow.exchange.types import BadSymbol, ExchangeUnavailable, RateLimited, RequestTimedOut


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_open_after_n_failures_in_a_row_then_one_probe_then_closed() -> None:
    clock = Clock()
    breaker = CircuitBreaker("binance", failures=3, cooldown_s=10.0, clock=clock)
    for _ in range(2):
        breaker.before()
        breaker.failed(ExchangeUnavailable("503"))
    breaker.succeeded()  # a success in between resets the count
    for _ in range(2):
        breaker.failed(RequestTimedOut("slow"))
    assert breaker.state == BreakerState.CLOSED and breaker.failures == 2
    breaker.failed(ExchangeUnavailable("503"))
    assert breaker.state == BreakerState.OPEN and breaker.opened == 1
    with pytest.raises(CircuitOpen, match="open after 3 failures in a row; not calling for 10.0s"):
        breaker.before()
    clock.now += 4.0
    assert breaker.snapshot().retry_in_s == 6.0
    clock.now += 6.0
    assert breaker.state == BreakerState.HALF_OPEN
    breaker.before()  # the probe goes through ...
    with pytest.raises(CircuitOpen, match="half-open"):
        breaker.before()  # ... alone
    breaker.failed(ExchangeUnavailable("still 503"))  # a failed probe: open again
    assert breaker.state == BreakerState.OPEN and breaker.opened == 2
    clock.now += 10.0
    breaker.before()
    breaker.succeeded()
    assert breaker.snapshot() == breaker.snapshot().__class__("binance", "closed", 0, 2, None)
    breaker.before()


def test_the_callers_errors_and_rate_limits_do_not_count() -> None:
    breaker = CircuitBreaker("binance", failures=1, cooldown_s=5.0, clock=Clock())
    breaker.failed(BadSymbol("no such market"))
    breaker.failed(RateLimited("429", retry_after=1.0))
    assert breaker.state == BreakerState.CLOSED and breaker.failures == 0


def test_a_probe_that_never_reports_frees_the_slot_after_a_cool_down() -> None:
    clock = Clock()
    breaker = CircuitBreaker("binance", failures=1, cooldown_s=5.0, clock=clock)
    breaker.failed(ExchangeUnavailable("503"))
    clock.now += 5.0
    breaker.before()  # this probe is cancelled and never reports
    with pytest.raises(CircuitOpen):
        breaker.before()
    clock.now += 5.0
    breaker.before()


def test_guard_types_raw_errors_and_fails_fast_without_calling() -> None:
    breaker = CircuitBreaker("binance", failures=2, cooldown_s=60.0, clock=Clock())
    calls: list[int] = []

    async def fetch(n: int) -> int:
        calls.append(n)
        if n < 0:
            raise ConnectionError("refused")
        return n

    guarded = breaker.guard(fetch, lambda exc: ExchangeUnavailable(str(exc)))

    async def body() -> None:
        assert await guarded(1) == 1
        for _ in range(2):
            with pytest.raises(ConnectionError):
                await guarded(-1)
        with pytest.raises(CircuitOpen):
            await guarded(2)

    asyncio.run(body())
    assert calls == [1, -1, -1]  # the last call never reached the exchange
    with pytest.raises(ValueError, match="failures >= 1"):
        CircuitBreaker("x", failures=0)
