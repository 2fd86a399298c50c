"""1C:Enterprise over its standard OData interface (OData v3, JSON): the HTTP client and the
counterparty catalogue as the sync engine's ``CounterpartyPort``."""
