"""What a trader run did: printed by the CLI, published by the Prefect flow."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tradeflow import timeframes


@dataclass(slots=True)
class RunSummary:
    """What a trader run did (printed by the CLI, published by the Prefect flow)."""

    strategy: str
    mode: str
    candles: int = 0
    decisions: int = 0
    orders: int = 0
    fills: int = 0
    model_versions: list[str] = field(default_factory=list)
    equity: float = 0.0
    pnl: float = 0.0
    risk_mode: str = "active"
    first_candle: int | None = None
    last_candle: int | None = None
    latencies_ms: list[float] = field(default_factory=list)

    def markdown(self) -> str:
        lat = np.percentile(self.latencies_ms, [50, 99]) if self.latencies_ms else (0, 0)
        span = (f"{timeframes.iso(self.first_candle)} .. {timeframes.iso(self.last_candle)}"
                if self.first_candle is not None and self.last_candle is not None else "-")
        return "\n".join([
            f"**Trader `{self.strategy}` ({self.mode})**", "",
            "| candles | decisions | orders | fills | equity | PnL | risk | models | "
            "latency p50/p99 ms |",
            "|---|---|---|---|---|---|---|---|---|",
            f"| {self.candles} | {self.decisions} | {self.orders} | {self.fills} | "
            f"{self.equity:,.2f} | {self.pnl:+,.2f} | {self.risk_mode} | "
            f"{', '.join(self.model_versions)} | {lat[0]:.2f} / {lat[1]:.2f} |",
            "", f"Candles processed: {span}",
        ])
