"""The Litestar HTTP adapter."""
