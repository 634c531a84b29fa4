"""Comms: WhatsApp-style conversations: phone numbers, providers and their webhooks (no database
or web framework here; the hub and the edge adapt it)."""
