"""dolphin: a low-latency, fail-safe crypto trading system."""

__version__ = "0.1.0"
__all__ = ["__version__"]
