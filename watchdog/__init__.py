"""watchdog: an event-sourced alerting daemon for US dollar funding-market stress.

Not the PyPI `watchdog` file-events library: this distribution is `liquidity-watchdog`.
"""
__version__ = "0.1.0"
__all__ = ["__version__"]
