"""Order-flow features: true VWAP against plain numpy over the trades, look-ahead, NaN."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from models.estimators import make_estimator
from models.features import FeaturePipeline
from models.order_flow import attach
from models.pyfunc import CandleModel
from tests.unit.models.order_flow_support import Tape, make_tape
from tests.unit.models.test_features_support import DAY_MS, MINUTE_MS, T0
from tradeflow.backtest.lookahead import check_lookahead

ALL = [
    {"name": "trade_vwap", "minutes": 30, "stds": 1.5, "session": True, "anchor_minute": 810},
    {"name": "taker_flow", "window": 5, "baseline": 30},
    {"name": "trade_intensity", "window": 3, "baseline": 20},
    {"name": "book_imbalance", "levels": [1, 3, 10]},
    {"name": "book_spread"},
]


@pytest.fixture(scope="module")
def tape() -> Tape:
    # 90 minutes of the previous day, one whole day, 3 hours of the next.
    return make_tape(90 + 1440 + 180, seed=11)


def features(specs: list[Any], tape: Tape, candles: pd.DataFrame | None = None
             ) -> pd.DataFrame:
    """The pipeline on ``candles`` with what was recorded by their last close."""
    pipeline = FeaturePipeline.from_specs(specs, "1m")
    frame = tape.candles if candles is None else candles
    last_close = int(frame["open_time"].iloc[-1]) + MINUTE_MS
    trades = tape.trades[tape.trades["ts"] < last_close]
    snaps = tape.snapshots[tape.snapshots["ts"] <= last_close]
    with_flow = attach(frame, "1m", pipeline.inputs, trades, snaps, covered=(None, last_close))
    return pipeline.compute(with_flow)


def numpy_vwap(trades: pd.DataFrame, lo: int, hi: int) -> tuple[float, float]:
    """VWAP and volume-weighted std of the trades with lo <= ts < hi (two-pass)."""
    sel = (trades["ts"].to_numpy() >= lo) & (trades["ts"].to_numpy() < hi)
    p, q = trades["price"].to_numpy()[sel], trades["amount"].to_numpy()[sel]
    vwap = np.sum(p * q) / np.sum(q)
    return vwap, np.sqrt(np.sum(q * (p - vwap) ** 2) / np.sum(q))


def test_true_vwap_and_bands_match_plain_numpy_over_the_trades(tape: Tape) -> None:
    out = features([ALL[0]], tape)
    t = tape.candles["open_time"].to_numpy()
    close = tape.candles["close"].to_numpy()
    first_day = T0  # the tape opens 90 minutes before it: that day is partial
    rows = np.linspace(40, len(t) - 1, 60).astype(int)
    checked = {"30m": 0, "session": 0, "anchor810": 0}
    for i in rows:
        end = t[i] + MINUTE_MS
        anchor = 810 * MINUTE_MS
        starts = {"30m": end - 30 * MINUTE_MS, "session": t[i] // DAY_MS * DAY_MS,
                  "anchor810": (t[i] - anchor) // DAY_MS * DAY_MS + anchor}
        for key, lo in starts.items():
            dist = out[f"of_vwap_dist_{key}"].iloc[i]
            if key != "30m" and lo < first_day:
                assert np.isnan(dist), (key, i)  # the data enters that session mid-way
                continue
            vwap, std = numpy_vwap(tape.trades, lo, end)
            assert dist == pytest.approx(close[i] / vwap - 1, abs=1e-12)
            assert out[f"of_vwap_upper_dist_{key}_1p5"].iloc[i] == pytest.approx(
                close[i] / (vwap + 1.5 * std) - 1, abs=1e-11)
            assert out[f"of_vwap_lower_dist_{key}_1p5"].iloc[i] == pytest.approx(
                close[i] / (vwap - 1.5 * std) - 1, abs=1e-11)
            checked[key] += 1
    assert min(checked.values()) >= 10


def test_no_order_flow_feature_looks_ahead(tape: Tape) -> None:
    pipeline = FeaturePipeline.from_specs(ALL, "1m")
    result = check_lookahead(tape.candles, lambda c: features(ALL, tape, c), samples=25,
                             start=90 + 30)
    assert set(result.columns) == set(pipeline.columns)
    assert result.ok, result.report()


def test_the_look_ahead_check_catches_order_flow_from_after_the_close(tape: Tape) -> None:
    # A leaky aggregation: each candle gets the trades of the next one. Histories cut at a
    # candle hold no trade after its close, so the check must see the difference.
    specs = [{"name": "trade_vwap", "minutes": 5, "session": False}]
    pipeline = FeaturePipeline.from_specs(specs, "1m")

    def leaky(c: pd.DataFrame) -> pd.DataFrame:
        last_close = int(c["open_time"].iloc[-1]) + MINUTE_MS
        trades = tape.trades[tape.trades["ts"] < last_close]
        shifted = c.assign(open_time=c["open_time"] + MINUTE_MS)
        flow = attach(shifted, "1m", pipeline.inputs, trades, None, covered=(None, None))
        return pipeline.compute(flow.assign(open_time=c["open_time"].to_numpy()))

    result = check_lookahead(tape.candles, leaky, samples=10, start=100)
    assert not result.ok and "of_vwap_dist_5m" in result.biased_columns


def test_missing_order_flow_is_nan_and_a_quiet_recorded_window_is_not(tape: Tape) -> None:
    pipeline = FeaturePipeline.from_specs(ALL, "1m")
    candles = tape.candles
    t = candles["open_time"].to_numpy()
    ts = tape.trades["ts"]
    # Trades recorded from row 600 on, with a hole in the ids over rows 900..920; no book
    # after row 1200.
    hole = (ts >= t[900]) & (ts < t[920] + 30_000)
    trades = tape.trades[(ts >= t[600]) & ~hole]
    snaps = tape.snapshots[tape.snapshots["ts"] <= t[1200]]
    out = pipeline.compute(attach(candles, "1m", pipeline.inputs, trades, snaps,
                                  covered=(int(t[600]), None)))
    book_cols = [c for c in out.columns if c.startswith(("of_imbalance", "of_spread",
                                                         "of_micro"))]
    trade_cols = [c for c in out.columns if c not in book_cols]
    assert out.loc[:599, trade_cols].isna().all().all()
    assert out.loc[630:898, "of_vwap_dist_30m"].notna().all()
    # The candle before the hole is missing too: the lost ids may have traded in it.
    assert out.loc[899:920, "of_buy_ratio_5"].isna().all()
    assert out.loc[926:, "of_buy_ratio_5"].notna().all()
    # The session VWAP stays missing for the rest of the day with the hole, then recovers.
    assert out.loc[899:1529, "of_vwap_dist_session"].isna().all()
    assert out.loc[1530:, "of_vwap_dist_session"].notna().all()
    assert out.loc[1200:, book_cols].isna().all().all()
    assert out.loc[:1199, book_cols].notna().all().all()
    # A recorded minute without a trade is data, not a hole: the 1-minute window has no VWAP
    # to be away from (0) and the buy ratio of a window without trades is neutral (0.5).
    quiet = (ts >= t[1000]) & (ts < t[1000] + MINUTE_MS)
    recorded = tape.trades[(ts >= t[600]) & ~quiet].drop(columns="id")
    one = FeaturePipeline.from_specs([{"name": "trade_vwap", "minutes": 1, "session": False},
                                      {"name": "taker_flow", "window": 1, "baseline": 1}])
    out = one.compute(attach(candles, "1m", one.inputs, recorded, None,
                             covered=(int(t[600]), None)))
    assert quiet.any()
    assert out.loc[1000, "of_vwap_dist_1m"] == 0.0
    assert out.loc[1000, "of_buy_ratio_1"] == 0.5
    assert np.isnan(out.loc[599, "of_vwap_dist_1m"])
    assert np.isfinite(out.loc[600:, "of_vwap_dist_1m"]).all()


def test_book_features_by_hand() -> None:
    candles = pd.DataFrame({"open_time": [T0], "open": [100.0], "high": [101.0],
                            "low": [99.0], "close": [100.0], "volume": [1.0]})
    snaps = pd.DataFrame({"ts": [T0 + MINUTE_MS], "bid_price": [np.array([99.0, 98.0])],
                          "bid_amount": [np.array([3.0, 1.0])],
                          "ask_price": [np.array([101.0, 102.0, 103.0])],
                          "ask_amount": [np.array([1.0, 1.0, 2.0])]})
    pipeline = FeaturePipeline.from_specs(
        [{"name": "book_imbalance", "levels": [1, 3]}, "book_spread"])
    out = pipeline.compute(attach(candles, "1m", pipeline.inputs, None, snaps)).iloc[0]
    assert out["of_imbalance_1"] == pytest.approx((3 - 1) / (3 + 1))
    assert out["of_imbalance_3"] == pytest.approx((4 - 4) / 8)  # a missing bid level holds 0
    assert out["of_spread_bps"] == pytest.approx(2 / 100 * 1e4)
    micro = (99 * 1 + 101 * 3) / 4
    assert out["of_microprice_bps"] == pytest.approx((micro / 100 - 1) * 1e4)


@pytest.mark.parametrize(("spec", "message"), [
    ({"name": "trade_vwap", "minutes": 90}, "multiple of the timeframe 1h"),
    ({"name": "trade_vwap", "anchor_minute": 1500}, "'anchor_minute' must be below 1440"),
    ({"name": "book_imbalance", "levels": [11]}, "at most 10"),
    ({"name": "taker_flow", "window": 10, "baseline": 5}, "'baseline' must be >= window"),
    ({"name": "higher_timeframe", "timeframe": "4h", "features": ["book_spread"]},
     "cannot include the order-flow feature 'book_spread'"),
])
def test_bad_parameters_say_what_is_allowed(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FeaturePipeline.from_specs([spec], "1h")


def test_the_model_input_names_the_order_flow_columns_it_needs(tape: Tape) -> None:
    pipeline = FeaturePipeline.from_specs(["book_spread", {"name": "returns"}], "1m")
    assert pipeline.inputs == ("book_bid_px", "book_ask_px", "book_bid_qty_1", "book_ask_qty_1")
    model = CandleModel(pipeline, {"*": make_estimator("flat", pipeline.columns)})
    assert model.input_columns[-4:] == pipeline.inputs
    with pytest.raises(ValueError, match="book_bid_px"):
        pipeline.compute(tape.candles)
    plain = FeaturePipeline.from_specs(["returns"], "1m")
    assert plain.inputs == ()
    restored = FeaturePipeline.__new__(FeaturePipeline)
    state = dict(pipeline.__dict__)
    del state["inputs"]  # a model pickled before order-flow inputs existed
    restored.__setstate__(state)
    assert restored.inputs == pipeline.inputs


def test_a_model_with_order_flow_features_serves_frames_and_trader_windows(tape: Tape) -> None:
    specs = [{"name": "returns", "horizons": [1, 5]}, {"name": "taker_flow", "baseline": 20},
             "book_spread"]
    pipeline = FeaturePipeline.from_specs(specs, "1m")
    candles = attach(tape.candles, "1m", pipeline.inputs, tape.trades, tape.snapshots)
    feats = pipeline.compute(candles)
    ok = np.isfinite(feats.to_numpy()).all(axis=1)
    label = (candles["close"].shift(-1) > candles["close"]).to_numpy(dtype=float)
    est = make_estimator("logistic", pipeline.columns).fit(feats[ok].iloc[:-1],
                                                           label[ok][:-1])
    model = CandleModel(pipeline, {"*": est})
    frame = candles.assign(symbol="BTC/USDT")
    out = model.predict_frame(frame)
    assert np.isfinite(out["probability"].iloc[model.warmup + 5:]).all()
    window = {c: candles[c].to_numpy()[-(model.warmup + 10):]
              for c in ("open_time", "open", "high", "low", "close", "volume", *pipeline.inputs)}
    last = model.predict_last(window, "BTC/USDT")
    assert last == pytest.approx(out["probability"].iloc[-1], rel=1e-12)
    assert model.predict_many({"BTC/USDT": window})["BTC/USDT"] == pytest.approx(last)
    # Order flow missing at the last candle: no probability, never a guess on zeros.
    window["book_bid_px"] = window["book_bid_px"].copy()
    window["book_bid_px"][-1] = np.nan
    assert np.isnan(model.predict_last(window, "BTC/USDT"))
    with pytest.raises(ValueError, match="book_ask_px"):
        model.predict_frame(frame.drop(columns=["book_ask_px"]))


@pytest.mark.filterwarnings("ignore:Hint. Inferred schema contains integer:UserWarning")
def test_a_signature_may_carry_order_flow_inputs_and_nothing_else() -> None:
    from mlflow.models import infer_signature

    from models.pyfunc import signature_problems

    frame = pd.DataFrame({"symbol": ["BTC/USDT"], "open_time": [T0], "open": [1.0],
                          "high": [1.0], "low": [1.0], "close": [1.0], "volume": [1.0],
                          "trade_qty": [np.nan], "book_bid_px": [1.0]})
    out = frame[["symbol", "open_time"]].assign(probability=0.5)
    assert signature_problems(infer_signature(frame, out)) == []
    odd = infer_signature(frame.assign(vwap=1.0), out)
    assert signature_problems(odd) == ["extra column(s) vwap"]
