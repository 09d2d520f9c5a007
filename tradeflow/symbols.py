"""Market symbols: the one type and check every part of tradeflow uses.

Spot markets are ``BASE/QUOTE``; perpetual and dated futures are written as ccxt writes them,
``BASE/QUOTE:SETTLE`` (``BTC/USDT:USDT``) and ``BASE/QUOTE:SETTLE-YYMMDD``
(``BTC/USD:BTC-250926``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator

from tradeflow.config_files import one_or_many

SYMBOL_RE = re.compile(
    r"^(?P<base>[A-Z0-9]{2,12})/(?P<quote>[A-Z0-9]{2,12})"
    r"(?::(?P<settle>[A-Z0-9]{2,12})(?:-(?P<expiry>\d{6}))?)?$"
)
ALLOWED = "BASE/QUOTE in capitals, or BASE/QUOTE:SETTLE for perpetuals (BTC/USDT:USDT)"


@dataclass(frozen=True, slots=True)
class Symbol:
    """The parts of a unified symbol; ``settle`` is None for spot markets."""

    base: str
    quote: str
    settle: str | None = None
    expiry: str | None = None  # YYMMDD of a dated future

    @property
    def is_spot(self) -> bool:
        return self.settle is None

    @property
    def market_type(self) -> Literal["spot", "linear", "inverse"]:
        """ccxt's kind of market: ``inverse`` when it settles in its base currency
        (``BTC/USD:BTC``), ``linear`` when it settles in another one (``BTC/USDT:USDT``)."""
        if self.settle is None:
            return "spot"
        return "inverse" if self.settle == self.base else "linear"


def parse_symbol(symbol: str) -> Symbol:
    """The parts of ``symbol``; ValueError naming it and what is allowed when malformed."""
    match = SYMBOL_RE.match(symbol)
    if not match:
        raise ValueError(f"symbol {symbol!r} is malformed; allowed: {ALLOWED}")
    return Symbol(match["base"], match["quote"], match["settle"], match["expiry"])


def check_symbols(symbols: tuple[str, ...]) -> tuple[str, ...]:
    """``symbols`` unchanged when each is well formed; ValueError naming one if not."""
    for symbol in symbols:
        parse_symbol(symbol)
    return symbols


# A list of symbols in a settings model: "BTC/USDT, ETH/USDT" (an environment override) or a
# YAML list, each one checked.
Symbols = Annotated[tuple[str, ...], BeforeValidator(one_or_many), AfterValidator(check_symbols)]
