"""§4.3 / §8.2: a token segment is accepted only in its canonical base64url spelling. The
segment reader (`core.connect.tokens._segment`, shared by Connect and Forge) now checks the
alphabet and the last character's unused bits instead of encoding the bytes again
(forgeack, #14); this compares it with the former round trip over many random strings:
the same strings are refused, and the accepted ones decode to the same bytes."""

from __future__ import annotations

import base64
import binascii
import random

import pytest

from core.connect.tokens import _segment
from core.model.errors import Unauthorized

_FROM = bytes.maketrans(b"-_", b"+/")
_TO = bytes.maketrans(b"+/", b"-_")
URLSAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def round_trip(text: str) -> bytes | None:
    """The former check, verbatim in behaviour: decode leniently, encode again, compare."""
    try:
        encoded = text.encode("ascii")
        raw = binascii.a2b_base64((encoded + b"=" * (-len(encoded) % 4)).translate(_FROM))
    except (binascii.Error, ValueError):
        return None
    if binascii.b2a_base64(raw, newline=False).translate(_TO).rstrip(b"=") != encoded:
        return None
    return raw


def segment(text: str) -> bytes | None:
    try:
        return _segment(text)
    except Unauthorized:
        return None


def random_text(rng: random.Random) -> str:
    kind = rng.random()
    length = rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 8, rng.randrange(0, 1400)])
    if kind < 0.45:  # a canonical encoding of random bytes, sometimes nudged after
        text = base64.urlsafe_b64encode(rng.randbytes(length)).decode().rstrip("=")
        if text and rng.random() < 0.5:
            at = rng.randrange(len(text))
            text = text[:at] + rng.choice(URLSAFE + "+/=. \n\té") + text[at + 1:]
        return text
    if kind < 0.8:  # the alphabet only, any length: trailing bits and 4n + 1 lengths
        return "".join(rng.choice(URLSAFE) for _ in range(length))
    return "".join(rng.choice(URLSAFE + "+/=.\n \t\x00é~") for _ in range(length))


def test_4_3_the_segment_reader_agrees_with_the_round_trip_on_random_strings() -> None:
    rng = random.Random(20261205)
    accepted = refused = 0
    for _ in range(60_000):
        text = random_text(rng)
        expected = round_trip(text)
        assert segment(text) == expected, repr(text)
        accepted += expected is not None
        refused += expected is None
    assert accepted > 20_000 and refused > 20_000  # both sides were exercised


@pytest.mark.parametrize("text", ["", "AA", "AAA", "AAAA", "QQ", "QUE", "-_-_", "aGk"])
def test_4_3_canonical_segments_are_read(text: str) -> None:
    assert segment(text) == base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.mark.parametrize("text", [
    "AB",      # 2 characters: the last one's 4 unused bits are not zero
    "AAB",     # 3 characters: the last one's 2 unused bits are not zero
    "A",       # 4n + 1 characters
    "AAAAA",
    "AA==",    # padding is not part of a segment
    "AA+A",    # the standard alphabet's characters
    "AA/A",
    "AA A",    # whitespace, which a lenient decoder skips
    "AA\nA",
    "AA.A",
    "AAé",
])
def test_4_3_non_canonical_segments_are_refused(text: str) -> None:
    assert round_trip(text) is None  # as before
    assert segment(text) is None
