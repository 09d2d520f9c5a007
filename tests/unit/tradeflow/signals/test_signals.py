"""Signal plugins: the combiners' truth tables, and the same strategy code read on the newest
row of a trailing window (live) as on every row at once (backtest)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradeflow.config_files import ConfigError
from tradeflow.signals.builder import build_strategy
from tradeflow.signals.combiners import unanimous, vote, weighted
from tradeflow.strategy import load_strategy

REPO = Path(__file__).resolve().parents[4]
NAN = np.nan


def test_vote_majority_and_k_of_n() -> None:
    # three sources (rows) x five candles (columns); NaN abstains
    d = np.array([[1, 1, -1, 1, NAN],
                  [1, -1, -1, 0, NAN],
                  [-1, 0, 1, NAN, NAN]], dtype=float)
    assert vote(d).tolist() == [1.0, 0.0, -1.0, 0.0, 0.0]
    assert vote(d, min_votes=1).tolist() == [1.0, 0.0, -1.0, 1.0, 0.0]
    assert vote(d, min_votes=3).tolist() == [0.0, 0.0, 0.0, 0.0, 0.0]


def test_unanimous_needs_every_source_and_an_abstention_blocks() -> None:
    d = np.array([[1, 1, -1, 1], [1, 0, -1, NAN]], dtype=float)
    assert unanimous(d).tolist() == [1.0, 0.0, -1.0, 0.0]


def test_weighted_score_against_threshold() -> None:
    d = np.array([[1, 1, -1], [-1, 1, NAN]], dtype=float)
    c = np.array([[1.0, 0.5, 1.0], [1.0, 1.0, NAN]])
    w = np.array([3.0, 1.0])
    # scores: (3 - 1)/4 = 0.5, (1.5 + 1)/4 = 0.625, -3/3 = -1
    assert weighted(d, c, w, 0.5).tolist() == [1.0, 1.0, -1.0]
    assert weighted(d, c, w, 0.6).tolist() == [0.0, 1.0, -1.0]


def random_walk(n: int, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    open_ = np.r_[close[0], close[:-1]]
    spread = np.abs(rng.normal(0, 0.001, n)) * close
    return pd.DataFrame({
        "open_time": 1_767_225_600_000 + 60_000 * np.arange(n, dtype=np.int64),
        "open": open_, "high": np.maximum(open_, close) + spread,
        "low": np.minimum(open_, close) - spread, "close": close,
        "volume": rng.uniform(1, 10, n)})


def test_rsi_meanrev_reads_the_same_on_a_live_window_as_over_all_rows() -> None:
    strategy = build_strategy(load_strategy(REPO / "config" / "strategies" / "rsi_meanrev.yaml"))
    candles = random_walk(6_000)
    full = strategy.probabilities(candles)
    decided = np.flatnonzero(np.isfinite(full))
    assert len(decided) > 5_000
    assert {0.0, 1.0} <= set(np.unique(full[decided]))  # it does buy and sell
    window = strategy.warmup + 15 * 40  # enough closed 15m candles for the trend source
    rows = decided[decided >= window][::97]
    live = [strategy.predict_last(candles.iloc[r - window + 1: r + 1].reset_index(drop=True))
            for r in rows]
    assert np.array_equal(np.asarray(live), full[rows])
    why = strategy.explain(candles)
    assert [s.source for s in why] == ["rsi", "trend_15m", "aggregate"]


def test_a_bad_source_is_one_config_line(tmp_path: Path) -> None:
    text = (REPO / "config" / "strategies" / "rsi_meanrev.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("buy_below: 25", "buy_below: 90"))
    with pytest.raises(ConfigError) as err:
        build_strategy(load_strategy(bad), source=str(bad))
    assert "sources[0]" in str(err.value) and "buy_below" in str(err.value)
