"""Find secrets in clear in logs, response bodies and database files (SPEC §4.2, §A).

Secrets are given by label, so a finding names *which* secret leaked *where* without
printing the secret itself into the test report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import attrs

MIN_SECRET_CHARS = 16  # shorter strings would match by chance in binary files


@attrs.frozen
class Leak:
    secret: str  # the label, never the value
    place: str


def find_leaks(secrets: Mapping[str, str], places: Mapping[str, bytes]) -> list[Leak]:
    """Every (secret, place) where the secret's UTF-8 bytes occur in the place's bytes."""
    leaks: list[Leak] = []
    for label, value in sorted(secrets.items()):
        if len(value) < MIN_SECRET_CHARS:
            raise ValueError(f"secret {label!r} is too short to scan for reliably")
        needle = value.encode()
        leaks.extend(Leak(label, place) for place, blob in places.items() if needle in blob)
    return leaks


def database_files(directory: Path, *, exclude: Iterable[Path] = ()) -> dict[str, bytes]:
    """The SQLite files of a directory (`*.db`, `-wal`, `-shm`, `.sqlite`), key files left out."""
    skipped = {path.resolve() for path in exclude}
    found: dict[str, bytes] = {}
    for path in sorted(directory.iterdir()):
        name = path.name
        is_database = name.endswith((".db", ".sqlite", "-wal", "-shm", "-journal"))
        if path.is_file() and is_database and path.resolve() not in skipped:
            found[str(path)] = path.read_bytes()
    return found
