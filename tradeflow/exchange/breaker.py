"""A circuit breaker per exchange: stop calling a venue that keeps failing.

CLOSED: requests go through; each failure that says the venue is in trouble (unreachable,
5xx, timeouts, garbled bodies: the retryable errors other than rate limits, which the client
waits out) counts, a success resets the count. After ``failures`` in a row the breaker OPENs:
every request fails at once with :class:`CircuitOpen` (no request is sent) for ``cooldown_s``.
Then it is HALF_OPEN: one request goes through as a probe (the others still fail fast); its
success closes the breaker, its failure opens it for another cool-down.

The breaker sits on every HTTP request of a client's ccxt object (``build_exchange`` wraps its
``fetch``), so the client's retries see :class:`CircuitOpen` (not retryable) and stop. All
clients of one exchange (id, base URL, testnet) in a process share one breaker;
:func:`breaker_states` is what ``tradeflow status`` and the metrics show.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from tradeflow.config import ExchangeSettings
from tradeflow.exchange.types import ExchangeError, RateLimited

log = logging.getLogger(__name__)


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpen(ExchangeError):
    """The exchange failed too often in a row; no request is sent until the cool-down ends."""

    kind = "circuit open"


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    name: str
    state: str
    failures: int  # in a row
    opened: int  # times opened so far
    retry_in_s: float | None  # until the half-open probe, while open


class CircuitBreaker:
    """CLOSED -> OPEN after ``failures`` consecutive failures -> HALF_OPEN after
    ``cooldown_s`` -> CLOSED on a successful probe (OPEN again on a failed one)."""

    def __init__(self, name: str, *, failures: int = 5, cooldown_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if failures < 1 or cooldown_s <= 0:
            raise ValueError("a breaker needs failures >= 1 and cooldown_s > 0")
        self.name, self.threshold, self.cooldown_s, self.clock = name, failures, cooldown_s, clock
        self.failures = self.opened = 0
        self._opened_at: float | None = None
        self._probe_at: float | None = None  # when the half-open probe was let through
        self._lock = threading.Lock()  # clients in several threads (a Dask backfill) share it

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self.clock() - self._opened_at < self.cooldown_s:
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN

    def before(self) -> None:
        """Let a request through, or raise :class:`CircuitOpen`."""
        with self._lock:
            state, now = self.state, self.clock()
            if state == BreakerState.CLOSED:
                return
            if state == BreakerState.HALF_OPEN:
                # one probe at a time; a probe that never reported (cancelled) frees the slot
                # after a cool-down
                if self._probe_at is None or now - self._probe_at >= self.cooldown_s:
                    self._probe_at = now
                    log.info("%s: circuit half-open; probing", self.name)
                    return
                raise CircuitOpen(f"{self.name}: circuit half-open, a probe request is under "
                                  "way; not calling")
            assert self._opened_at is not None
            wait = self.cooldown_s - (now - self._opened_at)
            raise CircuitOpen(f"{self.name}: circuit open after {self.failures} failures in "
                              f"a row; not calling for {wait:.1f}s")

    def succeeded(self) -> None:
        with self._lock:
            if self._opened_at is not None:
                log.warning("%s: circuit closed; the exchange answers again", self.name)
            self.failures, self._opened_at, self._probe_at = 0, None, None

    def failed(self, error: ExchangeError) -> None:
        """Count a failure that says the venue is in trouble; others are the caller's."""
        if not error.retryable or isinstance(error, RateLimited | CircuitOpen):
            return
        with self._lock:
            self.failures += 1
            probing = self._opened_at is not None
            if probing or self.failures >= self.threshold:
                self._opened_at, self._probe_at = self.clock(), None
                self.opened += 1
                log.warning("%s: circuit open for %.1fs after %d failures in a row (%s)",
                            self.name, self.cooldown_s, self.failures, error.kind)

    def snapshot(self) -> BreakerSnapshot:
        state = self.state
        retry = None
        if state == BreakerState.OPEN and self._opened_at is not None:
            retry = round(self.cooldown_s - (self.clock() - self._opened_at), 1)
        return BreakerSnapshot(self.name, state.value, self.failures, self.opened, retry)

    def guard(self, fetch: Callable[..., Awaitable[Any]],
              classify: Callable[[Exception], ExchangeError]) -> Callable[..., Awaitable[Any]]:
        """``fetch`` (one HTTP request) behind this breaker; ``classify`` types its errors."""

        async def guarded(*args: Any, **kwargs: Any) -> Any:
            self.before()
            try:
                result = await fetch(*args, **kwargs)
            except Exception as exc:
                self.failed(exc if isinstance(exc, ExchangeError) else classify(exc))
                raise
            self.succeeded()
            return result

        return guarded


_BREAKERS: dict[tuple[str, str, bool], CircuitBreaker] = {}
_REGISTRY_LOCK = threading.Lock()


def breaker_for(settings: ExchangeSettings) -> CircuitBreaker | None:
    """The process's breaker of the exchange ``settings`` name (None when turned off)."""
    if not settings.breaker_failures:
        return None
    key = (settings.id, settings.base_url or "", settings.testnet)
    with _REGISTRY_LOCK:
        found = _BREAKERS.get(key)
        if found is None:
            found = _BREAKERS[key] = CircuitBreaker(
                settings.id, failures=settings.breaker_failures,
                cooldown_s=settings.breaker_cooldown_s)
        return found


def breaker_states() -> list[BreakerSnapshot]:
    """Every breaker of this process, for status files and metrics."""
    with _REGISTRY_LOCK:
        return [b.snapshot() for b in _BREAKERS.values()]
