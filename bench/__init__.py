"""The benchmark command (SPEC §7): `scripts/bench`."""
