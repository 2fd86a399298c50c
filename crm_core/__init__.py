"""The domain: clients, contacts, users and the rules that match calls and mail to them.

Imports no web framework and no connector, so every rule can be tested with plain data.
"""
