"""A synthetic trade tape, its 1m candles and book snapshots, for the order-flow tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tests.unit.models.test_features_support import MINUTE_MS, T0


@dataclass(frozen=True)
class Tape:
    trades: pd.DataFrame  # id, ts, price, amount, side
    candles: pd.DataFrame  # open_time, OHLCV: exact aggregates of the trades
    snapshots: pd.DataFrame  # ts, bid_price, bid_amount, ask_price, ask_amount


def make_tape(minutes: int, *, per_minute: float = 12.0, seed: int = 0,
              start_ms: int = T0 - 90 * MINUTE_MS, snapshot_every_ms: int = 20_000) -> Tape:
    """Trades at random times (several per millisecond sometimes), a random-walk price."""
    rng = np.random.default_rng(seed)
    n = int(minutes * per_minute)
    ts = np.sort(start_ms + rng.integers(0, minutes * MINUTE_MS, n)).astype(np.int64)
    price = 30_000.0 * np.exp(np.cumsum(rng.normal(0.0, 2e-4, n)))
    amount = rng.lognormal(-3.0, 1.0, n)
    side = np.where(rng.random(n) < 0.52, "buy", "sell")
    trades = pd.DataFrame({"id": np.arange(1, n + 1, dtype=np.int64), "ts": ts, "price": price,
                           "amount": amount, "side": side})
    minute = (ts - start_ms) // MINUTE_MS
    grouped = pd.DataFrame({"m": minute, "price": price, "amount": amount}).groupby("m")
    agg = grouped.agg(open=("price", "first"), high=("price", "max"), low=("price", "min"),
                      close=("price", "last"), volume=("amount", "sum"))
    candles = agg.reindex(np.arange(minutes))
    candles["close"] = candles["close"].ffill().fillna(30_000.0)
    for col in ("open", "high", "low"):
        candles[col] = candles[col].fillna(candles["close"])
    candles["volume"] = candles["volume"].fillna(0.0)
    candles.insert(0, "open_time", start_ms + MINUTE_MS * np.arange(minutes, dtype=np.int64))
    candles = candles.reset_index(drop=True)
    snap_ts = np.arange(start_ms, start_ms + minutes * MINUTE_MS + 1, snapshot_every_ms,
                        dtype=np.int64)
    mids = np.interp(snap_ts, ts, price)
    levels = np.arange(1, 11)
    snapshots = pd.DataFrame({
        "ts": snap_ts,
        "bid_price": [m - 0.5 * levels for m in mids],
        "bid_amount": [rng.lognormal(0.0, 0.5, 10) for _ in mids],
        "ask_price": [m + 0.5 * levels for m in mids],
        "ask_amount": [rng.lognormal(0.0, 0.5, 10) for _ in mids],
    })
    return Tape(trades, candles, snapshots)
