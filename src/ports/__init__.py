"""Protocols the core needs from the outside world (SPEC §2)."""
