"""The hub's REST API, one router module per concern."""
