"""Prometheus metrics of the gateway (served, with every other metric, on ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CLIENTS = Gauge(
    "oriole_gateway_clients",
    "Websocket clients connected, by feed (run, runs, replay).",
    ["feed"],
)
FRAMES = Counter("oriole_gateway_frames_sent_total", "Websocket frames sent to clients.")
DROPPED = Counter(
    "oriole_gateway_clients_dropped_total",
    "Websocket clients closed with 4008 because they fell too far behind.",
)
LATENCY = Histogram(
    "oriole_gateway_event_delivery_seconds",
    "From a live event's time to its frame being handed to a client's connection.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
UNDECODABLE = Counter(
    "oriole_gateway_undecodable_events_total",
    "Records on the run events topic the gateway could not read (skipped).",
)
HTTP_REQUESTS = Counter(
    "oriole_gateway_http_requests_total", "HTTP requests answered, by status code.", ["status"]
)
