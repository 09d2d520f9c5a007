"""What a market data file's name (and folder) says: symbol, timeframe, kind of candles.

Binance Vision names klines ``BTCUSDT-1m-2024-01.zip`` (monthly) or
``BTCUSDT-1m-2024-01-15.zip`` (daily), under ``spot/``, ``futures/um/`` (USDT-margined:
``BTC/USDT:USDT``) or ``futures/cm/`` (coin-margined ``BTCUSD_PERP``: ``BTC/USD:BTC``).
freqtrade names OHLCV files ``BTC_USDT-1m.json`` (also ``.json.gz``, ``.feather``,
``.parquet``) and futures ``BTC_USDT_USDT-1h-futures.feather``; its mark, index and funding
files hold no trade candles and are refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tradeflow.symbols import parse_symbol

# Longest first, so BTCUSDT splits as BTC/USDT and not BTCUSD/T.
QUOTES = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USDP", "DAI", "BTC", "ETH", "BNB", "EUR",
          "TRY", "BRL", "GBP", "AUD", "JPY", "XRP", "TRX", "DOGE", "USD")
_VISION_RE = re.compile(
    r"^(?P<symbol>[A-Z0-9]+(?:_(?:PERP|\d{6}))?)-(?P<tf>\d+[smhdwM])-"
    r"(?P<date>\d{4}-\d{2}(?:-\d{2})?)\.(?:zip|csv)$")
_VISION_TRADES_RE = re.compile(
    r"^(?P<symbol>[A-Z0-9]+(?:_(?:PERP|\d{6}))?)-(?P<kind>trades|aggTrades)-"
    r"(?P<date>\d{4}-\d{2}(?:-\d{2})?)\.(?:zip|csv)$")
_FREQTRADE_RE = re.compile(
    r"^(?P<pair>[A-Z0-9]+(?:_[A-Z0-9]+){1,2})-(?P<tf>\d+[smhdwM])"
    r"(?:-(?P<kind>futures|spot|mark|index|premiumIndex|funding_rate))?"
    r"\.(?:json|json\.gz|feather|parquet)$")
_NOT_CANDLES = {"mark": "mark prices", "index": "index prices",
                "premiumIndex": "premium index", "funding_rate": "funding rates"}


class FileNameError(ValueError):
    """A name that does not say what a file holds; the message says what to pass instead."""


@dataclass(frozen=True, slots=True)
class NamedFile:
    """What a file's name says; None where it says nothing."""

    symbol: str | None
    timeframe: str | None
    layout: str | None  # "binance" (Binance Vision klines) or "freqtrade"


def split_symbol(raw: str, settle: str | None = None) -> str:
    """``BTCUSDT`` -> ``BTC/USDT`` using the common quote assets (``:settle`` appended)."""
    for quote in QUOTES:
        if raw.endswith(quote) and len(raw) > len(quote):
            symbol = f"{raw[: -len(quote)]}/{quote}"
            return f"{symbol}:{settle}" if settle else symbol
    raise FileNameError(f"cannot tell base and quote in {raw!r}; pass --symbol BASE/QUOTE")


def read_name(path: Path) -> NamedFile:
    """Symbol, timeframe and layout from a file's name and folders (None when unknown)."""
    name = path.name
    vision = _VISION_RE.match(name)
    if vision:
        return NamedFile(_vision_symbol(vision["symbol"], path), vision["tf"], "binance")
    ft = _FREQTRADE_RE.match(name)
    if ft:
        kind = ft["kind"]
        if kind in _NOT_CANDLES:
            raise FileNameError(f"{path}: freqtrade {_NOT_CANDLES[kind]}, not trade candles; "
                                "allowed: OHLCV files (BTC_USDT-1m.json, ...-futures.feather)")
        parts = ft["pair"].split("_")
        symbol = f"{parts[0]}/{parts[1]}" + (f":{parts[2]}" if len(parts) == 3 else "")
        try:
            parse_symbol(symbol)
        except ValueError as exc:
            raise FileNameError(f"{path}: {exc}; pass --symbol") from None
        return NamedFile(symbol, ft["tf"], "freqtrade")
    if re.search(r"-trades\.(json|json\.gz|feather|parquet)$", name):
        raise FileNameError(f"{path}: a trades file, not candles; allowed: OHLCV candle files")
    return NamedFile(None, None, None)


@dataclass(frozen=True, slots=True)
class TradeDumpName:
    """What a Binance Vision trade dump's name says: ``BTCUSDT-aggTrades-2024-01-15.zip``."""

    symbol: str
    kind: str  # "trades" or "aggTrades"


def read_trade_dump_name(path: Path) -> TradeDumpName | None:
    """Symbol and kind of a Binance Vision ``trades``/``aggTrades`` dump; None for another
    name. FileNameError when the symbol cannot be split into base and quote."""
    found = _VISION_TRADES_RE.match(path.name)
    if found is None:
        return None
    return TradeDumpName(_vision_symbol(found["symbol"], path), found["kind"])


def _vision_symbol(raw: str, path: Path) -> str:
    """A Binance Vision symbol, read as a perpetual or future under ``futures/um|cm``."""
    folders = [p.lower() for p in path.parent.parts]
    market = folders[folders.index("futures") + 1] if "futures" in folders[:-1] else None
    if market == "cm":  # coin-margined: BTCUSD_PERP, BTCUSD_240628; settled in the base
        base_quote, _, expiry = raw.partition("_")
        symbol = split_symbol(base_quote)
        settle = symbol.split("/")[0]
        return f"{symbol}:{settle}" + (f"-{expiry}" if expiry and expiry != "PERP" else "")
    if market == "um":  # USDT- or USDC-margined: settled in the quote
        base_quote, _, expiry = raw.partition("_")
        symbol = split_symbol(base_quote)
        return f"{symbol}:{symbol.split('/')[1]}" + (f"-{expiry}" if expiry else "")
    return split_symbol(raw)
