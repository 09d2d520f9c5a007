"""The ``sources`` and ``aggregation`` keys of a strategy YAML (see docs/strategies.md).

Kept apart from :mod:`tradeflow.strategy` so the plugin framework owns its own settings; the
strategy model only holds them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from tradeflow.config_files import Frozen


class SourceSpec(Frozen):
    """One signal source: ``{kind: rsi, period: 14, weight: 2}``; parameters sit flat beside
    ``kind``, ``name`` and ``weight`` in YAML. ``kind`` is a built-in name or a user class
    ``package.module:ClassName``."""

    kind: str
    name: str | None = Field(None, description="label in reasons and reports (default: kind)")
    weight: float = Field(1.0, gt=0, description="weighted aggregation only")
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _flatten(cls, data: Any) -> Any:
        if isinstance(data, dict) and "params" not in data:
            own = {"kind", "name", "weight"}
            return {**{k: v for k, v in data.items() if k in own},
                    "params": {k: v for k, v in data.items() if k not in own}}
        return data

    @property
    def label(self) -> str:
        return self.name or self.kind


class AggregationSettings(Frozen):
    """How the sources' signals become one decision per candle.

    * ``vote``: non-abstaining sources vote; BUY when more than half of them say BUY (or at
      least ``min_votes`` do, when given), SELL likewise; otherwise hold.
    * ``weighted``: score = sum(weight x confidence x direction) / sum(weight) over the
      non-abstaining sources; BUY when score >= ``threshold``, SELL when <= -``threshold``.
    * ``unanimous``: BUY (SELL) only when every source says BUY (SELL); an abstention blocks.
    """

    mode: Literal["vote", "weighted", "unanimous"] = "vote"
    min_votes: int | None = Field(None, ge=1, description="vote: k of n instead of majority")
    threshold: float = Field(0.5, gt=0, le=1, description="weighted: |score| needed")
