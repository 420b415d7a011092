"""Whether the gateway may listen where it is told to, and what to warn about when it does.

Without tokens anyone who reaches the port can read every run and start experiments: that
is allowed on loopback only (with a loud warning), refused anywhere else.
"""

from __future__ import annotations

import ipaddress
import logging

from oriole.environment.settings import Settings, SettingsError, env_var_name

log = logging.getLogger("oriole.gateway")


def check_exposure(settings: Settings, *, has_tokens: bool) -> None:
    """Raise :class:`SettingsError` for an open bind without tokens; log the softer risks."""
    host = settings.gateway_host
    if not has_tokens:
        if not is_loopback(host):
            raise SettingsError(
                [
                    (
                        env_var_name("gateway_host"),
                        f"{host!r} is not a loopback address and "
                        f"{env_var_name('gateway_tokens')} is empty: the gateway would "
                        "let anyone on the network read every run and start experiments. "
                        f"Configure tokens (e.g. {env_var_name('gateway_tokens')}="
                        '\'{"<secret>": "write"}\') or bind to 127.0.0.1',
                    )
                ]
            )
        log.warning(
            "GATEWAY AUTHENTICATION IS OFF: %s is empty, so anyone who can reach %s "
            "can read every run and start experiments (bound to loopback only)",
            env_var_name("gateway_tokens"),
            host,
        )
    elif not is_loopback(host) and not settings.gateway_allowed_hosts:
        log.warning(
            "%s is empty: the gateway answers only to localhost, 127.0.0.1 and [::1] "
            "(421 for other Host names); set the names clients use to reach %s",
            env_var_name("gateway_allowed_hosts"),
            host,
        )


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (a name we cannot vouch for: False)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
