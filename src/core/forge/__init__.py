"""The pure half of the `forge` transport (SPEC §8.2): the Forge Invocation Token's rules,
the Forge event's mapping onto W2, and the use case that records a verified call."""
