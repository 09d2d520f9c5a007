"""What the recorder shows about each stream: state, messages/s, last id, resyncs.

The same numbers go to the status file (``<data_dir>/recorder/status.json``, read by
``tradeflow status``) and to Prometheus (``recorder.metrics_port``).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

if TYPE_CHECKING:
    from tradeflow.config import Settings

log = logging.getLogger(__name__)

STATES = ("connecting", "connected", "reconnecting", "failed", "stopped")
STREAMS = ("trades", "book", "ticker")


@dataclass
class StreamStatus:
    """One stream of one symbol (``trades``, ``book`` or ``ticker``)."""

    symbol: str
    stream: str
    state: str = "connecting"
    messages: int = 0
    rate: float = 0.0  # messages per second over the last status interval
    stored: int = 0
    last_id: int | None = None
    resyncs: int = 0
    reconnects: int = 0  # errors this stream saw and reconnected after
    last_message: float = 0.0  # wall time.time() of the last message
    _counted: int = field(default=0, repr=False)


def status_path(settings: Settings) -> Path:
    return settings.data_dir / "recorder" / "status.json"


def read_status(settings: Settings) -> dict[str, Any] | None:
    """The recorder's status file, with ``age_s`` since it was written; None when absent."""
    try:
        data = json.loads(status_path(settings).read_text())
    except (OSError, ValueError):
        return None
    data["age_s"] = round(time.time() - float(data.get("updated_at", 0)), 1)
    return data


def render(data: dict[str, Any]) -> list[str]:
    """The status as lines for a terminal, one per stream."""
    lines = [f"recorder {data.get('exchange', '?')}  pid {data.get('pid')}  "
             f"status written {data.get('age_s', '?')}s ago  connections reopened "
             f"{data.get('reconnects', 0)}  trades refetched {data.get('holes_filled', 0)}  "
             "stored: " + ", ".join(f"{k} {v}" for k, v in data.get("stored", {}).items())]
    for s in data.get("streams", []):
        last = "-" if s.get("last_id") is None else s["last_id"]
        lines.append(f"  {s['symbol']:<10} {s['stream']:<7} {s['state']:<12} "
                     f"{s.get('rate', 0):8.1f} msg/s  last id {last}  "
                     f"resyncs {s.get('resyncs', 0)}  reconnects {s.get('reconnects', 0)}")
    return lines


class RecorderStatus:
    """The streams' counters, written to the status file and exported as metrics."""

    def __init__(self, exchange: str, symbols: tuple[str, ...], path: Path | None,
                 streams: tuple[str, ...] = STREAMS) -> None:
        self.exchange = exchange
        self.path = path
        self.streams = {(s, k): StreamStatus(s, k) for s in symbols for k in streams}
        self.stored: dict[str, int] = {"trades": 0, "book_snapshots": 0, "tickers": 0}
        self.holes_filled = 0
        self.reconnects = 0  # websocket connections reopened (a stream's own errors: per stream)
        self._at = time.monotonic()
        self.metrics = RecorderMetrics(exchange)

    def get(self, symbol: str, stream: str) -> StreamStatus:
        return self.streams[(symbol, stream)]

    def message(self, symbol: str, stream: str, count: int = 1) -> None:
        s = self.streams[(symbol, stream)]
        s.messages += count
        s.last_message = time.time()
        if s.state != "connected":
            self.set_state(symbol, stream, "connected")

    def set_state(self, symbol: str, stream: str, state: str) -> None:
        s = self.streams[(symbol, stream)]
        if state == "reconnecting" and s.state != "reconnecting":
            s.reconnects += 1
        s.state = state

    def refresh(self) -> None:
        """Rates since the last refresh; metrics and the status file updated."""
        now = time.monotonic()
        took = max(now - self._at, 1e-9)
        self._at = now
        for s in self.streams.values():
            s.rate = round((s.messages - s._counted) / took, 1)
            s._counted = s.messages
        self.metrics.update(self)
        if self.path is not None:
            self.write()

    def snapshot(self) -> dict[str, Any]:
        streams = []
        for s in self.streams.values():
            row = {k: v for k, v in asdict(s).items() if not k.startswith("_")}
            row["last_message_age_s"] = round(time.time() - s.last_message, 1) \
                if s.last_message else None
            streams.append(row)
        return {"exchange": self.exchange, "pid": os.getpid(), "updated_at": time.time(),
                "stored": dict(self.stored), "holes_filled": self.holes_filled,
                "reconnects": self.reconnects,
                "streams": streams}

    def write(self) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.snapshot(), indent=1))
        tmp.replace(self.path)  # readers never see half a file


