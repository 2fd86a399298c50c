"""The hub's HTTP face: JSON API, pages, health and metrics, all on one aiohttp app."""
