"""Market symbols: the one type and check every part of tradeflow uses (``BASE/QUOTE``)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

from tradeflow.config_files import one_or_many

SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,12}/[A-Z0-9]{2,12}$")


def check_symbols(symbols: tuple[str, ...]) -> tuple[str, ...]:
    """``symbols`` unchanged when each is BASE/QUOTE in capitals; ValueError naming one if not."""
    for symbol in symbols:
        if not SYMBOL_RE.match(symbol):
            raise ValueError(f"symbol {symbol!r} is malformed; allowed: BASE/QUOTE in capitals")
    return symbols


# A list of symbols in a settings model: "BTC/USDT, ETH/USDT" (an environment override) or a
# YAML list, each one checked.
Symbols = Annotated[tuple[str, ...], BeforeValidator(one_or_many), AfterValidator(check_symbols)]
