"""SigV4 for the fake Bedrock: check a request's signature, or sign one as a client would.

Both use botocore, so the check is the same computation AWS makes, not a reimplementation.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

#: Credentials the Bedrock fake accepts unless told otherwise (AWS's documentation examples).
TEST_ACCESS_KEY = "AKIDEXAMPLE"
TEST_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TEST_REGION = "us-east-1"


def sigv4_problem(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    access_key: str,
    secret_key: str,
    region: str,
    service: str = "bedrock",
    session_token: str | None = None,
) -> str | None:
    """Why a request's SigV4 signature is wrong, or ``None`` if it verifies.

    ``url`` must carry the path exactly as received (still percent-encoded). The signature
    is recomputed with botocore from the headers the Authorization header says were signed,
    X-Amz-Date as the timestamp and the SHA-256 of the body actually received.
    """
    lower = {key.lower(): value for key, value in headers.items()}
    auth = lower.get("authorization")
    if not auth:
        return "no Authorization header"
    match = re.fullmatch(
        r"AWS4-HMAC-SHA256 Credential=(?P<cred>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),"
        r"\s*Signature=(?P<sig>[0-9a-f]{64})",
        auth.strip(),
    )
    if match is None:
        return (
            "Authorization header is not AWS4-HMAC-SHA256 Credential=, SignedHeaders=, Signature="
        )
    timestamp = lower.get("x-amz-date")
    if not timestamp:
        return "no X-Amz-Date header"
    parts = match["cred"].split("/")
    if len(parts) != 5:
        return f"malformed credential scope {match['cred']!r}"
    key_id, date, scope_region, scope_service, terminal = parts
    if key_id != access_key:
        return f"unknown access key {key_id!r}"
    if (date, scope_region, scope_service, terminal) != (
        timestamp[:8],
        region,
        service,
        "aws4_request",
    ):
        return f"credential scope {match['cred']!r} does not match {timestamp[:8]}/{region}"
    signed = match["signed"].split(";")
    if "host" not in signed:
        return "the host header is not signed"
    if session_token is not None and (
        "x-amz-security-token" not in signed or lower.get("x-amz-security-token") != session_token
    ):
        return "missing or wrong X-Amz-Security-Token"
    body_hash = hashlib.sha256(body).hexdigest()
    declared = lower.get("x-amz-content-sha256")
    if declared is not None and declared != body_hash:
        return "X-Amz-Content-SHA256 does not match the body"
    missing = [name for name in signed if name not in lower]
    if missing:
        return f"signed headers missing from the request: {missing}"
    request = AWSRequest(
        method=method, url=url, data=body, headers={name: lower[name] for name in signed}
    )
    request.context["timestamp"] = timestamp
    signer = SigV4Auth(Credentials(access_key, secret_key, session_token), service, region)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, match["sig"]):
        return "signature mismatch"
    return None


def verify_sigv4(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    access_key: str,
    secret_key: str,
    region: str,
    service: str = "bedrock",
    session_token: str | None = None,
) -> bool:
    """Whether a request carries a valid SigV4 signature for these credentials."""
    return (
        sigv4_problem(
            method,
            url,
            headers,
            body,
            access_key=access_key,
            secret_key=secret_key,
            region=region,
            service=service,
            session_token=session_token,
        )
        is None
    )


def sign_bedrock_request(
    url: str,
    body: bytes,
    *,
    access_key: str = TEST_ACCESS_KEY,
    secret_key: str = TEST_SECRET_KEY,
    region: str = TEST_REGION,
    session_token: str | None = None,
) -> dict[str, str]:
    """Headers that sign a Converse POST with botocore, as a real client would send them."""
    request = AWSRequest(
        method="POST", url=url, data=body, headers={"Content-Type": "application/json"}
    )
    credentials = Credentials(access_key, secret_key, session_token)
    SigV4Auth(credentials, "bedrock", region).add_auth(request)
    return dict(request.headers.items())
