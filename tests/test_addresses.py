"""One way to write a listening address as a URL (gateway, metrics listener, `oriole watch`)."""

from __future__ import annotations

import pytest

from oriole.addresses import http_url


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("127.0.0.1", 8080, "http://127.0.0.1:8080"),
        ("localhost", 9464, "http://localhost:9464"),
        ("::1", 9465, "http://[::1]:9465"),
        ("[::]", 80, "http://[::]:80"),  # bracketed once
    ],
)
def test_http_url(host: str, port: int, url: str) -> None:
    assert http_url(host, port) == url
