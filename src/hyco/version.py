"""The package version, below every layer (the data files record it)."""

__version__ = "0.1.0"
