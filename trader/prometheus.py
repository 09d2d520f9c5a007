"""Prometheus metrics of one trader (its own registry, so several can live in one process)."""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

STATES = ("connecting", "connected", "reconnecting", "failed", "disconnected")
BREAKER_STATES = ("closed", "open", "half_open")
RISK_STATES = ("active", "reducing", "halted")  # tradeflow.trading.risk.RiskMode's values
DEPTH_LEVELS = 10  # book levels exported as cumulative depth


class TraderMetrics:
    """Prices, volume, the live book and last trade, positions, PnL, risk state, decisions,
    decision latency and stream state."""

    def __init__(self, strategy: str) -> None:
        self.registry = CollectorRegistry()
        labels = {"strategy": strategy}
        self._labels = labels
        r = self.registry
        self.price = Gauge("tradeflow_price", "last close", ["strategy", "symbol"], registry=r)
        self.volume = Gauge("tradeflow_candle_volume", "base volume of the last closed candle",
                            ["strategy", "symbol"], registry=r)
        self.last_trade = Gauge("tradeflow_last_trade_price",
                                "price of the last trade streamed (moves inside the forming "
                                "candle)", ["strategy", "symbol"], registry=r)
        self.last_trade_age = Gauge("tradeflow_last_trade_age_seconds",
                                    "seconds since the last trade streamed",
                                    ["strategy", "symbol"], registry=r)
        self.depth = Gauge("tradeflow_book_depth",
                           f"cumulative base quantity of the live book's best 1..{DEPTH_LEVELS} "
                           "levels", ["strategy", "symbol", "side", "level"], registry=r)
        self.risk = Gauge("tradeflow_risk_state", "1 for the kill switch's current state "
                          "(active, reducing, halted)", ["strategy", "state"], registry=r)
        self.position = Gauge("tradeflow_position_qty", "base quantity held",
                              ["strategy", "symbol"], registry=r)
        self.equity = Gauge("tradeflow_equity", "equity in quote currency", ["strategy"],
                            registry=r)
        self.pnl = Gauge("tradeflow_pnl", "equity minus starting balance", ["strategy"],
                         registry=r)
        self.drawdown = Gauge("tradeflow_drawdown", "drawdown from peak equity", ["strategy"],
                              registry=r)
        self.decisions = Counter("tradeflow_decisions", "decisions taken",
                                 ["strategy", "symbol", "action"], registry=r)
        self.orders = Counter("tradeflow_orders", "orders placed", ["strategy", "side"],
                              registry=r)
        self.fills = Counter("tradeflow_fills", "fills booked (exchange or paper)", ["strategy"],
                             registry=r)
        self.latency = Histogram(
            "tradeflow_decision_latency_seconds",
            "from a closed candle reaching the trader to its decision and order being persisted",
            ["strategy"], registry=r,
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0))
        self.stream = Gauge("tradeflow_stream_state", "1 for the stream's current state",
                            ["strategy", "symbol", "state"], registry=r)
        self.price_age = Gauge("tradeflow_last_message_age_seconds",
                               "seconds since the last stream message", ["strategy", "symbol"],
                               registry=r)
        self.model_version = Gauge("tradeflow_model_version", "served model version",
                                   ["strategy"], registry=r)
        self.breaker = Gauge("tradeflow_exchange_breaker_state",
                             "1 for the exchange circuit breaker's state",
                             ["strategy", "exchange", "state"], registry=r)
        self.breaker_opened = Gauge("tradeflow_exchange_breaker_opened",
                                    "times the exchange circuit breaker opened",
                                    ["strategy", "exchange"], registry=r)
        self.restarts = Gauge("tradeflow_trader_restarts",
                              "automatic restarts of this strategy's trader after a crash, "
                              "within the restart window", ["strategy"], registry=r)
        self.server = None

    def serve(self, port: int) -> int | None:
        """Expose /metrics on ``port`` (0 = off); returns the port or None."""
        if not port:
            return None
        try:
            self.server, _ = start_http_server(port, addr="127.0.0.1", registry=self.registry)
        except OSError as exc:
            log.warning("metrics endpoint not started on port %d: %s", port, exc)
            return None
        return port

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server = None

    def set_stream(self, symbol: str, state: str, age: float | None) -> None:
        s = self._labels["strategy"]
        for name in STATES:
            self.stream.labels(s, symbol, name).set(1.0 if name == state else 0.0)
        if age is not None:
            self.price_age.labels(s, symbol).set(age)

    def set_risk(self, mode: str) -> None:
        s = self._labels["strategy"]
        for name in RISK_STATES:
            self.risk.labels(s, name).set(1.0 if name == mode else 0.0)

    def set_order_flow(self, symbol: str, flow: dict[str, Any]) -> None:
        """One symbol of the live order flow's status: last trade, its age, cumulative depth."""
        s = self._labels["strategy"]
        if flow.get("last_price") is not None:
            self.last_trade.labels(s, symbol).set(flow["last_price"])
            self.last_trade_age.labels(s, symbol).set(flow["price_age_s"])
        for side in ("bids", "asks"):
            for level, qty in enumerate((flow.get("depth") or {}).get(side, ()), start=1):
                self.depth.labels(s, symbol, side, str(level)).set(qty)

    def set_breaker(self, exchange: str, state: str, opened: int) -> None:
        s = self._labels["strategy"]
        for name in BREAKER_STATES:
            self.breaker.labels(s, exchange, name).set(1.0 if name == state else 0.0)
        self.breaker_opened.labels(s, exchange).set(opened)
