"""AWS SigV4 request signing for Bedrock, done by botocore (signing is not hand-rolled).

Credentials come from botocore's standard chain, so whatever works for the AWS CLI works
here: environment variables, the shared credentials and config files (profiles, SSO,
assume-role), web identity, and container or instance metadata. Resolving them can read
files and call metadata services, so it runs in a thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials, RefreshableCredentials
from botocore.exceptions import BotoCoreError

from oriole.llm.errors import AuthenticationFailed

log = logging.getLogger("oriole.providers.aws")

_SOURCES = (
    "environment variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), "
    "the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, default ~/.aws/credentials), "
    "the config file (AWS_CONFIG_FILE, default ~/.aws/config: profiles, SSO, assume-role, "
    "credential_process) for the profile in AWS_PROFILE (or 'default'), web identity "
    "(AWS_WEB_IDENTITY_TOKEN_FILE), container credentials (ECS) and instance metadata (EC2)"
)


class SigV4Signer:
    """Signs requests with SigV4 for one region and service (a `RequestSigner`).

    The credential chain is resolved once and cached; refreshable credentials (SSO,
    assume-role, metadata) are re-frozen when botocore says they are about to expire.
    """

    def __init__(
        self,
        region: str,
        service: str = "bedrock",
        session: botocore.session.Session | None = None,
    ) -> None:
        if not region:
            raise ValueError("region: must not be empty")
        self.region = region
        self.service = service
        self._session = session
        self._credentials: Credentials | None = None
        self._frozen: ReadOnlyCredentials | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"SigV4Signer(region={self.region!r}, service={self.service!r})"

    async def __call__(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> dict[str, str]:
        """The headers to send: ``headers`` plus X-Amz-Date, the session token and
        Authorization."""
        credentials = await self._current_credentials()
        request = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
        SigV4Auth(credentials, self.service, self.region).add_auth(request)
        return {name: str(value) for name, value in request.headers.items()}

    async def _current_credentials(self) -> ReadOnlyCredentials:
        async with self._lock:
            try:
                if self._credentials is None:
                    self._credentials = await asyncio.to_thread(self._resolve)
                credentials = self._credentials
                if self._frozen is None or (
                    isinstance(credentials, RefreshableCredentials) and credentials.refresh_needed()
                ):
                    self._frozen = await asyncio.to_thread(credentials.get_frozen_credentials)
            except BotoCoreError as exc:
                raise AuthenticationFailed(
                    f"AWS credentials could not be loaded ({type(exc).__name__}: {exc})"
                ) from exc
            return self._frozen

    def _resolve(self) -> Credentials:
        """Run the credential chain (blocking: call in a thread)."""
        if self._session is None:
            self._session = botocore.session.Session()
        credentials = self._session.get_credentials()
        if credentials is None:
            raise AuthenticationFailed(f"no AWS credentials found; looked at {_SOURCES}")
        return credentials


def default_region(session: botocore.session.Session | None = None) -> str | None:
    """The region from the standard sources: AWS_REGION, AWS_DEFAULT_REGION, then the
    profile's ``region`` in the config file. Blocking (reads files): call in a thread."""
    region = os.environ.get("AWS_REGION", "").strip()
    if region:
        return region
    try:
        configured = (session or botocore.session.Session()).get_config_variable("region")
    except BotoCoreError as exc:
        log.warning("cannot read the AWS region from the config: %s", exc)
        return None
    return str(configured) if configured else None
