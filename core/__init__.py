"""Identities, settings, errors and auth primitives shared by every part (no I/O frameworks)."""
