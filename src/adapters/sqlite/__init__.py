"""SQLite storage through sqlite-utils: one connection per process, owned by one thread."""
