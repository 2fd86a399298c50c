"""Tracked mailings: segments, campaigns, recipients, links, tracking hits, bounces, suppressions."""
