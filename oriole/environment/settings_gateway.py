"""The gateway settings: where it listens, who may call it, and the limits that keep it up.

A section of :class:`oriole.environment.settings.Settings`.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import NoDecode

from oriole.environment.settings_values import CommaList, json_object

__all__ = ["GatewaySettings", "GatewayToken", "TokenScope"]

TokenScope = Literal["read", "write"]

_HOST_NAME = re.compile(r"[a-z0-9_.-]{1,253}|\[[0-9a-f:.]+\]")


class GatewayToken(BaseModel):
    """A gateway token with a name: the audit trail records the name, never the token."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scope: TokenScope
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._@-]{1,64}$")


class GatewaySettings(BaseModel):
    """The websocket/HTTP gateway: its address, its tokens and its limits."""

    gateway_host: str = Field(
        default="127.0.0.1",
        min_length=1,
        description="Address the websocket/HTTP gateway listens on.",
    )
    gateway_port: int = Field(
        default=8080, ge=1, le=65535, description="Port the websocket/HTTP gateway listens on."
    )
    gateway_tokens: Annotated[dict[str, TokenScope | GatewayToken], NoDecode] = Field(
        default_factory=dict,
        repr=False,
        description=(
            'Bearer tokens of the gateway as a JSON object {"<token>": "read" | "write"} or '
            '{"<token>": {"scope": "write", "name": "alice"}}; write implies read. The audit '
            "trail records the name (unnamed: token- and 8 hex digits of its SHA-256). Empty: "
            "no authentication, loopback-only bind."
        ),
    )
    gateway_client_queue_size: int = Field(
        default=2000,
        ge=10,
        le=1_000_000,
        description="Frames buffered per websocket client before it is told it lags and dropped.",
    )
    gateway_allowed_hosts: CommaList = Field(
        default_factory=list,
        description=(
            "Host names the gateway answers to (any port; '*' for any), comma-separated or a "
            "JSON list. Empty: localhost, 127.0.0.1 and [::1] only, which refuses DNS "
            "rebinding; set the public names when binding a non-loopback address."
        ),
    )
    gateway_max_body_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1024,
        le=256 * 1024 * 1024,
        description=(
            "Largest body of POST /api/experiments (a start event may embed a big maze); "
            "every other route accepts no body."
        ),
    )
    gateway_max_concurrent_bodies: int = Field(
        default=4,
        ge=1,
        le=1000,
        description=(
            "Request bodies the gateway reads at once; more get 503 with Retry-After, so "
            "memory stays bounded by this times the body limit."
        ),
    )
    gateway_rate_limit_per_token: int = Field(
        default=600,
        ge=0,
        le=1_000_000,
        description="Requests per minute one token may make (429 beyond); 0: unlimited.",
    )
    gateway_rate_limit_per_address: int = Field(
        default=600,
        ge=0,
        le=1_000_000,
        description="Requests per minute one client address may make (429 beyond); 0: unlimited.",
    )
    gateway_database_timeout: float = Field(
        default=3.0,
        gt=0,
        le=300,
        description=(
            "Seconds the read API waits for a PostgreSQL connection and its queries before "
            "answering 503."
        ),
    )

    @field_validator("gateway_tokens", mode="before")
    @classmethod
    def _parse_tokens(cls, value: object) -> object:
        """A JSON object; empty means no tokens. Never echo the text: it holds secrets."""
        return json_object(
            value, '{"<token>": "read", "<other>": {"scope": "write", "name": "alice"}}'
        )

    @field_validator("gateway_allowed_hosts", mode="after")
    @classmethod
    def _check_allowed_hosts(cls, value: list[str]) -> list[str]:
        names = [name.strip().lower() for name in value if name.strip()]
        for name in names:
            if name != "*" and not _HOST_NAME.fullmatch(name):
                raise ValueError(
                    f"{name!r} is not a host name (no scheme or port; IPv6 in brackets)"
                )
        return names
