"""Data validation runs: the Great Expectations suite, statistics, reports and Data Docs.

The rules and pandera schemas they check live in :mod:`tradeflow.contracts`; candles that
break a hard rule go to the store's quarantine (:mod:`tradeflow.market.quarantine`); soft
rules (statistical oddities) are warnings in the report. Nothing is repaired in place.
"""
