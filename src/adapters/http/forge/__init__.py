"""The `forge` transport's HTTP routes (SPEC §8.2)."""
