"""Atlassian Connect query string hash (qsh), SPEC §4.1.

``qsh = hex(sha256(METHOD + "&" + CANONICAL_URI + "&" + CANONICAL_QUERY))``

Pure functions over the *raw* request line: callers pass the path and the query
exactly as they arrived on the wire (still percent-encoded, query without the
leading ``?``), decoded from bytes as UTF-8 with ``errors="surrogateescape"``
(so that non-UTF-8 bytes survive as lone surrogates and are hashed as the
original bytes).

Decisions where SPEC §4.1 is silent (also asserted by tests/unit/test_qsh.py):

* Invalid percent escapes (``%zz``, a trailing ``%``, ``%4``) are not escapes:
  they stay literal text, so the ``%`` is re-encoded as ``%25``.
* Percent-escapes that do not form valid UTF-8 (``%FF``, a lone ``%C3``)
  round-trip to the same bytes (``%FF``, ``%C3``) instead of collapsing to
  U+FFFD: two different requests must never share one canonical string.
* Lone surrogates that are not ``surrogateescape`` bytes are encoded with
  ``surrogatepass`` (CESU-style bytes), so canonicalisation never raises.
* "Sort by decoded string" means Python ``str`` order, i.e. by Unicode code
  point.
* Parameters are grouped by their *encoded* name, so names that decode alike
  (``a+b`` and ``a%20b``) form one group and the output has unique names.
* Only the exact decoded name ``jwt`` is dropped (``JWT`` is an ordinary
  parameter); ``jw%74`` decodes to ``jwt`` and is dropped.
* A piece ``=x`` is a parameter with an empty name, not an empty piece.
* A base path is compared case-sensitively and byte-for-byte with the raw path;
  trailing slashes on the base path are ignored.
"""

from __future__ import annotations

import hashlib
from urllib.parse import quote_from_bytes, unquote_plus, urlsplit

__all__ = [
    "base_path_of",
    "canonical_query",
    "canonical_request",
    "canonical_uri",
    "query_string_hash",
]

# The parameter Atlassian carries the token itself in; it cannot be part of
# the hash it is signed over.
_JWT_PARAM = "jwt"

# Lone surrogates that "surrogateescape" produced for undecodable bytes.
_ESCAPE_LOW = 0xDC80
_ESCAPE_HIGH = 0xDCFF


def _utf8(text: str) -> bytes:
    """Encode text as UTF-8 without ever raising, restoring escaped raw bytes."""
    try:
        # Fast path: ordinary text plus bytes that surrogateescape preserved.
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        pass
    # Rare path: a surrogate that is not an escaped byte (e.g. U+D800) is
    # still given a deterministic encoding rather than crashing the request.
    out = bytearray()
    for char in text:
        code = ord(char)
        if _ESCAPE_LOW <= code <= _ESCAPE_HIGH:
            out.append(code - 0xDC00)
        else:
            out += char.encode("utf-8", "surrogatepass")
    return bytes(out)


def _encode(text: str) -> str:
    """Percent-encode UTF-8 bytes leaving only A-Z a-z 0-9 - . _ ~ bare."""
    # quote_from_bytes always keeps exactly the RFC 3986 unreserved set and
    # emits upper-case hex; safe="" stops it keeping "/" as well.
    return quote_from_bytes(_utf8(text), safe="")


def _decode(text: str) -> str:
    """Form-decode one name or value: "+" is space, %XX are UTF-8 bytes."""
    # surrogateescape keeps undecodable bytes recoverable (see module doc);
    # unquote_plus leaves malformed escapes as literal text and never raises.
    return unquote_plus(text, encoding="utf-8", errors="surrogateescape")


def canonical_uri(raw_path: str, base_path: str = "") -> str:
    """Return the canonical URI: raw path minus base path, per SPEC §4.1."""
    base = base_path.rstrip("/")
    path = raw_path
    # Strip only at a segment boundary: "/jira" owns "/jira/x", not "/jirax".
    if base and (path == base or path.startswith(base + "/")):
        path = path[len(base) :]
    if not path:
        path = "/"
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    # "&" separates the canonical request's parts, so it must not appear raw.
    return path.replace("&", "%26")


def canonical_query(raw_query: str) -> str:
    """Return the canonical query string of a raw query, per SPEC §4.1."""
    groups: dict[str, list[str]] = {}
    for piece in raw_query.split("&"):
        if not piece:
            continue
        raw_name, _, raw_value = piece.partition("=")
        name = _decode(raw_name)
        if name == _JWT_PARAM:
            continue
        groups.setdefault(_encode(name), []).append(_decode(raw_value))
    items = []
    for encoded_name in sorted(groups):
        # Values are sorted decoded, then encoded: the order is that of the
        # decoded strings, not of their percent-encoded forms.
        values = ",".join(_encode(value) for value in sorted(groups[encoded_name]))
        items.append(f"{encoded_name}={values}")
    return "&".join(items)


def canonical_request(method: str, raw_path: str, raw_query: str, base_path: str = "") -> str:
    """Return ``METHOD&URI&QUERY``, the string whose sha256 is the qsh."""
    uri = canonical_uri(raw_path, base_path)
    query = canonical_query(raw_query)
    return f"{method.upper()}&{uri}&{query}"


def query_string_hash(method: str, raw_path: str, raw_query: str, base_path: str = "") -> str:
    """Return the lowercase hex sha256 qsh of a raw request."""
    canonical = canonical_request(method, raw_path, raw_query, base_path)
    return hashlib.sha256(_utf8(canonical)).hexdigest()


def base_path_of(base_url: str) -> str:
    """Return a base URL's path without trailing slashes ("" when it has none)."""
    # The path is compared raw against raw request paths, so keep its encoding.
    return urlsplit(base_url).path.rstrip("/")
