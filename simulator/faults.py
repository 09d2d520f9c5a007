"""Deterministic fault injection for REST requests and websocket connections.

REST faults count every ``/api`` request in one counter ``n`` (1, 2, ...); a fault configured
"every N" fires when ``n % N == 0``, checked in this order: IP ban (418) and rate limit (429),
5xx, stall (timeout), then added latency, and finally truncation of the body. Rate limiting
follows Binance: a 429 carries ``Retry-After``; every request sent before that time is a
violation, and ``ban_after_violations`` violations turn into a 418 ban that lasts
``retry_after_s``. Websocket faults count the data messages of each connection separately.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any, Literal

from simulator.settings import FaultSettings

Verdict = Literal["ok", "rate_limited", "banned", "server_error"]


@dataclass(frozen=True, slots=True)
class RestPlan:
    """What the fault layer does to one REST request."""

    verdict: Verdict = "ok"
    status: int = 200
    retry_after_s: float = 0.0
    stall_s: float = 0.0
    latency_s: float = 0.0
    truncate: bool = False
    used_weight: int = 0
    banned_until_ms: int = 0


class FaultState:
    """Current fault settings plus the counters that make faults fire deterministically."""

    def __init__(self, configured: FaultSettings):
        self.configured = configured
        self._settings = configured
        self._lock = threading.Lock()
        self.reset()

    @property
    def settings(self) -> FaultSettings:
        return self._settings

    def reset(self) -> None:
        """Zero the request counter, weights, rate-limit and ban state."""
        with self._lock:
            self.requests = 0
            self._minute = -1
            self.used_weight = 0
            self._limited_until = 0
            self._banned_until = 0
            self._violations = 0

    def update(self, **fields: Any) -> FaultSettings:
        """Replace some fields (validated like the config file); return the new settings."""
        merged = {**self._settings.model_dump(), **fields}
        self._settings = FaultSettings.model_validate(merged)
        return self._settings

    def restore(self) -> FaultSettings:
        """Go back to the faults configured at start-up and reset the counters."""
        self._settings = self.configured
        self.reset()
        return self._settings

    def add_outage(self, start_ms: int, end_ms: int) -> FaultSettings:
        """Add a window in which no candles exist."""
        return self.update(outages=(*self._settings.outages, (start_ms, end_ms)))

    def plan_rest(self, weight: int, wall_ms: int) -> RestPlan:
        """Count one REST request of ``weight`` at wall time ``wall_ms`` and decide its fate."""
        s = self._settings
        retry_ms = int(s.retry_after_s * 1000)
        with self._lock:
            self.requests += 1
            n = self.requests
            minute = wall_ms // 60_000
            if minute != self._minute:
                self._minute, self.used_weight = minute, 0
            self.used_weight += weight
            used = self.used_weight
            if wall_ms < self._banned_until:
                return self._ban(wall_ms, used)
            if wall_ms < self._limited_until:
                self._violations += 1
                if s.ban_after_violations and self._violations >= s.ban_after_violations:
                    self._banned_until = wall_ms + retry_ms
                    return self._ban(wall_ms, used)
                return RestPlan(
                    "rate_limited", 429, (self._limited_until - wall_ms) / 1000, used_weight=used
                )
            if s.rate_limit_every and n % s.rate_limit_every == 0:
                self._limited_until, self._violations = wall_ms + retry_ms, 0
                return RestPlan("rate_limited", 429, s.retry_after_s, used_weight=used)
            if s.weight_limit_1m and used > s.weight_limit_1m:
                # Binance's weight window resets with the minute: wait for the next one
                self._limited_until, self._violations = (minute + 1) * 60_000, 0
                return RestPlan(
                    "rate_limited", 429, (self._limited_until - wall_ms) / 1000, used_weight=used
                )
        if s.error_5xx_every and n % s.error_5xx_every == 0:
            status = 502 if (n // s.error_5xx_every) % 2 else 503
            return RestPlan("server_error", status, used_weight=used)
        stall = s.timeout_s if s.timeout_every and n % s.timeout_every == 0 else 0.0
        return RestPlan(
            stall_s=stall,
            latency_s=s.latency_ms / 1000,
            truncate=bool(s.truncate_every and n % s.truncate_every == 0),
            used_weight=used,
        )

    def _ban(self, wall_ms: int, used: int) -> RestPlan:
        wait = (self._banned_until - wall_ms) / 1000
        return RestPlan("banned", 418, wait, used_weight=used, banned_until_ms=self._banned_until)


def retry_after_header(seconds: float) -> str:
    """Binance sends whole seconds; round up so a client that obeys is never early."""
    return str(max(1, math.ceil(seconds)))


class WsFaults:
    """Per-connection websocket faults: depth gap, duplicate, reorder, then drop."""

    def __init__(self, state: FaultState):
        self._state = state
        self.count = 0
        self.depth_count = 0
        self._held: list[str] = []

    def process(self, message: str, depth: bool = False) -> tuple[list[str], bool]:
        """Frames to send now for ``message``, and whether to close the socket after them.

        ``depth`` marks a diff-depth event: ``ws_depth_gap_every`` drops every Nth of them,
        which leaves a hole in the update ids that a client must notice and resync over.
        """
        s = self._state.settings
        if depth:
            self.depth_count += 1
            if s.ws_depth_gap_every and self.depth_count % s.ws_depth_gap_every == 0:
                return [], False
        self.count += 1
        n = self.count
        out = [message]
        if s.ws_duplicate_every and n % s.ws_duplicate_every == 0:
            out.append(message)
        if s.ws_reorder_every and n % s.ws_reorder_every == 0 and not self._held:
            # held back and sent right after the next message
            self._held, out = out, []
        elif self._held:
            out, self._held = out + self._held, []
        close = bool(s.ws_drop_every and n % s.ws_drop_every == 0)
        return out, close
