"""Data validation: pandera contracts at the borders, a Great Expectations suite, quarantine.

Hard rules (a candle that cannot be a real market print) send rows to the
``candles_quarantine`` table; soft rules (statistical oddities) are warnings in the report.
Nothing is repaired in place.
"""
