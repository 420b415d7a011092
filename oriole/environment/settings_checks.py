"""Checks across settings, and the secret values the settings hold.

Each field is checked on its own where it is declared; what only a combination can get
wrong (SASL without a SASL protocol, a CA file without a ``verify-*`` mode, a data directory
under /root) is found here, every problem at once, each naming the field to change.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

from oriole.environment.settings_database import DatabaseSettings
from oriole.environment.settings_kafka import KafkaSettings
from oriole.environment.settings_sources import SECRET_SETTINGS
from oriole.environment.settings_values import env_var_name
from oriole.redaction import url_secrets

if TYPE_CHECKING:
    from oriole.environment.settings import Settings

__all__ = [
    "AWS_SECRET_VARIABLES",
    "FORBIDDEN_PG_PARENT",
    "ROOT_FALLBACK_PG_DIR",
    "database_tls_problems",
    "kafka_security_problems",
    "pg_dir_problem",
    "secret_values",
]

#: The embedded PostgreSQL makes every parent directory of its data directory readable by its
#: service user; under /root that would open the administrator's home to other users.
FORBIDDEN_PG_PARENT = Path("/root")
#: The embedded PostgreSQL's data directory when ``<home>/pgdata`` would be under /root.
ROOT_FALLBACK_PG_DIR = Path("/var/lib/oriole/pgdata")

#: AWS credentials Oriole never reads itself (botocore does) but must not echo either.
AWS_SECRET_VARIABLES: tuple[str, ...] = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
)

_SASL_PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")
_TLS_PROTOCOLS = ("SSL", "SASL_SSL")


def kafka_security_problems(settings: KafkaSettings) -> list[tuple[str, str]]:
    """Why the Kafka TLS/SASL settings cannot work together (empty when they can)."""
    problems: list[tuple[str, str]] = []
    protocol = settings.kafka_security_protocol
    shown = f"{env_var_name('kafka_security_protocol')}={protocol}"
    if protocol != "PLAINTEXT" and settings.embedded_broker:
        problems.append(
            (
                "kafka_security_protocol",
                f"is {protocol}, but the embedded Tansu broker (empty "
                f"{env_var_name('kafka_bootstrap_servers')}) speaks PLAINTEXT only",
            )
        )
    sasl_values = {
        "kafka_sasl_mechanism": settings.kafka_sasl_mechanism,
        "kafka_sasl_username": settings.kafka_sasl_username,
        "kafka_sasl_password": settings.kafka_sasl_password,
    }
    if protocol in _SASL_PROTOCOLS:
        for name in ("kafka_sasl_username", "kafka_sasl_password"):
            if sasl_values[name] is None:
                problems.append((name, f"is required with {shown}"))
    else:
        for name, value in sasl_values.items():
            if value is not None:
                problems.append(
                    (name, f"is set but {shown}; use SASL_SSL (or SASL_PLAINTEXT) for SASL")
                )
    tls_files = {
        "kafka_ssl_cafile": settings.kafka_ssl_cafile,
        "kafka_ssl_certfile": settings.kafka_ssl_certfile,
        "kafka_ssl_keyfile": settings.kafka_ssl_keyfile,
    }
    if protocol not in _TLS_PROTOCOLS:
        for name, path in tls_files.items():
            if path is not None:
                problems.append((name, f"is set but {shown}; use SSL or SASL_SSL for TLS"))
        return problems
    if settings.kafka_ssl_key_password is not None and settings.kafka_ssl_keyfile is None:
        problems.append(
            ("kafka_ssl_key_password", f"is set without {env_var_name('kafka_ssl_keyfile')}")
        )
    cert, key = settings.kafka_ssl_certfile, settings.kafka_ssl_keyfile
    if (cert is None) != (key is None):
        missing, given = (
            ("kafka_ssl_keyfile", "kafka_ssl_certfile")
            if key is None
            else ("kafka_ssl_certfile", "kafka_ssl_keyfile")
        )
        problems.append(
            (missing, f"is required with {env_var_name(given)} (mutual TLS needs both)")
        )
    for name, path in tls_files.items():
        if path is not None and not path.is_file():
            problems.append((name, f"file not found: {path}"))
    return problems


def database_tls_problems(settings: DatabaseSettings) -> list[tuple[str, str]]:
    """Why the PostgreSQL TLS settings cannot work (empty when they can)."""
    problems: list[tuple[str, str]] = []
    mode = settings.database_sslmode
    if settings.embedded_database and mode not in (None, "disable", "prefer"):
        problems.append(
            (
                "database_sslmode",
                f"is {mode}, but the embedded PostgreSQL (empty "
                f"{env_var_name('database_url')}) listens on a Unix socket only, without TLS",
            )
        )
    root = settings.database_sslrootcert
    if root is None:
        return problems
    if settings.database_sslmode not in ("verify-ca", "verify-full"):
        problems.append(
            (
                "database_sslrootcert",
                f"is set but {env_var_name('database_sslmode')} is "
                f"{settings.database_sslmode or 'unset'}; the CA is only used with verify-ca "
                "or verify-full",
            )
        )
    elif not root.is_file():
        problems.append(("database_sslrootcert", f"file not found: {root}"))
    return problems


def pg_dir_problem(path: Path, *, from_home: bool) -> str | None:
    """Why ``path`` cannot hold the embedded PostgreSQL's data, or None if it can."""
    resolved = path.resolve()
    if not resolved.is_relative_to(FORBIDDEN_PG_PARENT):
        return None
    origin = f" (from {env_var_name('home')})" if from_home else ""
    return (
        f"{resolved}{origin} is under /root; the embedded PostgreSQL would have to open /root "
        f"to its service user. Set {env_var_name('embedded_pg_dir')} (e.g. "
        f"/var/lib/oriole/pgdata) or {env_var_name('home')} outside /root, or use an external "
        f"server via {env_var_name('database_url')}"
    )


def secret_values(settings: Settings, environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Every secret value the settings hold, plus the AWS secrets in ``environ``.

    Fed to :class:`oriole.redaction.Redactor`, so that an upstream error echoing a key, or a
    library logging a DSN, cannot leak it. ``environ`` defaults to the process environment
    (botocore reads the AWS keys from there).
    """
    found: list[str] = []
    for name in SECRET_SETTINGS:  # the one list of secret settings
        value = getattr(settings, name)
        if not value:
            continue
        if name == "database_url":  # the password, in the userinfo or as ?password=
            found.extend(url_secrets(value, username=False))
        elif isinstance(value, SecretStr):
            found.append(value.get_secret_value())
        elif isinstance(value, Mapping):  # gateway tokens: the keys are the secrets
            found.extend(value)
        else:
            found.append(str(value))
    env = os.environ if environ is None else environ
    found.extend(env[name] for name in AWS_SECRET_VARIABLES if env.get(name))
    return tuple(dict.fromkeys(s for s in found if s))
