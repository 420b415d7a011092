"""Creating each run's agent, and the endpoint pools the LLM agents of a worker share.

One pool per provider and worker process: circuit breakers, health checks, concurrency caps
and rate limits are per endpoint and per model, not per run. Pools start on first use, so a
worker that only runs built-in agents never probes a model server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from oriole.admission import AllowedEndpoints
from oriole.agents.base import Agent, AgentFailed
from oriole.agents.builtin import create_builtin
from oriole.environment.settings import Settings, secret_values
from oriole.experiment import MODEL_PROVIDERS, AgentSpec, RunSpec
from oriole.llm.pricing import PriceTable, load_price_table
from oriole.llm.resilience import RateLimit, RetryPolicy
from oriole.llm.wire import WireFormat
from oriole.llm.wire.bedrock import BedrockWire
from oriole.llm.wire.ollama import OllamaWire
from oriole.llm.wire.openai import OpenAIWire
from oriole.redaction import Redactor, redact_url
from providers.agent import LLMAgent
from providers.aws import SigV4Signer, default_region
from providers.transport import EndpointPool, TransportPolicy

log = logging.getLogger("oriole.providers")


def transport_policy(settings: Settings) -> TransportPolicy:
    return TransportPolicy(
        request_timeout_seconds=settings.llm_request_timeout_seconds,
        connect_timeout_seconds=settings.llm_connect_timeout_seconds,
        retry=RetryPolicy(
            max_attempts=settings.llm_max_attempts,
            backoff_base_seconds=settings.llm_backoff_base_seconds,
            backoff_max_seconds=settings.llm_backoff_max_seconds,
            retry_after_max_seconds=settings.llm_retry_after_max_seconds,
        ),
        breaker_failure_threshold=settings.llm_breaker_failure_threshold,
        breaker_reset_seconds=settings.llm_breaker_reset_seconds,
        health_check_interval_seconds=settings.llm_health_check_interval_seconds,
        endpoint_max_concurrency=settings.llm_endpoint_max_concurrency,
    )


def bedrock_runtime_url(region: str) -> str:
    return f"https://bedrock-runtime.{region}.amazonaws.com"


def configured_endpoints(settings: Settings, provider: str) -> list[str]:
    """The endpoints a provider's pool uses (Bedrock's from the region when not given)."""
    if provider == "ollama":
        return list(settings.ollama_endpoints)
    if provider == "openai":
        return list(settings.openai_endpoints)
    if provider == "bedrock":
        if settings.bedrock_endpoints:
            return list(settings.bedrock_endpoints)
        if settings.bedrock_region:
            return [bedrock_runtime_url(settings.bedrock_region)]
        return []
    return []


def allowed_endpoints(settings: Settings) -> AllowedEndpoints:
    """What a run's ``agent.endpoint`` may name: the configured endpoints, or any if allowed."""
    if not settings.llm_endpoint_allowlist_only:
        return AllowedEndpoints()
    return AllowedEndpoints.only(
        {provider: configured_endpoints(settings, provider) for provider in MODEL_PROVIDERS}
    )


class ConfiguredAgentFactory:
    """Callable the agent runner uses to create the agent of each run."""

    def __init__(self, settings: Settings, *, prices: PriceTable | None = None) -> None:
        self.settings = settings
        self.prices = prices if prices is not None else load_price_table(settings.price_file)
        #: Every configured secret, masked in provider error text before it becomes an event.
        self.redactor = Redactor(secret_values(settings))
        self._pools: dict[str, EndpointPool] = {}
        self._opening = asyncio.Lock()
        self._closed = False

    def __call__(self, run: RunSpec) -> Agent:
        spec, prompt = run.agent, run.prompt
        if spec.provider == "builtin":
            return create_builtin(spec)
        if prompt is None or prompt.text is None:
            raise AgentFailed("PromptMissing", "an LLM run needs a prompt with its text")
        self.check_endpoint(spec)
        price = self.prices.price(spec.provider, spec.model)
        provider = spec.provider
        return LLMAgent(spec, prompt, lambda: self.pool(provider), price, redactor=self.redactor)

    def check_endpoint(self, spec: AgentSpec) -> None:
        """Refuse an endpoint that is not configured: keys go only to hosts the operator chose."""
        if spec.endpoint is None:
            return
        refusal = allowed_endpoints(self.settings).refusal(spec.provider, spec.endpoint)
        if refusal is not None:  # admission refuses it too; a worker's settings may differ
            raise AgentFailed("EndpointNotAllowed", f"agent.endpoint {refusal}")

    async def pool(self, provider: str) -> EndpointPool:
        """The provider's pool, opened by the first run that needs it."""
        async with self._opening:
            if self._closed:
                raise AgentFailed("WorkerStopping", "the worker is shutting down")
            pool = self._pools.get(provider)
            if pool is None:
                pool = self._pools[provider] = await self._open(provider)
            return pool

    async def _open(self, provider: str) -> EndpointPool:
        settings = self.settings
        wire: WireFormat
        headers: dict[str, str] = {}
        signer = None
        endpoints = configured_endpoints(settings, provider)
        if provider == "ollama":
            wire = OllamaWire()
            if settings.ollama_api_key is not None:
                key = settings.ollama_api_key.get_secret_value()
                headers = {"Authorization": f"Bearer {key}", "X-API-Key": key}
        elif provider == "openai":
            wire = OpenAIWire()
            if settings.openai_api_key is not None:
                headers = {"Authorization": f"Bearer {settings.openai_api_key.get_secret_value()}"}
        elif provider == "bedrock":
            wire = BedrockWire()
            region = settings.bedrock_region or await asyncio.to_thread(default_region, None)
            if region is None:
                raise AgentFailed(
                    "BedrockRegionMissing",
                    "no AWS region: set ORIOLE_BEDROCK_REGION or AWS_REGION "
                    "(or a region in the AWS config file)",
                )
            signer = SigV4Signer(region)
            if not endpoints:
                endpoints = [bedrock_runtime_url(region)]
        else:
            raise AgentFailed("UnknownProvider", f"no provider named {provider!r}")
        if not endpoints:
            raise AgentFailed("NoEndpoints", f"no {provider} endpoints are configured")
        pool = EndpointPool(
            wire,
            endpoints,
            transport_policy(settings),
            headers=headers,
            signer=signer,
            rate_limits=_rate_limits(settings),
            redactor=self.redactor,
        )
        await pool.start()
        log.info("%s endpoint pool: %s", provider, ", ".join(redact_url(url) for url in endpoints))
        return pool

    async def close(self) -> None:
        async with self._opening:
            self._closed = True
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.close()


def _rate_limits(settings: Settings) -> Mapping[str, RateLimit]:
    return {
        model: RateLimit(
            requests_per_minute=limit.requests_per_minute,
            tokens_per_minute=limit.tokens_per_minute,
        )
        for model, limit in settings.llm_rate_limits.items()
    }
