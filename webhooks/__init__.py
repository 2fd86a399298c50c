"""Outgoing webhooks (signed, retried, from a durable outbox) and incoming ones.

Uses ``crm_core``'s events; ``crm_core`` never imports this package.
"""
