"""Telemetry plumbing: the metrics and health listener, consumer lag, tracing.

Below the shells (like `oriole.kafka`): the services are handed to it by the composition
root, it imports none of them.
"""
