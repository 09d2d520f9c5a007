"""Data contracts: the rules candles are held to and the pandera schemas of candles and
predictions, below both the market store and validation."""
