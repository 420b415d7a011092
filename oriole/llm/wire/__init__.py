"""Wire formats: how each provider's HTTP API spells a chat request and its reply.

Pure functions over bytes and dicts (the sans-I/O part of a provider); the transport in
`providers/` sends what they build and hands them what came back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from oriole.llm.chat import ChatRequest, ModelReply
from oriole.llm.errors import ProviderError


class WireFormat(Protocol):
    #: ``ollama``, ``openai`` or ``bedrock``: the provider name recorded with each call.
    provider: str
    #: Path (relative to the endpoint URL) that answers a GET with 200 while the server is
    #: up, or ``None`` if the API has no cheap health probe.
    health_path: str | None

    def chat_path(self, model: str) -> str:
        """Path of the chat call, relative to the endpoint URL."""
        ...

    def chat_body(self, request: ChatRequest) -> dict[str, Any]:
        """The JSON body of the chat call."""
        ...

    def parse_reply(self, body: bytes) -> ModelReply:
        """A 2xx body; raises a `ProviderError` subclass if it is not a usable reply."""
        ...

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        """The error a non-2xx response stands for (classified, with Retry-After)."""
        ...
