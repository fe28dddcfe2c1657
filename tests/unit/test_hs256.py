"""The lean HS256 verifier refuses what PyJWT would; the header never picks the algorithm."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from core.errors import Unauthorized
from core.hs256 import check_signature, parse_hs256

SECRET = "a-tenant-shared-secret-for-hs256-tests-0123456789-long-enough-for-hs512"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims() -> dict[str, object]:
    now = int(time.time())
    return {"iss": "client", "iat": now, "exp": now + 60, "qsh": "x"}


def test_a_pyjwt_token_parses_and_verifies() -> None:
    token = jwt.encode(claims(), SECRET, algorithm="HS256")
    parsed = parse_hs256(token)
    check_signature(parsed, SECRET)
    assert parsed.claims["iss"] == "client"


def test_W1_wrong_secret_is_refused() -> None:
    parsed = parse_hs256(jwt.encode(claims(), SECRET, algorithm="HS256"))
    with pytest.raises(Unauthorized, match="signature"):
        check_signature(parsed, SECRET + "-rotated")


@pytest.mark.parametrize("alg", ["HS512", "HS384", "RS256", "none", "hs256", None])
def test_W1_any_other_alg_is_refused(alg: str | None) -> None:
    header = {"typ": "JWT"} if alg is None else {"alg": alg, "typ": "JWT"}
    token = ".".join([b64(json.dumps(header).encode()), b64(json.dumps(claims()).encode()),
                      b64(b"sig")])
    with pytest.raises(Unauthorized, match="algorithm"):
        parse_hs256(token)


def test_W1_HS512_signed_token_is_refused() -> None:
    with pytest.raises(Unauthorized):
        parse_hs256(jwt.encode(claims(), SECRET, algorithm="HS512"))


def test_W1_RS256_token_is_refused() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    with pytest.raises(Unauthorized):
        parse_hs256(jwt.encode(claims(), pem, algorithm="RS256"))


def test_W1_alg_none_with_empty_signature_is_refused() -> None:
    token = b64(b'{"alg":"none"}') + "." + b64(json.dumps(claims()).encode()) + "."
    with pytest.raises(Unauthorized):
        parse_hs256(token)


def test_crit_header_is_refused() -> None:
    token = jwt.encode(claims(), SECRET, algorithm="HS256", headers={"crit": ["exp"]})
    with pytest.raises(Unauthorized, match="critical"):
        parse_hs256(token)


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a.b", "a.b.c.d", "!!.??.**", "eyJ.eyJ.", b64(b"[1]") + "." + b64(b"{}") + ".x",
     b64(b'{"alg":"HS256"}') + "." + b64(b"not json") + ".x",
     b64(b'{"alg":"HS256"}') + "." + b64(b"[]") + ".x",
     b64(b'{"alg":"HS256"}') + "." + b64(b"{}") + ".a=b",
     "x" * 9000],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(Unauthorized, match=r"malformed|algorithm"):
        parse_hs256(token)


def test_a_tampered_payload_fails_the_signature() -> None:
    token = jwt.encode(claims(), SECRET, algorithm="HS256")
    head, _, sig = token.split(".")
    forged = {**claims(), "iss": "someone-else"}
    parsed = parse_hs256(f"{head}.{b64(json.dumps(forged).encode())}.{sig}")
    with pytest.raises(Unauthorized):
        check_signature(parsed, SECRET)
