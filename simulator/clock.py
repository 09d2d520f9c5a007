"""The simulated clock: ``now = start + (wall - wall_at_start) * speed + jumps``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

MINUTE_MS = 60_000


def wall_ms() -> int:
    """The real wall clock in epoch milliseconds."""
    return time.time_ns() // 1_000_000


class SimClock:
    """Simulated epoch-ms time running ``speed`` times faster than the wall clock.

    ``start_ms`` defaults to the wall clock floored to the minute. ``advance`` jumps forward
    (never back), and ``set_speed`` changes the rate without a discontinuity.
    """

    def __init__(
        self,
        start_ms: int | None = None,
        speed: float = 1.0,
        wall: Callable[[], int] = wall_ms,
    ):
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._wall = wall
        self._lock = threading.Lock()
        w = wall()
        self.start_ms = start_ms if start_ms is not None else w // MINUTE_MS * MINUTE_MS
        self._base_sim = float(self.start_ms)
        self._base_wall = w
        self._speed = float(speed)

    @property
    def speed(self) -> float:
        return self._speed

    def now_ms(self) -> int:
        """Current simulated time in epoch milliseconds."""
        with self._lock:
            return int(self._base_sim + (self._wall() - self._base_wall) * self._speed)

    def advance(self, ms: int) -> int:
        """Jump ``ms`` milliseconds forward; return the new simulated time."""
        if ms < 0:
            raise ValueError("the simulated clock only moves forward")
        with self._lock:
            self._base_sim += ms
        return self.now_ms()

    def set_speed(self, speed: float) -> None:
        """Change the rate from now on, keeping the current simulated time."""
        if speed <= 0:
            raise ValueError("speed must be positive")
        with self._lock:
            w = self._wall()
            self._base_sim += (w - self._base_wall) * self._speed
            self._base_wall = w
            self._speed = float(speed)
