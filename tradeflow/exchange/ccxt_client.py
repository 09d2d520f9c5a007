"""The exchange adapter: the only module of tradeflow that imports ccxt.

It builds any ccxt exchange from :class:`~tradeflow.config.ExchangeSettings`, optionally
pointed at another base URL (the simulator, a testnet, a proxy), with ccxt's rate limiter on.
Everything it returns is a tradeflow type from :mod:`tradeflow.exchange.types`; every ccxt
error is mapped to one of the typed errors there, which say whether a retry can help.
Transient failures are retried with exponential backoff and jitter, honouring Retry-After.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import ccxt
import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
import pandas as pd

from tradeflow.config import ExchangeSettings
from tradeflow.exchange import parse
from tradeflow.exchange import types as t
from tradeflow.exchange.book import LocalBook
from tradeflow.exchange.breaker import breaker_for
from tradeflow.exchange.order_rules import OrderRequest, ccxt_arguments
from tradeflow.exchange.venues import (
    fetch_market_types,
    ohlcv_page,
    rebase_urls,
    venue_client_id,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# Exchanges whose raw klines are Binance's 12 columns: quote volume at 7, trade count at 8.
_BINANCE_KLINES = {"binance", "binanceus"}


def exchange_ids() -> list[str]:
    """Every exchange id ccxt knows."""
    return list(ccxt.exchanges)


def exchange_timeframes(exchange_id: str) -> list[str]:
    """Timeframes an exchange offers for OHLCV (empty when it has none)."""
    cls = getattr(ccxt, exchange_id)
    return list((cls().timeframes or {}).keys())


def map_error(exc: Exception, retry_after: float | None = None) -> t.ExchangeError:
    """Translate a ccxt (or transport) exception into a typed tradeflow error."""
    # aiohttp names the TLS context of every connection, plain-http ones included
    # ("Cannot connect to host h:p ssl:default [...]"): noise that misleads.
    msg = _redact(str(exc)).replace(" ssl:default", "") or type(exc).__name__
    table: list[tuple[type[Exception], type[t.ExchangeError]]] = [
        (ccxt.RateLimitExceeded, t.RateLimited),
        (ccxt.DDoSProtection, t.RateLimited),
        (ccxt.RequestTimeout, t.RequestTimedOut),
        (ccxt.ExchangeNotAvailable, t.ExchangeUnavailable),
        (ccxt.ChecksumError, t.BookResync),  # a local book's sequence gap
        (ccxt.InvalidNonce, t.TransientError),
        (ccxt.NetworkError, t.TransientError),
        (ccxt.BadResponse, t.BadResponse),
        (ccxt.BadSymbol, t.BadSymbol),
        (ccxt.AuthenticationError, t.AuthenticationFailed),
        (ccxt.InsufficientFunds, t.InsufficientFunds),
        (ccxt.OrderNotFound, t.OrderNotFound),
        (ccxt.InvalidOrder, t.OrderRejected),
        (ccxt.NotSupported, t.NotSupported),
        (asyncio.TimeoutError, t.RequestTimedOut),
        (ConnectionError, t.ExchangeUnavailable),
        # ccxt parsing a garbled body surfaces as these; the request itself may succeed again.
        (ValueError, t.BadResponse),
        (TypeError, t.BadResponse),
        (KeyError, t.BadResponse),
        (IndexError, t.BadResponse),
    ]
    for ccxt_cls, ours in table:
        if isinstance(exc, ccxt_cls):
            return ours(msg, retry_after=retry_after)
    # ccxt reports a connection dropped mid-body as a plain ExchangeError caused by the
    # transport; the request itself can succeed again.
    if type(exc.__cause__).__module__.split(".")[0] == "aiohttp":
        return t.ExchangeUnavailable(msg, retry_after=retry_after)
    return t.ExchangeError(msg)


def _redact(text: str) -> str:
    # ccxt puts full request URLs in messages; signed ones carry the signature and key.
    for marker in ("signature=", "X-MBX-APIKEY", "apiKey=", "OK-ACCESS-KEY", "OK-ACCESS-SIGN",
                   "OK-ACCESS-PASSPHRASE"):
        idx = text.find(marker)
        while idx >= 0:
            end = idx + len(marker)
            stop = end
            while stop < len(text) and text[stop] not in "& '\"},":
                stop += 1
            text = text[:end] + "***" + text[stop:]
            idx = text.find(marker, end + 3)
    return text


def _parse_ohlcv_keep_extra(self: Any, ohlcv: Any, market: Any = None) -> list[Any]:
    row = super(type(self), self).parse_ohlcv(ohlcv, market)
    if isinstance(ohlcv, list) and len(ohlcv) >= 9:
        try:  # Binance sends quote volume as a decimal string and the count as an int
            row = [*row[:6], float(ohlcv[7]), int(ohlcv[8])]
        except (TypeError, ValueError):
            row = [*row[:6], None, None]
    return row


def _handle_ohlcv_keep_closed(self: Any, client: Any, message: Any) -> None:
    # Binance marks the last update of a candle with k.x = true; ccxt's unified rows drop it.
    # A candle's final update is kept as sent: an earlier, partial update of the same candle
    # that arrives after it (a reordered frame) is dropped, or it would overwrite the final
    # values in ccxt's cache while the candle stays marked closed.
    kline = message.get("k") if isinstance(message, dict) else None
    if isinstance(kline, dict):
        closed = self.__dict__.setdefault("_tradeflow_closed", {})
        seen = closed.setdefault((kline.get("s"), kline.get("i")), [])
        if kline.get("x") is True:
            if kline.get("t") not in seen:
                seen.append(kline.get("t"))
                del seen[:-64]  # a short memory is enough: callers look at the newest rows
        elif kline.get("t") in seen:
            return
    super(type(self), self).handle_ohlcv(client, message)


def _local_order_book(self: Any, snapshot: Any = None, depth: Any = None) -> LocalBook:
    # ccxt.pro makes every book it keeps from websocket diffs through this factory.
    return LocalBook(snapshot or {}, depth)


def _apply_depth_message(self: Any, client: Any, message: Any, orderbook: Any) -> Any:
    # ccxt.pro has checked the update ids; the levels go in one pass, not a call per level.
    if not isinstance(orderbook, LocalBook):
        return super(type(self), self).handle_order_book_message(client, message, orderbook)
    orderbook.apply_levels(message)
    return orderbook


def _exchange_class(exchange_id: str) -> type:
    if exchange_id in ccxt_pro.exchanges:
        cls = getattr(ccxt_pro, exchange_id)
    else:
        cls = getattr(ccxt_async, exchange_id)
    if exchange_id in _BINANCE_KLINES:
        # Keep Binance's quote volume and trade count, which the unified row drops, and the
        # closed flag of streamed klines.
        extra: dict[str, Any] = {"parse_ohlcv": _parse_ohlcv_keep_extra}
        if hasattr(cls, "handle_ohlcv"):
            extra["handle_ohlcv"] = _handle_ohlcv_keep_closed
        if hasattr(cls, "handle_order_book_message"):
            # Our book (tradeflow.exchange.book) instead of ccxt.pro's, fed the same diffs.
            extra["order_book"] = _local_order_book
            extra["handle_order_book_message"] = _apply_depth_message
        cls = type(f"Tradeflow{cls.__name__}", (cls,), extra)
    return cls


def build_exchange(settings: ExchangeSettings) -> Any:
    """The ccxt.pro exchange object of ``settings``: rate limiter (and the client's share of
    the rate), timeout, keys, the market types to load (spot unless ``market_types`` adds
    perpetuals and futures), the sandbox or another base URL."""
    config: dict[str, Any] = {
        "enableRateLimit": settings.rate_limit,
        # Kept so a body that was not JSON (truncated) is caught: ccxt hands it back as
        # text, which some parsers turn into junk instead of an error.
        "enableLastJsonResponse": True,
        "enableLastHttpResponse": True,
        "timeout": settings.timeout_ms,
        # Only exchangeInfo is needed to load spot markets; currencies and margin pairs
        # cost extra (signed) calls that a spot trader never uses.
        "options": {"fetchCurrencies": False, "fetchMargins": False},
    }
    if settings.api_key is not None:
        config["apiKey"] = settings.api_key.get_secret_value()
    if settings.api_secret is not None:
        config["secret"] = settings.api_secret.get_secret_value()
    if settings.api_password is not None:
        config["password"] = settings.api_password.get_secret_value()
    ex = _exchange_class(settings.id)(config)
    if settings.rate_limit_share < 1.0 and ex.rateLimit > 0:
        # Clients sharing one exchange (a Dask backfill) split its request rate.
        ex.rateLimit = ex.rateLimit / settings.rate_limit_share
        ex.tokenBucket = None  # rebuilt from the new rateLimit, not merged into
        ex.init_rest_rate_limiter()
    fetch_markets = ex.options.get("fetchMarkets")
    if isinstance(fetch_markets, dict) and "types" in fetch_markets:
        types = fetch_market_types(settings.id, settings.market_types)
        ex.options["fetchMarkets"] = {**fetch_markets, "types": types}
    if settings.testnet:
        ex.set_sandbox_mode(True)
    if settings.base_url:
        ex.urls["api"] = rebase_urls(ex.urls["api"], settings.base_url)
    breaker = breaker_for(settings)
    if breaker is not None:  # every HTTP request of this client goes through it
        ex.fetch = breaker.guard(ex.fetch, map_error)
    return ex


def _retry_after(headers: Any) -> float | None:
    """Seconds of a Retry-After header, None without one."""
    for key, value in (headers or {}).items():
        if key.lower() == "retry-after":
            try:
                return float(value)
            except (TypeError, ValueError):
                return None
    return None


class _SharedPause:
    """One pause for every request of a client once the exchange answers 429 or 418: the
    series sharing the client wait together (the exchange said "wait", not "failed") instead
    of each spending its retries."""

    def __init__(self, sleep: Callable[[float], Awaitable[None]]) -> None:
        self.until, self._sleep = 0.0, sleep

    async def wait(self) -> float:
        """Wait out a pause another caller was told to take; the seconds waited."""
        pause = self.until - asyncio.get_running_loop().time()
        if pause <= 0:
            return 0.0
        await self._sleep(pause)
        return pause

    async def hold(self, delay: float) -> None:
        """Pause every caller for ``delay`` seconds from now, this one included."""
        self.until = max(self.until, asyncio.get_running_loop().time() + delay)
        await self._sleep(delay)


class ExchangeClient:
    """Async, typed access to one exchange. Use as ``async with ExchangeClient(cfg) as ex``."""

    def __init__(self, settings: ExchangeSettings, *, sleep: Callable[[float], Awaitable[None]]
                 | None = None) -> None:
        self.settings = settings
        self._sleep = sleep or asyncio.sleep
        self._ex = build_exchange(settings)
        self._markets: dict[str, t.Market] | None = None
        self._pause = _SharedPause(self._sleep)

    # -- lifecycle -------------------------------------------------------------------------
    async def __aenter__(self) -> ExchangeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close HTTP sessions and websockets."""
        try:
            await self._ex.close()
        except Exception as exc:  # closing must never mask the real outcome
            log.debug("closing exchange failed: %s", exc)

    # -- capabilities ----------------------------------------------------------------------
    @property
    def exchange(self) -> Any:
        """The ccxt.pro exchange object, for adapters of this package that extend the client."""
        return self._ex

    @property
    def id(self) -> str:
        return str(self._ex.id)

    @property
    def timeframes(self) -> list[str]:
        return list((self._ex.timeframes or {}).keys())

    @property
    def has_websocket(self) -> bool:
        """True when ccxt.pro can stream OHLCV from this exchange."""
        return bool(self._ex.has.get("watchOHLCV"))

    @property
    def ohlcv_page_limit(self) -> int:
        """Most candles one OHLCV request returns (Binance: 1000)."""
        limits = self._ex.features.get("spot", {}) if getattr(self._ex, "features", None) else {}
        limit = (limits.get("fetchOHLCV") or {}).get("limit") if isinstance(limits, dict) else None
        return int(limit or 1000)

    # -- retry -----------------------------------------------------------------------------
    async def call(self, fn: Callable[..., Awaitable[T]], *args: Any, retry: bool = True,
                   stream: bool = False, **kwargs: Any) -> T:
        """Call a ccxt coroutine, mapping errors, retrying transient ones with backoff.

        ``stream`` marks websocket calls, which have no HTTP body to check.
        """
        attempt = limited = 0
        waited, cap = 0.0, self.settings.rate_limit_max_wait_s  # rate-limit waits: no retries
        while True:
            if not stream:
                waited += await self._pause.wait()
            try:
                if stream:
                    return await fn(*args, **kwargs)
                self._ex.last_http_response = self._ex.last_json_response = None
                result = await fn(*args, **kwargs)
                # No await happens between ccxt storing this response and here, so it is
                # ours even with concurrent calls on the same client.
                body = self._ex.last_http_response
                if isinstance(body, str) and body.strip() and self._ex.last_json_response is None:
                    raise t.BadResponse(f"{self.id}: response body is not valid JSON: "
                                        f"{body[:60]!r}")
                return result
            except Exception as exc:
                if isinstance(exc, asyncio.CancelledError):
                    raise
                err = exc if isinstance(exc, t.ExchangeError) else map_error(
                    exc, _retry_after(self._ex.last_response_headers)
                )
                if retry and isinstance(err, t.RateLimited) and waited < cap:
                    # Retry-After as said: a backoff growing over repeated 429s would idle
                    delay = err.retry_after if err.retry_after is not None else \
                        self._backoff(limited, None)
                    delay = min(delay, cap - waited)
                    log.warning("%s: rate limited; every request pauses %.2fs", self.id, delay)
                    limited, waited = limited + 1, waited + delay
                    await self._pause.hold(delay)
                    continue
                if not (retry and err.retryable and attempt < self.settings.max_retries):
                    raise err from None
                delay = self._backoff(attempt, err.retry_after)
                log.warning("%s: %s; retry %d/%d in %.2fs", self.id, type(err).__name__,
                            attempt + 1, self.settings.max_retries, delay)
                attempt += 1
                await self._sleep(delay)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        cap = self.settings.retry_max_delay_s
        expo = min(cap, self.settings.retry_base_delay_s * 2**attempt)
        delay = expo * (0.5 + random.random() / 2)  # jitter de-synchronises many clients
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay

    # -- public data -----------------------------------------------------------------------
    async def load_markets(self, reload: bool = False) -> dict[str, t.Market]:
        """Markets by unified symbol, always asked of the exchange: after a failed load (a
        truncated body) ccxt's cache holds nothing, and a retry must not be answered from it."""
        if self._markets is None or reload:
            raw = await self.call(self._ex.load_markets, True)
            if not raw:
                raise t.BadResponse(f"{self.id}: the exchange listed no markets")
            self._markets = {s: parse.market(m) for s, m in raw.items()}
        return self._markets

    async def fetch_time(self) -> int:
        """The exchange's clock in UTC ms (the simulator's accelerated clock, for example)."""
        if not self._ex.has.get("fetchTime"):
            return int(self._ex.milliseconds())

        async def fetch_time() -> int:
            value = await self._ex.fetch_time()
            # ccxt hands back None or text when the body was not valid JSON.
            if not isinstance(value, int | float) or value <= 0:
                raise t.BadResponse(f"{self.id} time response is not a timestamp: {value!r}")
            return int(value)

        return await self.call(fetch_time)

    async def fetch_ohlcv(self, symbol: str, timeframe: str, since: int | None = None,
                          limit: int | None = None, until: int | None = None) -> pd.DataFrame:
        """One page of candles, ascending, as a frame with :data:`OHLCV_COLUMNS`.

        ``since``/``until`` bound open times (inclusive). The last row may be the still-open
        candle; callers decide finality from the exchange clock.
        """
        await self.load_markets()
        limit, params = ohlcv_page(self.id, timeframe, since, limit, until, self.ohlcv_page_limit)

        async def page() -> pd.DataFrame:
            # Parse inside the retried call: a garbled body parses into junk rows, and
            # asking again is the cure.
            return parse.ohlcv_frame(await self._ex.fetch_ohlcv(symbol, timeframe, since, limit,
                                                          params))

        return await self.call(page)

    async def fetch_ticker(self, symbol: str) -> t.Ticker:
        raw = await self.call(self._ex.fetch_ticker, symbol)
        return parse.ticker(raw)

    async def fetch_order_book(self, symbol: str, limit: int | None = None) -> t.OrderBook:
        raw = await self.call(self._ex.fetch_order_book, symbol, limit)
        return parse.order_book(symbol, raw)

    # -- streams (ccxt.pro) ----------------------------------------------------------------
    async def watch_ohlcv(self, symbol: str, timeframe: str) -> list[t.StreamCandle]:
        """Next update of a candle stream: the recent rows ccxt.pro holds, oldest first.

        ``closed`` is True for a candle the exchange marked final (Binance's kline flag),
        None when the exchange does not say. No retry here: the caller owns reconnection
        and the REST catch-up.
        """
        rows = await self.call(self._ex.watch_ohlcv, symbol, timeframe, retry=False,
                              stream=True)
        closed: set[int] = set()
        marks = self._ex.__dict__.get("_tradeflow_closed")
        if marks:
            market_id = self._ex.market(symbol)["id"]
            closed = set(marks.get((market_id, self._ex.timeframes.get(timeframe)), ()))
        return [
            t.StreamCandle(symbol, timeframe, int(r[0]), float(r[1]), float(r[2]), float(r[3]),
                           float(r[4]), float(r[5]), True if int(r[0]) in closed else None)
            for r in rows
        ]

    async def reset_streams(self) -> None:
        """Close every websocket so the next watch call connects afresh (a silent stream)."""
        try:
            await self._ex.close_ws_clients()
        except Exception as exc:  # a half-dead socket may fail to close; it is dropped anyway
            log.debug("closing websockets failed: %s", exc)

    async def watch_trades(self, symbol: str) -> list[t.Trade]:
        rows = await self.call(self._ex.watch_trades, symbol, retry=False,
                              stream=True)
        return [parse.trade(r) for r in rows]

    async def watch_ticker(self, symbol: str) -> t.Ticker:
        raw = await self.call(self._ex.watch_ticker, symbol, retry=False,
                              stream=True)
        return parse.ticker(raw)

    # -- private ---------------------------------------------------------------------------
    async def fetch_balance(self) -> t.Balance:
        raw = await self.call(self._ex.fetch_balance)
        keep = lambda d: {k: float(v) for k, v in (d or {}).items() if v}  # noqa: E731
        return t.Balance(free=keep(raw.get("free")), used=keep(raw.get("used")),
                         total=keep(raw.get("total")))

    async def create_order(self, symbol: str, side: str, order_type: str, amount: float,
                           price: float | None = None, *, client_order_id: str) -> t.Order:
        """A plain market or GTC limit order (see :meth:`place_order`)."""
        return await self.place_order(symbol, OrderRequest(side, amount, order_type, price),
                                      client_order_id=client_order_id)

    async def place_order(self, symbol: str, request: OrderRequest, *,
                          client_order_id: str) -> t.Order:
        """Place a prepared order; not retried: after a failure look it up by client id."""
        order_type, price, params = ccxt_arguments(request)
        params["clientOrderId"] = venue_client_id(self.id, client_order_id)  # resend: one order
        raw = await self.call(self._ex.create_order, symbol, order_type, request.side,
                              request.amount, price, params, retry=False)
        if raw.get("status") is None and raw.get("id"):  # OKX acknowledges only: ask for fills
            raw = await self.call(self._ex.fetch_order, raw["id"], symbol)
        return parse.order(raw, client_order_id)

    async def cancel_order(self, order_id: str, symbol: str) -> t.Order:
        raw = await self.call(self._ex.cancel_order, order_id, symbol)
        return parse.order(raw)

    async def fetch_order(self, symbol: str, order_id: str | None = None, *,
                          client_order_id: str | None = None) -> t.Order:
        """Look an order up by exchange id or by our client order id."""
        params: dict[str, Any] = {}
        if order_id is None:
            if client_order_id is None:
                raise ValueError("fetch_order needs order_id or client_order_id")
            params = {"clientOrderId": venue_client_id(self.id, client_order_id)}
        raw = await self.call(self._ex.fetch_order, order_id, symbol, params)
        return parse.order(raw, client_order_id)

    async def fetch_open_orders(self, symbol: str | None = None) -> list[t.Order]:
        raw = await self.call(self._ex.fetch_open_orders, symbol)
        return [parse.order(o) for o in raw]

    async def fetch_my_trades(self, symbol: str, since: int | None = None,
                              limit: int | None = None) -> list[t.Trade]:
        raw = await self.call(self._ex.fetch_my_trades, symbol, since, limit)
        return [parse.trade(r) for r in raw]


# -- conversions ---------------------------------------------------------------------------
