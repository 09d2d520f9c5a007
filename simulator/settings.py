"""Settings of the exchange simulator: market model, clock and injected faults."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,12}/[A-Z0-9]{2,12}$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FaultSettings(_Frozen):
    """Faults the simulator injects; all off by default. Also settable at /admin/faults.

    The "every N" REST faults share one counter of ``/api`` requests and fire when it is a
    multiple of N; websocket faults count the data messages of each connection.
    """

    # REST
    rate_limit_every: int = Field(
        default=0, ge=0, description="answer 429 on every Nth REST request"
    )
    retry_after_s: float = Field(
        default=1.0, ge=0, description="Retry-After header sent with 429/418"
    )
    ban_after_violations: int = Field(
        default=0, ge=0, description="after N ignored 429s within retry_after, answer 418"
    )
    error_5xx_every: int = Field(default=0, ge=0, description="answer 502/503 on every Nth request")
    timeout_every: int = Field(default=0, ge=0, description="stall every Nth request past timeouts")
    timeout_s: float = Field(default=30.0, ge=0, description="how long a stalled request hangs")
    truncate_every: int = Field(
        default=0, ge=0, description="cut the JSON body of every Nth request"
    )
    truncate_mode: Literal["body", "connection"] = Field(
        default="body",
        description="body: a complete HTTP response whose JSON is cut in half; "
        "connection: announce the full length, send half, then drop the connection",
    )
    latency_ms: float = Field(default=0.0, ge=0, description="latency added to every REST request")
    weight_limit_1m: int = Field(
        default=0, ge=0, description="answer 429 once the used weight of a wall minute exceeds this"
    )
    # websocket
    ws_drop_every: int = Field(
        default=0, ge=0, description="close the socket after every N messages"
    )
    ws_duplicate_every: int = Field(default=0, ge=0, description="send every Nth message twice")
    ws_reorder_every: int = Field(
        default=0, ge=0, description="swap every Nth message with the next"
    )
    ws_depth_gap_every: int = Field(
        default=0,
        ge=0,
        description="skip every Nth diff-depth event of a connection (an update-id gap: resync)",
    )
    outages: tuple[tuple[int, int], ...] = Field(
        default=(), description="[[start_ms, end_ms], ...]: windows without any candle (true gaps)"
    )

    @field_validator("outages")
    @classmethod
    def _outages_ok(cls, value: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
        for start, end in value:
            if end <= start:
                raise ValueError(f"outage ({start}, {end}) must end after it starts")
        return value


class MarketSettings(_Frozen):
    """How busy one simulated market is (defaults: a liquid spot market)."""

    liquidity: float = Field(
        default=1.0,
        gt=0,
        le=100,
        description="multiplies trades, volume and book depth; 0.01 makes an illiquid market "
        "with minutes without trades (zero-volume candles at the previous close)",
    )
    quiet_hours: tuple[int, ...] = Field(
        default=(), description="UTC hours with 2% of the usual activity"
    )

    @field_validator("quiet_hours")
    @classmethod
    def _hours_ok(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(not 0 <= h <= 23 for h in value):
            raise ValueError("quiet hours are UTC hours 0-23")
        return value


class SimulatorSettings(_Frozen):
    """The simulated Binance spot venue: a seeded, deterministic market."""

    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)
    seed: int = 42
    symbols: tuple[str, ...] = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
    history_days: float = Field(default=30.0, gt=0, description="days of 1m history before start")
    speed: float = Field(default=1.0, gt=0, description="simulated seconds per wall second")
    signal_strength: float = Field(
        default=0.0, ge=0, description="planted short-horizon predictability; 0 = pure random walk"
    )
    volatility: float = Field(default=0.0012, gt=0, description="typical 1m log-return std")
    start_time_ms: int | None = Field(
        default=None,
        description="simulated 'now' at start (default: the wall clock, minute-aligned)",
    )
    perpetuals: bool = Field(
        default=True,
        description="serve a USDⓈ-M perpetual (/fapi, ccxt's BTC/USDT:USDT) for every "
        "USDT-quoted symbol, on the spot market's price path",
    )
    listing_delays_days: dict[str, float] = Field(
        default_factory=dict, description="symbol -> days after history start it was listed"
    )
    starting_balances: dict[str, float] = Field(
        default_factory=lambda: {"USDT": 100_000.0}, description="balance of every API account"
    )
    api_keys: dict[str, str] = Field(
        default_factory=lambda: {"sim-key": "sim-secret"},
        description="API key -> secret accepted by the signed endpoints",
    )
    okx_passphrase: str = Field(
        default="sim-passphrase", description="OKX API passphrase of every key"
    )
    ws_update_ms: int = Field(
        default=1000,
        ge=10,
        description="wall ms between websocket pushes of open klines and tickers",
    )
    markets: dict[str, MarketSettings] = Field(
        default_factory=dict,
        description="symbol -> liquidity and quiet hours (default: liquid, no quiet hours)",
    )
    open_jump_share: float = Field(
        default=0.35,
        ge=0,
        le=1,
        description="share of candles whose open differs from the previous close",
    )
    book_levels: int = Field(
        default=1000, ge=20, le=5000, description="price levels per side of the order book"
    )
    venues: tuple[Literal["binance", "okx"], ...] = Field(
        default=("binance",),
        description="exchange APIs served, over one market: binance (/api/v3, /ws), "
        "okx (/api/v5, /ws/v5/public and /ws/v5/business)",
    )
    faults: FaultSettings = FaultSettings()

    @field_validator("symbols", "venues", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        return value

    @field_validator("symbols")
    @classmethod
    def _symbols_ok(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for symbol in value:
            if not _SYMBOL_RE.match(symbol):
                raise ValueError(f"symbol {symbol!r} is not BASE/QUOTE in capitals")
        return value

    @field_validator("venues")
    @classmethod
    def _venues_ok(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one venue is needed (binance, okx)")
        return tuple(dict.fromkeys(value))
