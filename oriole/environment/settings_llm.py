"""The model-provider settings: which servers, their keys, and how calls retry and are limited.

A section of :class:`oriole.environment.settings.Settings`. Endpoints are stored in the form
in which admission compares a start event's ``agent.endpoint`` with them
(:func:`oriole.admission.normalise_endpoint`), so that ``llm_endpoint_allowlist_only`` allows
exactly what the operator configured.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import NoDecode

from oriole.admission import endpoint_problem, normalise_endpoint
from oriole.environment.settings_values import (
    CommaList,
    OptionalPath,
    OptionalSecret,
    OptionalText,
    json_object,
)
from oriole.redaction import redact_url

__all__ = ["LlmRateLimit", "LlmSettings"]


class LlmRateLimit(BaseModel):
    """Request and token limits per minute for one model (unset = unlimited)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(default=None, ge=1)


def _http_endpoints(value: list[str]) -> list[str]:
    """Each an http(s) URL with a host, normalised as admission compares them, once each."""
    cleaned: list[str] = []
    for url in value:
        url = normalise_endpoint(url.strip())
        problem = endpoint_problem(url)
        if problem is not None:
            raise ValueError(f"{redact_url(url)!r}: {problem}")
        if url not in cleaned:
            cleaned.append(url)
    return cleaned


#: Server URLs: a JSON list or URLs separated by commas.
HttpEndpoints = Annotated[CommaList, AfterValidator(_http_endpoints)]


class LlmSettings(BaseModel):
    """The model servers of each provider and the resilience of every model call."""

    ollama_endpoints: HttpEndpoints = Field(
        default_factory=lambda: ["http://127.0.0.1:11434"],
        description=(
            "Ollama servers, tried with health checks and failover. In the environment: "
            "a JSON list or URLs separated by ','."
        ),
    )
    ollama_api_key: OptionalSecret = Field(
        default=None,
        description="Key for an Ollama behind an authenticating proxy "
        "(sent as Bearer token and X-API-Key).",
    )
    openai_endpoints: HttpEndpoints = Field(
        default_factory=lambda: ["https://api.openai.com/v1"],
        description=(
            "OpenAI-compatible servers (vLLM, llama.cpp, LM Studio, OpenAI), base URLs "
            "ending in /v1; a JSON list or URLs separated by ','."
        ),
    )
    openai_api_key: OptionalSecret = Field(
        default=None, description="Bearer key for the OpenAI-compatible servers."
    )
    bedrock_region: OptionalText = Field(
        default=None,
        description="AWS region of Bedrock; empty: from the AWS chain (AWS_REGION, config).",
    )
    bedrock_endpoints: HttpEndpoints = Field(
        default_factory=list,
        description="Bedrock runtime URLs (e.g. a VPC endpoint); empty: the region's public one.",
    )
    llm_request_timeout_seconds: float = Field(
        default=120.0, gt=0, le=3600, description="Whole-request limit of one model call attempt."
    )
    llm_connect_timeout_seconds: float = Field(
        default=10.0, gt=0, le=600, description="Limit on connecting to a model server."
    )
    llm_max_attempts: int = Field(
        default=4, ge=1, le=20, description="Attempts per model call (1 = no retries)."
    )
    llm_backoff_base_seconds: float = Field(
        default=0.5, ge=0, le=600, description="First retry delay; doubles per attempt, jittered."
    )
    llm_backoff_max_seconds: float = Field(
        default=30.0, ge=0, le=3600, description="Longest delay between attempts."
    )
    llm_retry_after_max_seconds: float = Field(
        default=60.0, ge=0, le=3600, description="Longest server Retry-After that is honoured."
    )
    llm_breaker_failure_threshold: int = Field(
        default=3,
        ge=1,
        le=1000,
        description="Consecutive failures that open an endpoint's circuit.",
    )
    llm_breaker_reset_seconds: float = Field(
        default=30.0, gt=0, le=3600, description="How long an open circuit stays open."
    )
    llm_health_check_interval_seconds: float = Field(
        default=15.0, gt=0, le=3600, description="Probe interval (/api/tags, /v1/models)."
    )
    llm_endpoint_max_concurrency: int = Field(
        default=4, ge=1, le=10_000, description="Requests in flight per model server."
    )
    llm_rate_limits: Annotated[dict[str, LlmRateLimit], NoDecode] = Field(
        default_factory=dict,
        description=(
            'Per-model limits as JSON: {"<model>": {"requests_per_minute": 60, '
            '"tokens_per_minute": 100000}}.'
        ),
    )
    llm_endpoint_allowlist_only: bool = Field(
        default=True,
        description=(
            "A start event's agent.endpoint must be one of the configured endpoints "
            "(keys are never sent to other hosts)."
        ),
    )
    price_file: OptionalPath = Field(
        default=None,
        description="TOML price table merged over the built-in one (see docs/pricing.md).",
    )

    @field_validator("llm_rate_limits", mode="before")
    @classmethod
    def _parse_rate_limits(cls, value: object) -> object:
        return json_object(value, '{"qwen2.5:7b": {"requests_per_minute": 60}}')
