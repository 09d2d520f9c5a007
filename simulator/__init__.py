"""A simulated Binance spot exchange that ccxt's own binance classes talk to unchanged.

Public API (import from the submodules; this package imports nothing so that loading
``simulator.settings`` stays cheap):

* ``simulator.settings``: ``SimulatorSettings``, ``FaultSettings``
* ``simulator.server``: ``SimulatorServer`` (async context manager), ``start_in_thread`` ->
  ``SimulatorHandle``
* ``simulator.venue``: ``Venue`` (candles, trades, aggTrades, tickers, book as the servers
  answer them)
* ``simulator.market``: the seeded market model and its planted signal (see its docstring)
* ``simulator.tape`` / ``simulator.trades``: the trades behind every candle
* ``simulator.book``: the order book over time, its update ids and diffs
* ``simulator.filters``: the symbol filters exchangeInfo lists and orders must pass
* ``simulator.cli``: ``add_arguments`` / ``run`` for ``tradeflow sim``
"""
