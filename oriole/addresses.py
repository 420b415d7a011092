"""Listening addresses as URLs: an IPv6 host goes in brackets (``http://[::1]:8080``)."""

from __future__ import annotations


def http_url(host: str, port: int) -> str:
    """``http://HOST:PORT`` for a host name, an IPv4 or an IPv6 address (bracketed once)."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"
