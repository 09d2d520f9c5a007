"""The strategy's ``execution:`` section: how live orders are placed, and the exchange stop.

``order_type: market`` (the default) keeps today's market orders. ``limit`` places the entry at
the touch shifted by ``limit_offset_bps`` (a buy below the bid, a sell above the ask) with the
given time in force, or post-only. ``exchange_stop`` asks for the strategy's stop loss to rest on
the exchange as a stop-loss-limit order, its limit ``stop_limit_offset_bps`` beyond the stop.
:func:`tradeflow.exchange.order_rules.entry_request` and ``stop_request`` turn the settings into
exchange order requests.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tradeflow.config_files import Frozen


class ExecutionSettings(Frozen):
    order_type: Literal["market", "limit"] = "market"
    time_in_force: Literal["GTC", "IOC", "FOK"] = "GTC"
    post_only: bool = Field(False, description="limit orders only add liquidity (LIMIT_MAKER)")
    limit_offset_bps: float = Field(0.0, ge=0, description="limit price away from the touch")
    exchange_stop: bool = Field(False, description="rest the stop loss on the exchange")
    stop_limit_offset_bps: float = Field(20.0, ge=0, description="stop-limit beyond the stop")

    @model_validator(mode="after")
    def _consistent(self) -> ExecutionSettings:
        if self.post_only and (self.order_type != "limit" or self.time_in_force != "GTC"):
            raise ValueError("post_only needs order_type limit with time_in_force GTC")
        return self
