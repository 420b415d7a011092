"""A model call as an ``oriole.model.call`` client span, under whatever span is current
(the agent runner's decision, see `oriole.telemetry.run_spans.decision`).

The span carries the provider, the model, the endpoint (redacted) and attempts the call
reports, and the tokens of its reply; never the prompt or the reply's text.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind

from oriole.redaction import redact_url
from oriole.telemetry.spans import Attributes, CurrentSpan
from oriole.telemetry.tracing import current_tracer

__all__ = ["model_call"]

T = TypeVar("T")


def model_call(call: Awaitable[T], provider: str, model: str) -> Awaitable[T]:
    """``call`` (a model call through an endpoint pool) inside an ``oriole.model.call`` span
    with the endpoint, attempts and tokens it reports; ``call`` itself when off."""
    tracer = current_tracer()
    if tracer is None:
        return call
    return _traced_call(tracer, call, provider, model)


async def _traced_call(tracer: trace.Tracer, call: Awaitable[T], provider: str, model: str) -> T:
    attributes: Attributes = {
        "gen_ai.system": provider,
        "gen_ai.request.model": model,
        "oriole.provider": provider,
        "oriole.model": model,
    }
    span = tracer.start_span("oriole.model.call", kind=SpanKind.CLIENT, attributes=attributes)
    with CurrentSpan(span):  # failed by the error's class on the way out
        try:
            result = await call
        except BaseException as exc:
            _describe_call(span, exc)
            raise
        _describe_call(span, result)
        reply = getattr(result, "reply", None)
        for field, attribute in (
            ("input_tokens", "gen_ai.usage.input_tokens"),
            ("output_tokens", "gen_ai.usage.output_tokens"),
        ):
            value = getattr(reply, field, None)
            if isinstance(value, int):
                span.set_attribute(attribute, value)
        return result


def _describe_call(span: Span, outcome: object) -> None:
    """Endpoint (redacted) and attempts of a call result or of the error it raised."""
    endpoint = getattr(outcome, "endpoint", None)
    if isinstance(endpoint, str) and endpoint:
        span.set_attribute("oriole.endpoint", redact_url(endpoint))
    attempts = getattr(outcome, "attempts", None)
    if isinstance(attempts, int):
        span.set_attribute("oriole.attempts", attempts)
