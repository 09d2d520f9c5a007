"""What watches a trader run without steering it: Prometheus metrics and the status file.

The trader tells its observers what happened (a model served, a decision recorded, a candle
done, a status snapshot); an observer never writes the ledger or changes a decision, so adding
one cannot change what the trader does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tradeflow.backtest.live_engine import Candle, Decision, PortfolioEngine
from trader.prometheus import TraderMetrics


class Observer:
    """Base of the trader's observers: every hook does nothing unless overridden."""

    def model_served(self, version: str) -> None:
        """A model version is now being served (at start or after a hot swap)."""

    def recorded(self, decision: Decision, orders: int) -> None:
        """A decision was written to the ledger with ``orders`` orders."""

    def held(self, decision: Decision) -> None:
        """A decision kept the target (not written to the ledger)."""

    def candle_done(self, t: int, batch: Mapping[str, Candle], engine: PortfolioEngine,
                    latency_ms: float) -> None:
        """Candle ``t`` is booked and committed, ``latency_ms`` after it reached the trader."""

    def status(self, snapshot: Mapping[str, Any]) -> None:
        """The trader's status (streams, model, equity), every few seconds and at the end."""

    def close(self) -> None:
        """The run is over."""


class MetricsObserver(Observer):
    """Prices, positions, PnL, decisions, latency, model and streams as Prometheus metrics."""

    def __init__(self, metrics: TraderMetrics, strategy: str, starting_balance: float) -> None:
        self.metrics, self.name, self.start = metrics, strategy, starting_balance
        self._fills = 0

    def model_served(self, version: str) -> None:
        try:
            number = float(version)
        except ValueError:  # "signals", "fixed": no registry version, so no series (not 0)
            return
        self.metrics.model_version.labels(self.name).set(number)

    def recorded(self, decision: Decision, orders: int) -> None:
        self.metrics.decisions.labels(self.name, decision.symbol, decision.action).inc()
        for _ in range(orders):
            self.metrics.orders.labels(self.name, decision.side or "none").inc()

    def held(self, decision: Decision) -> None:
        self.metrics.decisions.labels(self.name, decision.symbol, "hold").inc()

    def candle_done(self, t: int, batch: Mapping[str, Candle], engine: PortfolioEngine,
                    latency_ms: float) -> None:
        m, equity = self.metrics, engine.equity()
        m.equity.labels(self.name).set(equity)
        m.pnl.labels(self.name).set(equity - self.start)
        m.drawdown.labels(self.name).set(engine.risk.drawdown(equity))
        m.set_risk(engine.risk.mode.value)
        for s, c in batch.items():
            m.price.labels(self.name, s).set(c.close)
            m.volume.labels(self.name, s).set(c.volume)
            pos = engine.books[s].position
            m.position.labels(self.name, s).set(pos.side * pos.qty)
        m.latency.labels(self.name).observe(latency_ms / 1000.0)

    def status(self, snapshot: Mapping[str, Any]) -> None:
        fills = int(snapshot.get("fills") or 0)
        if fills > self._fills:
            self.metrics.fills.labels(self.name).inc(fills - self._fills)
            self._fills = fills
        for s in snapshot.get("streams", []):
            self.metrics.set_stream(s["symbol"], s["state"], s["last_message_age_s"])
        for b in snapshot.get("breakers") or []:
            self.metrics.set_breaker(b["name"], b["state"], b["opened"])
        for symbol, flow in (snapshot.get("order_flow") or {}).items():
            self.metrics.set_order_flow(symbol, flow)

    def close(self) -> None:
        self.metrics.close()


class StatusFile(Observer):
    """The status JSON that ``tradeflow status`` reads, replaced whole on every snapshot."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def status(self, snapshot: Mapping[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(snapshot, default=str))
        tmp.replace(self.path)  # readers never see half a file
