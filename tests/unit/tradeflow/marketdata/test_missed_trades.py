"""A trades message after a hole in the ids fetches exactly the missing ids over REST."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pandas as pd

from tradeflow.marketdata.streams import Subscription, with_missed_trades


def trades(ids: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"id": ids, "ts": ids, "price": [1.0] * len(ids),
                         "amount": [1.0] * len(ids), "side": ["buy"] * len(ids)})


class Watch:
    """Serves any id range over 'REST' and records what was asked."""

    exchange_id, trades_by_id = "binance", True

    def __init__(self) -> None:
        self.asked: list[tuple[int, int]] = []

    async def missed_trades(self, symbol: str, first: int, last: int
                            ) -> AsyncIterator[pd.DataFrame]:
        self.asked.append((first, last))
        yield trades(list(range(first, last + 1)))


def test_only_a_message_with_a_hole_fetches_the_hole() -> None:
    rng = random.Random(8)
    for _ in range(300):
        last = rng.randrange(0, 50)
        ids = [rng.randrange(last - 3, last + 8) for _ in range(rng.randrange(0, 6))]
        if rng.random() < 0.5:
            ids = list(range(last + 1, last + 1 + rng.randrange(0, 5)))  # the usual message
        sub, watch = Subscription("BTC/USDT", "trades"), Watch()
        sub.cursor.last_id = last
        out = asyncio.run(with_missed_trades(watch, sub, trades(ids)))
        newer = {i for i in ids if i > last}
        missing = sorted(set(range(last + 1, max(newer, default=last))) - newer)
        if missing:
            assert watch.asked == [(missing[0], missing[-1])] and sub.catch_ups == 1
            assert set(out["id"]) >= newer | set(missing)
        else:
            assert watch.asked == [] and out["id"].tolist() == ids
