"""The hub service: configuration, wiring, the web API and pages, and the CLI."""

__version__ = "0.1.0"
