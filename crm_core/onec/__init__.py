"""Two-way sync of counterparties with 1C:Enterprise: what the sync decides, not how it talks.

The connector (``connectors.onec``) moves data over OData and implements ``port.CounterpartyPort``;
everything here works on plain records, so the rules can be tested without a 1C server.
"""
