"""The trade contract: every rule fails on its own planted fault and passes clean frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tradeflow.contracts.trades import TradesRefused, assert_trades, check_trades

T0 = 1_767_225_600_000


def trades(n: int = 6) -> pd.DataFrame:
    return pd.DataFrame({
        "id": np.arange(1000, 1000 + n, dtype=np.int64),
        "ts": T0 + np.arange(n, dtype=np.int64) * 7,
        "price": np.linspace(100.0, 101.0, n),
        "amount": np.full(n, 0.5),
        "side": ["buy", "sell"] * (n // 2),
    })


def test_a_clean_frame_passes_and_equal_times_are_allowed() -> None:
    frame = trades().assign(ts=T0)  # several trades in one millisecond: one taker order
    assert check_trades(frame).ok
    assert assert_trades(frame) is frame


@pytest.mark.parametrize(("column", "row", "value", "rule"), [
    ("id", 3, 1001, "id_increasing"),
    ("id", 0, -5, "id_positive"),
    ("ts", 4, T0, "time_non_decreasing"),
    ("ts", 0, 1_700_000, "plausible_time"),
    ("price", 2, 0.0, "price_positive"),
    ("price", 2, np.inf, "price_positive"),
    ("amount", 1, -1.0, "amount_positive"),
    ("side", 5, "short", "side_known"),
])
def test_each_rule_names_the_first_failing_trade(column: str, row: int, value: object,
                                                 rule: str) -> None:
    frame = trades()
    frame[column] = frame[column].astype(object) if column == "side" else frame[column]
    frame.loc[row, column] = value
    check = check_trades(frame)
    assert set(check.counts) == {rule}
    assert check.failed_rows.tolist() == [row]
    with pytest.raises(TradesRefused, match=rf"refused 6 trades, nothing written: {rule} 1; "
                                            rf"first: {column}.* of trade id "):
        assert_trades(frame)


def test_missing_values_and_columns_are_structural() -> None:
    frame = trades()
    frame.loc[2, "price"] = np.nan
    assert check_trades(frame).counts == {"not_null": 1}
    check = check_trades(trades().drop(columns="side"))
    assert check.structural and "column_present" in check.counts
    assert check_trades(trades().assign(id=lambda d: d["id"].astype(float))).structural
