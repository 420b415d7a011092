"""Prometheus metrics of the model-provider transport.

Endpoint labels go through `oriole.redaction.redact_url`: an endpoint configured as
``https://user:secret@host/`` must never put its password into a scrape.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "oriole_provider_requests_total",
    "HTTP attempts of model calls, by provider, endpoint and outcome (error class or ok).",
    ["provider", "endpoint", "outcome"],
)
RETRIES = Counter(
    "oriole_provider_retries_total",
    "Failed attempts of model calls that were tried again, by the endpoint that failed.",
    ["provider", "endpoint"],
)
BREAKER_STATE = Gauge(
    "oriole_provider_breaker_state",
    "Circuit breaker of each endpoint: 0 closed, 1 half-open, 2 open.",
    ["provider", "endpoint"],
)
ENDPOINT_HEALTHY = Gauge(
    "oriole_provider_endpoint_healthy",
    "1 if the endpoint's last health check passed (or none ran), else 0.",
    ["provider", "endpoint"],
)
LATENCY = Histogram(
    "oriole_provider_request_seconds",
    "Duration of one HTTP attempt of a model call, whatever its outcome.",
    ["provider", "endpoint"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300),
)
TOKENS = Counter(
    "oriole_provider_tokens_total",
    "Tokens reported by providers, by provider, model and direction (input or output).",
    ["provider", "model", "direction"],
)

BREAKER_STATE_VALUES = {"closed": 0, "half_open": 1, "open": 2}
