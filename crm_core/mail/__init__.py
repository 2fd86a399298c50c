"""Correspondence: e-mail received and sent, filed against clients, threaded, deduplicated.

Connectors fetch and parse mail (``connectors/imap``, ``connectors/mail``); this package
decides where a message belongs and stores it.
"""
