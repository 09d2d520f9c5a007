"""Trading logic shared by the backtester and the live trader: signals, sizing, exits, risk.

Everything here is pure (no I/O, no clock: time is passed in) and the path-dependent parts are
compiled numba functions that the backtest loop calls directly and the trader calls one
candle at a time through the small Python wrappers, so both produce the same numbers.
"""
