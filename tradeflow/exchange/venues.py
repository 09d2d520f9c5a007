"""What differs between venues behind the same ccxt calls, kept apart from the adapter's ccxt
code: base-URL rewiring, the market types each venue's ccxt class loads, and how a page of
candles is bounded.

Candle pages: ccxt's ``until`` is Binance's ``endTime`` (inclusive; Binance answers the first
``limit`` candles from ``since``, skipping a stretch without any) but OKX's ``after`` (exclusive,
and OKX answers the *newest* ``limit`` candles before it, so a wide ``since``..``until`` would
skip everything between ``since`` and the last page's worth). On OKX a page is therefore
bounded to ``limit`` candles from ``since`` and ``until`` moved one millisecond on. (So a page
that starts more than ``limit`` candles before a pair's listing comes back empty there.)
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tradeflow import timeframes

# ccxt's fetchMarkets types for our market_types, where the venue names them differently
_MARKET_TYPES = {"okx": {"spot": ("spot",), "linear": ("swap", "future"),
                         "inverse": ("swap", "future")}}  # fmt: skip
# client order ids a venue accepts: OKX's clOrdId is letters and digits, at most 32
_CLIENT_ID_RULES = {"okx": (re.compile(r"[^A-Za-z0-9]"), 32)}
# venues whose OHLCV page ends at ccxt's `until`, which is exclusive there
_END_ANCHORED = {"okx"}


def rebase_urls(urls: Any, base_url: str) -> Any:
    """Rewrite every URL in a ccxt ``urls['api']`` tree onto ``base_url``, keeping paths.

    ``https://api.binance.com/api/v3`` -> ``http://127.0.0.1:8765/api/v3``,
    ``wss://stream.binance.com:9443/ws`` -> ``ws://127.0.0.1:8765/ws`` and OKX's
    ``https://{hostname}`` -> ``http://127.0.0.1:8765`` (its paths start with ``/api/v5``).
    """
    base = urlsplit(base_url)
    ws_scheme = "wss" if base.scheme == "https" else "ws"
    if isinstance(urls, dict):
        return {k: rebase_urls(v, base_url) for k, v in urls.items()}
    if isinstance(urls, str) and "://" in urls:
        parts = urlsplit(urls)
        scheme = ws_scheme if parts.scheme in ("ws", "wss") else base.scheme
        path = base.path.rstrip("/") + parts.path
        return urlunsplit((scheme, base.netloc, path, parts.query, parts.fragment))
    return urls


def fetch_market_types(exchange_id: str, market_types: tuple[str, ...]) -> list[str]:
    """ccxt's ``options['fetchMarkets']['types']`` for our ``market_types`` on a venue."""
    names = _MARKET_TYPES.get(exchange_id)
    if names is None:
        return list(market_types)
    return list(dict.fromkeys(n for m in market_types for n in names.get(m, (m,))))


def ohlcv_page(exchange_id: str, timeframe: str, since: int | None, limit: int | None,
               until: int | None, page_max: int) -> tuple[int | None, dict[str, int]]:
    """ccxt's fetch_ohlcv ``limit`` and params for candles with open times in [since, until]:
    at most ``limit`` of them (and no more than the venue's ``page_max``) from ``since``."""
    limit = min(limit, page_max) if limit else limit
    if until is None:
        return limit, {}
    if exchange_id not in _END_ANCHORED:  # Binance: the first `limit` from since, up to until
        return limit, {"until": until}
    if since is not None and limit:
        # calendar months: duration_ms is their longest, so the bound never cuts a page short
        until = min(until, since + limit * timeframes.duration_ms(timeframe) - 1)
    return limit, {"until": until + 1}


def venue_client_id(exchange_id: str, client_order_id: str) -> str:
    """Our client order id as the venue accepts it (the same id every time, so a resend is
    still refused as a duplicate): ``tf-<32 hex>`` is ``tf<30 hex>`` on OKX."""
    rule = _CLIENT_ID_RULES.get(exchange_id)
    if rule is None:
        return client_order_id
    banned, longest = rule
    return banned.sub("", client_order_id)[:longest]