class RecorderMetrics:
    """Prometheus metrics of one recorder (its own registry)."""

    def __init__(self, exchange: str) -> None:
        r = self.registry = CollectorRegistry()
        labels = ["exchange", "symbol", "stream"]
        self.exchange = exchange
        self.state = Gauge("tradeflow_recorder_stream_state", "1 for the stream's state",
                           [*labels, "state"], registry=r)
        self.messages = Counter("tradeflow_recorder_messages", "messages received", labels,
                                registry=r)
        self.rate = Gauge("tradeflow_recorder_messages_per_second", "recent message rate",
                          labels, registry=r)
        self.last_id = Gauge("tradeflow_recorder_last_id", "last trade id stored / book "
                             "update id", labels, registry=r)
        self.resyncs = Gauge("tradeflow_recorder_resyncs", "book resyncs after a sequence gap",
                             labels, registry=r)
        self.reconnects = Gauge("tradeflow_recorder_reconnects", "stream reconnects", labels,
                                registry=r)
        self.stored = Gauge("tradeflow_recorder_stored_rows", "rows written this run",
                            ["exchange", "table"], registry=r)
        self.reopened = Gauge("tradeflow_recorder_connections_reopened",
                              "websocket connections reopened", ["exchange"], registry=r)
        self.age = Gauge("tradeflow_recorder_last_message_age_seconds",
                         "seconds since the stream's last message (trades: the last trade id's "
                         "age)", labels, registry=r)
        self.refetched = Gauge("tradeflow_recorder_trades_refetched",
                               "trades fetched over REST to fill holes the streams left",
                               ["exchange"], registry=r)
        self._seen: dict[tuple[str, str], int] = {}
        self.server: Any = None

    def serve(self, port: int) -> int | None:
        """Expose /metrics on ``port`` (0 = off); returns the port or None."""
        if not port:
            return None
        try:
            self.server, _ = start_http_server(port, addr="127.0.0.1", registry=self.registry)
        except OSError as exc:
            log.warning("recorder metrics not served on port %d: %s", port, exc)
            return None
        return port

    def update(self, status: RecorderStatus) -> None:
        for (symbol, stream), s in status.streams.items():
            labels = (self.exchange, symbol, stream)
            for state in STATES:
                self.state.labels(*labels, state).set(1.0 if s.state == state else 0.0)
            seen = self._seen.get((symbol, stream), 0)
            if s.messages > seen:
                self.messages.labels(*labels).inc(s.messages - seen)
                self._seen[(symbol, stream)] = s.messages
            self.rate.labels(*labels).set(s.rate)
            if s.last_message:
                self.age.labels(*labels).set(max(time.time() - s.last_message, 0.0))
            if s.last_id is not None:
                self.last_id.labels(*labels).set(s.last_id)
            self.resyncs.labels(*labels).set(s.resyncs)
            self.reconnects.labels(*labels).set(s.reconnects)
        for table, rows in status.stored.items():
            self.stored.labels(self.exchange, table).set(rows)
        self.reopened.labels(self.exchange).set(status.reconnects)
        self.refetched.labels(self.exchange).set(status.holes_filled)

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server = None
