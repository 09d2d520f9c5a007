"""Status files told truthfully: is the process that wrote one still running?

The trader and the recorder replace a JSON status file while they run (``pid``,
``updated_at``, stream states and message ages as of that moment). Read later, a file of a
process that has stopped would still say "connected, last message 0.013s ago". :func:`settle`
looks at the file as of ``now``: the writer is running when its pid is alive and it did not
mark itself stopped (the trader writes ``stopped_at``; the recorder marks its streams
``stopped``); otherwise its streams are DISCONNECTED (a failed one stays failed), message ages
count on from when the file was written, and a line says when it stopped, or that its pid is
gone (a crash or SIGKILL: the last status time is the last sign of life).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any


def pid_alive(pid: Any) -> bool:
    """True when a process with this pid exists (ours or another user's)."""
    try:
        pid = int(pid)
    except (TypeError, ValueError):
        return False
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    except OSError:
        return False
    return True


def _utc(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def settle(data: Mapping[str, Any], now: float, *,
           alive: Any = pid_alive) -> dict[str, Any]:
    """A copy of a status file's content as of ``now``, with ``running`` (bool) and
    ``liveness`` (one line) added and stopped streams shown as DISCONNECTED."""
    out = dict(data)
    updated = float(data.get("updated_at") or 0.0)
    pid = data.get("pid")
    streams = [dict(s) for s in data.get("streams") or []]
    stopped_at = data.get("stopped_at")
    if stopped_at is None and streams and all(s.get("state") in ("stopped", "failed")
                                              for s in streams):
        stopped_at = updated  # the recorder marks its streams "stopped" as it exits
    if stopped_at is not None:
        out["running"] = False
        out["liveness"] = f"stopped at {_utc(float(stopped_at))}"
    elif not alive(pid):
        out["running"] = False
        out["liveness"] = f"stopped: pid {pid} is gone (last status at {_utc(updated)})"
    else:
        out["running"] = True
        out["liveness"] = f"running, pid {pid}"
        return out
    later = max(0.0, now - updated)
    for s in streams:
        if s.get("state") != "failed":
            s["state"] = "disconnected"
        if s.get("last_message_age_s") is not None:
            s["last_message_age_s"] = round(float(s["last_message_age_s"]) + later, 1)
    out["streams"] = streams
    return out


def breaker_lines(breakers: list[Mapping[str, Any]] | None) -> list[str]:
    """One line per exchange circuit breaker that is not plainly closed."""
    lines = []
    for b in breakers or []:
        if b.get("state") == "closed" and not b.get("opened"):
            continue
        retry = f", probe in {b['retry_in_s']}s" if b.get("retry_in_s") is not None else ""
        lines.append(f"  breaker {b.get('name')} {b.get('state')}{retry} "
                     f"(opened {b.get('opened', 0)}x, {b.get('failures', 0)} failures in a row)")
    return lines
