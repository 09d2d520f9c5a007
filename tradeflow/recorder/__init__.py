"""The order-flow recorder: trades, order-book snapshots and tickers streamed into the store.

Its invariant: the stored trade ids of a series have no hole and no repeat, across dropped,
duplicated and reordered messages and a crash of the recorder (writes extend the stored ids
contiguously; whatever the stream missed is fetched over REST by id first).
"""
