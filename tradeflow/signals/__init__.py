"""Strategy plugins: signal sources (technical, ML, order book, user classes), combiners
(vote, weighted, unanimous) and the :class:`~tradeflow.signals.ensemble.SignalStrategy` the
backtester and the trader run. See docs/strategies.md.

Modules: :mod:`.base` (the source interface and ``Signal``), :mod:`.technical`,
:mod:`.orderbook`, :mod:`.combiners`, :mod:`.ensemble`, :mod:`.builder`, :mod:`.settings`.
"""
