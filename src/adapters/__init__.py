"""Everything that touches the outside world: HTTP, SQLite, outbound clients, CLI, config."""
