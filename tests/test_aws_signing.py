"""SigV4 signing through botocore, with credentials from the standard chain."""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from urllib.parse import urlsplit

import botocore.session
import pytest
from botocore.credentials import Credentials, RefreshableCredentials

from oriole.llm.errors import AuthenticationFailed
from providers.aws import SigV4Signer, default_region
from tests.fake_llm import sigv4_problem

URL = "https://bedrock-runtime.eu-west-1.amazonaws.com/model/anthropic.claude-3:0/converse"
BODY = b'{"messages":[{"role":"user","content":[{"text":"hi"}]}]}'
ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "session-token-example"

_CHAIN_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
)


@pytest.fixture
def isolated_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No credentials anywhere: empty config files, no metadata service, no AWS variables."""
    for name in _CHAIN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "config"
    config.write_text("")
    credentials = tmp_path / "credentials"
    credentials.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return config


@pytest.fixture
def env_credentials(isolated_aws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)


def signature_problem(headers: dict[str, str], access_key: str = ACCESS_KEY) -> str | None:
    """What the fake Bedrock server would say about these signed headers (None: valid)."""
    return sigv4_problem(
        "POST",
        URL,
        headers | {"host": urlsplit(URL).netloc},
        BODY,
        access_key=access_key,
        secret_key=SECRET_KEY,
        region="eu-west-1",
        session_token=TOKEN,
    )


@pytest.mark.asyncio
async def test_signature_verifies(env_credentials: None) -> None:
    signer = SigV4Signer("eu-west-1")
    headers = await signer("POST", URL, {"content-type": "application/json"}, BODY)
    assert headers["content-type"] == "application/json"
    assert headers["X-Amz-Security-Token"] == TOKEN
    authorization = headers["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 ")
    date = headers["X-Amz-Date"][:8]
    assert f"Credential={ACCESS_KEY}/{date}/eu-west-1/bedrock/aws4_request" in authorization
    signed = re.search(r"SignedHeaders=([^,]+)", authorization)
    assert signed is not None
    assert {"content-type", "host", "x-amz-date", "x-amz-security-token"} <= set(
        signed.group(1).split(";")
    )
    assert signature_problem(headers) is None
    assert SECRET_KEY not in str(headers) and SECRET_KEY not in repr(signer)


@pytest.mark.asyncio
async def test_credentials_are_resolved_once(
    env_credentials: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = botocore.session.Session()
    calls = 0
    original = session.get_credentials

    def counting() -> Credentials | None:
        nonlocal calls
        calls += 1
        return original()

    monkeypatch.setattr(session, "get_credentials", counting)
    signer = SigV4Signer("eu-west-1", session=session)
    for _ in range(3):
        await signer("POST", URL, {}, BODY)
    assert calls == 1


@pytest.mark.asyncio
async def test_refreshable_credentials_are_refreshed(
    isolated_aws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued = 0

    def refresh() -> dict[str, str]:
        nonlocal issued
        issued += 1
        # Already within botocore's refresh window: every signing asks for new ones.
        expiry = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=5)
        return {
            "access_key": f"AKIDREFRESHED{issued}",
            "secret_key": SECRET_KEY,
            "token": TOKEN,
            "expiry_time": expiry.isoformat(),
        }

    credentials = RefreshableCredentials.create_from_metadata(
        metadata=refresh(), refresh_using=refresh, method="test"
    )
    session = botocore.session.Session()
    monkeypatch.setattr(session, "get_credentials", lambda: credentials)
    signer = SigV4Signer("eu-west-1", session=session)
    first = await signer("POST", URL, {}, BODY)
    second = await signer("POST", URL, {}, BODY)
    first_key = re.search(r"Credential=([A-Z0-9]+)/", first["Authorization"])
    second_key = re.search(r"Credential=([A-Z0-9]+)/", second["Authorization"])
    assert first_key is not None and second_key is not None
    assert first_key.group(1) != second_key.group(1)
    assert signature_problem(second, access_key=second_key.group(1)) is None


@pytest.mark.asyncio
async def test_no_credentials_is_a_clear_error(isolated_aws: Path) -> None:
    signer = SigV4Signer("eu-west-1")
    with pytest.raises(AuthenticationFailed) as caught:
        await signer("POST", URL, {}, BODY)
    message = caught.value.message
    assert "no AWS credentials found" in message
    for source in ("AWS_ACCESS_KEY_ID", "credentials file", "config file", "instance metadata"):
        assert source in message
    assert not AuthenticationFailed.retryable


@pytest.mark.asyncio
async def test_missing_profile_is_an_authentication_error(
    isolated_aws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "nonexistent")
    with pytest.raises(AuthenticationFailed, match="nonexistent"):
        await SigV4Signer("eu-west-1")("POST", URL, {}, BODY)


def test_default_region(isolated_aws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_region() is None
    isolated_aws.write_text("[default]\nregion = ap-southeast-2\n")
    assert default_region() == "ap-southeast-2"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    assert default_region() == "us-west-2"
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    assert default_region() == "eu-central-1"
