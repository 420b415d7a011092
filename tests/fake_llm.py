"""In-process fake LLM servers speaking the real wire formats of Ollama, OpenAI-compatible
servers and Bedrock Converse, so provider code is tested over real HTTP without a model.

Each fake records every request, answers chat calls from a script of behaviours (then from
a deterministic ``brain`` that plays a maze plausibly), renders errors in the provider's own
shape and, for Bedrock, checks the SigV4 signature with botocore. Usage::

    async with FakeOllama() as server:
        server.push(Reply(tool_calls=[("move_north", {"reasoning": "open"})]), HttpError(503))
        ...  # point the client at server.url

This module is the one place tests import the fakes from; the parts live in
``fake_llm_behaviours`` (scripts and recordings), ``fake_llm_server`` (what every fake
shares), ``fake_ollama``, ``fake_openai``, ``fake_bedrock`` and ``fake_llm_sigv4``.
"""

from __future__ import annotations

from tests.fake_bedrock import FakeBedrock
from tests.fake_llm_behaviours import (
    ArgumentsAs,
    Behaviour,
    Brain,
    Hang,
    HttpError,
    MalformedBody,
    MazeBrain,
    NoMessage,
    NoToolSupport,
    RecordedRequest,
    Reply,
)
from tests.fake_llm_server import SHUTDOWN_TIMEOUT, FakeLLMServer, Kind
from tests.fake_llm_sigv4 import (
    TEST_ACCESS_KEY,
    TEST_REGION,
    TEST_SECRET_KEY,
    sign_bedrock_request,
    sigv4_problem,
    verify_sigv4,
)
from tests.fake_ollama import FakeOllama
from tests.fake_openai import FakeOpenAI

__all__ = [
    "SHUTDOWN_TIMEOUT",
    "TEST_ACCESS_KEY",
    "TEST_REGION",
    "TEST_SECRET_KEY",
    "ArgumentsAs",
    "Behaviour",
    "Brain",
    "FakeBedrock",
    "FakeLLMServer",
    "FakeOllama",
    "FakeOpenAI",
    "Hang",
    "HttpError",
    "Kind",
    "MalformedBody",
    "MazeBrain",
    "NoMessage",
    "NoToolSupport",
    "RecordedRequest",
    "Reply",
    "sign_bedrock_request",
    "sigv4_problem",
    "verify_sigv4",
]
