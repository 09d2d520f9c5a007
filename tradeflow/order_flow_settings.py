"""Settings of the order-flow recorder and of how long the store keeps order flow.

Part of the profile (``recorder:`` and ``store.retention``); :mod:`tradeflow.config` composes
them into :class:`tradeflow.config.Settings`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from tradeflow.config_files import Frozen
from tradeflow.symbols import Symbols


class RetentionSettings(Frozen):
    """How long the recorder keeps order flow, per table, in days (null: forever)."""

    trades_days: float | None = Field(None, gt=0, description="trades; null keeps every one")
    book_snapshots_days: float | None = Field(30.0, gt=0, description="order-book snapshots")
    tickers_days: float | None = Field(7.0, gt=0, description="tickers and book tickers")


class RecorderSettings(Frozen):
    """The order-flow recorder (`tradeflow record`): trades, book snapshots, tickers."""

    symbols: Symbols | None = Field(None, description="symbols to record; null: the profile's")
    aggregated_trades: bool = Field(
        True, description="record aggregated trades (Binance aggTrades: public history, so "
        "any hole is refilled over REST); false: individual trades (history needs an API key)")
    order_book: bool = Field(True, description="keep the local order book (its snapshots)")
    book_updates_ms: Literal[100, 1000] = Field(
        100, description="diff stream of the local book: every 100 ms or every 1000 ms (fewer, "
        "merged diffs: less CPU, the book up to a second old)")
    book_depth: int = Field(20, ge=1, le=1000, description="levels a side kept per snapshot")
    book_interval_s: float | None = Field(
        10.0, gt=0, description="a book snapshot every N seconds of exchange time; null: none")
    close_timeframe: str | None = Field(
        "1m", description="a book snapshot at every close of this timeframe; null: none")
    tickers: bool = Field(True, description="record the 24h ticker stream (bid/ask/last)")
    flush_s: float = Field(
        5.0, gt=0, description="seconds between writes to the store (each opens the file for "
        "one transaction: fewer, larger writes cost less CPU; a crash loses nothing, the "
        "restart refetches what was not written over REST)")
    batch_s: float = Field(
        1.0, ge=0, description="pause between reads of a busy trade stream (fewer, larger "
        "batches; the stream keeps up to 20,000 trades meanwhile)")
    reconnect_max_s: float = Field(30.0, gt=0, description="cap of the reconnect backoff")
    status_s: float = Field(5.0, gt=0, description="seconds between status file updates")
    metrics_port: int = Field(9109, ge=0, le=65535, description="Prometheus; 0 = off")

    @field_validator("close_timeframe")
    @classmethod
    def _close_timeframe_ok(cls, value: str | None) -> str | None:
        from tradeflow import timeframes

        if value is not None:
            timeframes.parse(value)
        return value
