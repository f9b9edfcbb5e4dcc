"""crawler: an asynchronous web crawler for the command line."""

__version__ = "0.1.0"
