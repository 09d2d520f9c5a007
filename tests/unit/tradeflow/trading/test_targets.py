"""Probability-to-target hysteresis, sizing and slippage: vectorised vs one-step, no look-ahead."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from tradeflow.strategy import SignalSettings, SizingSettings, SlippageSettings
from tradeflow.trading.costs import next_fill_slippage, slippage_fractions
from tradeflow.trading.sizing import (
    candles_per_day,
    sizing_fraction_now,
    sizing_fractions,
)
from tradeflow.trading.targets import SignalState, next_signal, targets_from_probabilities

NAN = float("nan")


def test_long_hysteresis_enters_at_threshold_and_exits_below() -> None:
    s = SignalSettings(enter_above=0.6, exit_below=0.5)
    p = [0.55, 0.6, 0.52, 0.5, 0.49, 0.59, NAN, 0.61, NAN, 0.2]
    assert targets_from_probabilities(np.array(p), s, 0.25).tolist() == [
        0, 0.25, 0.25, 0.25, 0, 0, 0, 0.25, 0.25, 0]


def test_short_is_symmetric_and_flips_directly() -> None:
    s = SignalSettings(enter_above=0.6, exit_below=0.55, allow_short=True)
    # Short at <= 0.4, cover at > 0.45; a long whose exit fires at p <= 0.4 flips short.
    p = [0.5, 0.4, 0.44, 0.46, 0.65, 0.3, 0.62]
    assert targets_from_probabilities(np.array(p), s, 1.0).tolist() == [0, -1, -1, 0, 1, -1, 1]
    no_short = SignalSettings(enter_above=0.6, exit_below=0.55)
    assert targets_from_probabilities(np.array(p), no_short, 1.0).min() == 0.0


def test_fraction_is_locked_at_entry_and_entry_needs_a_positive_fraction() -> None:
    s = SignalSettings(enter_above=0.6, exit_below=0.5)
    p = np.array([0.7, 0.7, 0.7, 0.4, 0.7, 0.7])
    fractions = np.array([0.0, 0.3, 0.2, 0.1, 0.5, 0.9])
    assert targets_from_probabilities(p, s, fractions).tolist() == [0, 0.3, 0.3, 0, 0.5, 0.5]


def test_one_step_signal_matches_vectorised() -> None:
    rng = np.random.default_rng(0)
    p = rng.random(500)
    p[rng.random(500) < 0.05] = NAN
    fractions = rng.random(500)
    s = SignalSettings(enter_above=0.58, exit_below=0.47, allow_short=True)
    vector = targets_from_probabilities(p, s, fractions)
    state = SignalState()
    for i in range(500):
        state = next_signal(state, p[i], s, fractions[i])
        assert state.target == vector[i]


def test_volatility_target_sizing_hand_computed() -> None:
    closes = np.array([100, 101, 99, 102, 101.5, 103], dtype=float)
    settings = SizingSettings(kind="volatility_target", fraction=0.8, target_volatility=0.02,
                              volatility_window=3)
    per_day = candles_per_day("1h")
    assert per_day == 24
    out = sizing_fractions(closes, settings, per_day)
    assert out[:3].tolist() == [0, 0, 0]
    for t in (3, 4, 5):
        returns = [closes[i] / closes[i - 1] - 1 for i in range(t - 2, t + 1)]
        expected = min(0.8, 0.02 / (statistics.stdev(returns) * math.sqrt(24)))
        assert out[t] == pytest.approx(expected, rel=1e-12)
    calm = sizing_fractions(np.linspace(100, 100.3, 10), settings, per_day)
    assert calm[-1] == 0.8
    fixed = SizingSettings(kind="fixed_fraction", fraction=0.3)
    assert sizing_fractions(closes, fixed, per_day).tolist() == [0.3] * 6


def test_sizing_one_step_matches_and_ignores_the_future() -> None:
    rng = np.random.default_rng(1)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 300)))
    settings = SizingSettings(kind="volatility_target", fraction=1, target_volatility=0.05,
                              volatility_window=20)
    vector = sizing_fractions(closes, settings, 1440)
    for t in range(300):
        assert sizing_fraction_now(closes[: t + 1], settings, 1440) == vector[t]
    changed = closes.copy()
    changed[150:] *= 1.5
    assert np.array_equal(sizing_fractions(changed, settings, 1440)[:150], vector[:150])


def test_volatility_slippage_floor_window_and_one_step() -> None:
    rng = np.random.default_rng(2)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 200)))
    settings = SlippageSettings(kind="volatility", bps=5, volatility_multiplier=0.3,
                                volatility_window=10)
    slip = slippage_fractions(closes, settings)
    assert slip[:11].tolist() == [5e-4] * 11
    returns = closes[1:] / closes[:-1] - 1
    assert slip[50] == pytest.approx(max(5e-4, 0.3 * np.std(returns[39:49], ddof=1)), rel=1e-12)
    for i in range(200):
        assert next_fill_slippage(closes[:i], settings) == slip[i]
    changed = closes.copy()
    changed[50:] *= 2
    assert np.array_equal(slippage_fractions(changed, settings)[:51], slip[:51])
    fixed = slippage_fractions(closes, SlippageSettings(kind="fixed", bps=3))
    assert fixed.tolist() == pytest.approx([3e-4] * 200)
