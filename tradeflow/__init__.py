"""tradeflow: crypto data and ML trading platform."""

__version__ = "0.1.0"
