"""The market-data API: streams per exchange, a columnar buffer, callbacks (docs/market-data.md).

Import from here: :class:`MarketDataManager`, :class:`MarketDataStream`, :class:`MarketBuffer`,
:class:`Update`, :class:`Transition` and :class:`ConnectionState`.
"""

from tradeflow.exchange.types import ConnectionState
from tradeflow.marketdata.buffer import CHANNELS, COLUMNS, MarketBuffer, Price
from tradeflow.marketdata.events import Transition, Update
from tradeflow.marketdata.manager import MarketDataManager
from tradeflow.marketdata.streams import MarketDataStream, SubscriptionStatus

__all__ = [
    "CHANNELS",
    "COLUMNS",
    "ConnectionState",
    "MarketBuffer",
    "MarketDataManager",
    "MarketDataStream",
    "Price",
    "SubscriptionStatus",
    "Transition",
    "Update",
]
