"""The tracing settings: where spans go (nowhere unless configured).

A section of :class:`oriole.environment.settings.Settings`. Off by default; the standard
``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_SERVICE_NAME`` variables are honoured as well (read
by `oriole.telemetry.tracing`, which the SDK reads them for anyway), so a deployment that
already sets them for other services needs nothing Oriole-specific.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, Field

from oriole.environment.settings_values import OptionalText
from oriole.redaction import redact_url

__all__ = ["TracingSettings"]


def _otlp_url(value: str | None) -> str | None:
    """An http(s) URL with a host (the OTLP/HTTP receiver), or None."""
    if value is None:
        return None
    url = value.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"{redact_url(url)!r}: expected the http(s) URL of an OTLP/HTTP receiver, "
            "e.g. http://otel-collector:4318"
        )
    return url


class TracingSettings(BaseModel):
    """OpenTelemetry traces: exported over OTLP/HTTP only when a receiver is named."""

    otel_endpoint: Annotated[OptionalText, AfterValidator(_otlp_url)] = Field(
        default=None,
        description=(
            "OTLP/HTTP receiver of the traces (a collector, Jaeger, Tempo), e.g. "
            "http://otel-collector:4318; spans go to <url>/v1/traces unless the URL already "
            "ends so. Unset: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT "
            "if set, else tracing is off (no SDK loaded)."
        ),
    )
