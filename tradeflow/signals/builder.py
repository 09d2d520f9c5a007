"""Build a :class:`SignalStrategy` from a strategy's ``sources`` and ``aggregation``.

Built-in kinds: ``rsi``, ``ma_cross``, ``trend``, ``book_imbalance``; layers above this one
add theirs through ``factories`` (``models`` adds ``ml``: the registry champion). A kind with
a colon, ``package.module:ClassName``, is a user class: a :class:`SignalSource` subclass
imported from the Python path (the current directory included).
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from tradeflow.config_files import ConfigError
from tradeflow.signals.base import SignalSource
from tradeflow.signals.ensemble import NamedSource, SignalStrategy
from tradeflow.signals.orderbook import BookImbalance
from tradeflow.signals.technical import MaCross, RsiBands, Trend
from tradeflow.strategy import SourceSpec

if TYPE_CHECKING:
    from tradeflow.strategy import StrategySettings

Factory = Callable[..., SignalSource]


def builtin_factories(timeframe: str) -> dict[str, Factory]:
    def trend(**params: Any) -> SignalSource:
        return Trend(**params, base_timeframe=timeframe)

    return {"rsi": RsiBands, "ma_cross": MaCross, "trend": trend,
            "book_imbalance": BookImbalance}


def load_class(path: str) -> type[SignalSource]:
    """``package.module:ClassName`` imported; ValueError in one line when it cannot be."""
    module_name, _, class_name = path.partition(":")
    if not module_name or not class_name:
        raise ValueError("a user source is written package.module:ClassName")
    if os.getcwd() not in sys.path:  # user sources next to the strategy folder
        sys.path.append(os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name}: {exc}") from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, SignalSource)):
        raise ValueError(f"{module_name} has no SignalSource subclass {class_name}")
    return cls


def build_source(spec: SourceSpec, factories: Mapping[str, Factory]) -> SignalSource:
    """One source from its spec; ValueError naming the problem and what is allowed."""
    if ":" in spec.kind:
        factory: Factory = load_class(spec.kind)
    elif spec.kind in factories:
        factory = factories[spec.kind]
    else:
        raise ValueError(f"unknown source; allowed: {', '.join(sorted(factories))} or "
                         "package.module:ClassName")
    try:
        return factory(**spec.params)
    except TypeError as exc:  # an unknown or missing keyword
        text = str(exc)
        unknown = re.search(r"unexpected keyword argument '(\w+)'", text)
        if unknown:
            text = f"unknown parameter {unknown.group(1)!r}"
        raise ValueError(text) from None


def build_strategy(strategy: StrategySettings, factories: Mapping[str, Factory] | None = None,
                   source: str | None = None) -> SignalStrategy:
    """The strategy's sources built and named; :class:`ConfigError` (one line) on a bad one.
    ``factories`` add kinds to the built-in ones (``source``: the file, for messages)."""
    kinds = builtin_factories(strategy.timeframe) | dict(factories or {})
    named: list[NamedSource] = []
    seen: dict[str, int] = {}
    for i, spec in enumerate(strategy.sources):
        try:
            built = build_source(spec, kinds)
        except ValueError as exc:
            raise ConfigError(f"sources[{i}]", spec.kind, str(exc), source) from None
        label = spec.label
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:  # two sources of one kind: rsi, rsi_2
            label = f"{label}_{seen[label]}"
        named.append(NamedSource(label, spec.weight, built))
    return SignalStrategy(named, strategy.aggregation, strategy.timeframe)
