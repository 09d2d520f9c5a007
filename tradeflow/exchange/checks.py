"""A profile checked against what ccxt knows of its exchange (``--check-exchange``).

Kept apart from :mod:`tradeflow.config`, which must not depend on the exchange adapter: a
profile loads without ccxt; commands and flows that talk to the exchange check it here.
"""

from __future__ import annotations

from tradeflow.config import Settings
from tradeflow.config_files import ConfigError
from tradeflow.symbols import parse_symbol

_KINDS = {"linear": "a USDT-margined (linear) perpetual or future",
          "inverse": "a coin-margined (inverse) perpetual or future", "spot": "a spot market"}


def check_against_exchange(settings: Settings) -> None:
    """Check exchange id and timeframes against ccxt (imports ccxt, ~2 s the first time),
    and that the market types loaded include every symbol's."""
    check_market_types(settings)
    from tradeflow.exchange import ccxt_client

    ids = ccxt_client.exchange_ids()
    if settings.exchange.id not in ids:
        close = [i for i in ids if i.startswith(settings.exchange.id[:3])][:5]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigError(
            "exchange.id",
            settings.exchange.id,
            f"not a ccxt exchange; allowed: ccxt.exchanges{hint}",
        )
    available = ccxt_client.exchange_timeframes(settings.exchange.id)
    for tf in settings.timeframes:
        if tf not in available:
            raise ConfigError(
                "timeframes",
                tf,
                f"{settings.exchange.id} has no such timeframe; allowed: {' '.join(available)}",
            )


def check_market_types(settings: Settings) -> None:
    """Every symbol is of a market type the profile loads (``exchange.market_types``): ccxt
    knows no ``BTC/USDT:USDT`` unless linear markets are loaded."""
    types = settings.exchange.market_types
    for symbol in settings.symbols:
        kind = parse_symbol(symbol).market_type
        if kind not in types:
            raise ConfigError(
                "exchange.market_types",
                list(types),
                f"{symbol} is {_KINDS[kind]}; add {kind} to exchange.market_types "
                f"(e.g. [{', '.join([*types, kind])}])",
            )
