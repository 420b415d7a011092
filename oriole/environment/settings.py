"""Oriole's settings: environment, ``.env`` file, TOML file, defaults — in that order.

Every setting has an environment variable ``ORIOLE_<NAME>`` (e.g. ``ORIOLE_GATEWAY_PORT``).
Values are looked up, highest priority first, in:

1. keyword arguments to :func:`load_settings` (used by the CLI for its flags and by tests);
2. the process environment;
3. the ``.env`` file in the working directory;
4. the TOML file: ``ORIOLE_CONFIG_FILE`` if set (it must exist), else
   ``<home>/config.toml`` if that file exists;
5. the defaults below.

:func:`load_settings` reports a bad value as :class:`oriole.errors.ValidationError` whose
``field`` is the environment variable, so the user knows what to change whichever of the
sources the value came from. ``docs/configuration.md`` lists every setting.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import pydantic
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from oriole.errors import ValidationError
from oriole.redaction import redact_url, url_secrets

__all__ = [
    "ENV_PREFIX",
    "SECRET_SETTINGS",
    "LogLevel",
    "Settings",
    "SettingsError",
    "env_var_name",
    "load_settings",
    "redact_url",  # re-exported from oriole.redaction, the one implementation
    "secret_values",
]

ENV_PREFIX = "ORIOLE_"
DEFAULT_HOME = Path("~/.oriole")
CONFIG_FILE_NAME = "config.toml"
DEFAULT_ENV_FILE = Path(".env")
_NOT_IN_TOML = ("home", "config_file")

#: The embedded PostgreSQL makes every parent directory of its data directory readable by its
#: service user; under /root that would open the administrator's home to other users.
FORBIDDEN_PG_PARENT = Path("/root")
#: The embedded PostgreSQL's data directory when ``<home>/pgdata`` would be under /root.
ROOT_FALLBACK_PG_DIR = Path("/var/lib/oriole/pgdata")

#: Longest topic suffix in :mod:`oriole.kafka.topics` is ``.experiments.rejected`` (21
#: characters) and Kafka topic names are limited to 249 characters.
MAX_TOPIC_PREFIX_LENGTH = 249 - len(".experiments.rejected")

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
KafkaSaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
DatabaseSslMode = Literal["disable", "prefer", "require", "verify-ca", "verify-full"]

#: Settings that hold secrets: each can also be read from the file named by
#: ``ORIOLE_<NAME>_FILE`` (container secret stores), and their values are redacted from
#: logs, error messages and events (:func:`secret_values`).
SECRET_SETTINGS: tuple[str, ...] = (
    "database_url",
    "gateway_tokens",
    "kafka_sasl_password",
    "kafka_ssl_key_password",
    "ollama_api_key",
    "openai_api_key",
)
#: AWS credentials Oriole never reads itself (botocore does) but must not echo either.
AWS_SECRET_VARIABLES: tuple[str, ...] = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
)
FILE_SUFFIX = "_FILE"

_TOPIC_CHARS = re.compile(r"^[A-Za-z0-9._-]+$")
_HOST_PORT = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>[0-9]+)$")
_DSN_SCHEMES = ("postgresql://", "postgres://")
#: Optional path settings: empty means unset, "~" is expanded.
_OPTIONAL_PATHS = (
    "config_file",
    "embedded_pg_dir",
    "price_file",
    "kafka_ssl_cafile",
    "kafka_ssl_certfile",
    "kafka_ssl_keyfile",
    "database_sslrootcert",
)


TokenScope = Literal["read", "write"]


class GatewayToken(BaseModel):
    """A gateway token with a name: the audit trail records the name, never the token."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scope: TokenScope
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._@-]{1,64}$")


class LlmRateLimit(BaseModel):
    """Request and token limits per minute for one model (unset = unlimited)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(default=None, ge=1)


def _split_list(value: object, separator: str) -> object:
    """A list setting from the environment: a JSON list, or items joined by ``separator``."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"is not a valid JSON list: {exc}") from None
    return [part.strip() for part in text.split(separator) if part.strip()]


def _json_object(value: object, example: str) -> object:
    """A dict setting from the environment: a JSON object, empty meaning ``{}``.

    The error never quotes the text (it may hold secrets), only the expected shape.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        return {}
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError(f"is not a JSON object like {example}") from None
    if not isinstance(parsed, dict):
        raise ValueError(f"must be a JSON object like {example}")
    return parsed


def env_var_name(field_name: str) -> str:
    """The environment variable that sets ``field_name`` (``gateway_port`` -> ``ORIOLE_...``)."""
    return f"{ENV_PREFIX}{field_name.upper()}"


def _expand(path: Path) -> Path:
    """``~`` expanded and made absolute, so that relative paths do not depend on later cwd."""
    return Path(os.path.abspath(path.expanduser()))


class Settings(BaseSettings):
    """All of Oriole's configuration. Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=DEFAULT_ENV_FILE,
        env_file_encoding="utf-8",
        # Other tools' variables in a shared .env are none of our business; ORIOLE_ ones are.
        dotenv_filtering="match_prefix",
        case_sensitive=False,
        # Typos in .env or TOML files are errors, not silently ignored settings.
        extra="forbid",
        validate_default=True,
        frozen=True,
    )

    config_file: Path | None = Field(
        default=None,
        description=(
            "TOML file to read settings from. If unset, <home>/config.toml is read when it "
            "exists. After loading, holds the TOML file that was actually read (or None)."
        ),
    )
    home: Path = Field(
        default=DEFAULT_HOME,
        description="Oriole's state directory: default config file, logs, embedded PostgreSQL.",
    )

    # Kafka
    kafka_bootstrap_servers: str = Field(
        default="",
        description=(
            "Comma-separated host:port list of Kafka brokers. Empty: start the embedded "
            "Tansu broker (memory only, everything is lost when it stops)."
        ),
    )
    kafka_topic_prefix: str = Field(
        default="oriole",
        description="Prefix of every Oriole topic name, e.g. '<prefix>.runs.events'.",
    )
    kafka_partitions: int = Field(
        default=4,
        ge=1,
        le=256,
        description=(
            "Partitions per topic. Fixed at topic creation: the embedded broker cannot add "
            "partitions later."
        ),
    )
    kafka_replication_factor: int = Field(
        default=1,
        ge=1,
        le=16,
        description="Replication factor of created topics (1 for the embedded broker).",
    )
    kafka_client_id: str = Field(
        default="oriole",
        min_length=1,
        description="Kafka client id prefix, shown in broker logs and metrics.",
    )
    kafka_broker_kind: Literal["auto", "kafka", "tansu"] = Field(
        default="auto",
        description=(
            "What the configured bootstrap servers run: `tansu` applies the client fixes the "
            "embedded Tansu broker needs (e.g. a worker joining a stack started by "
            "`oriole up`); `auto` means tansu for the embedded broker, kafka otherwise."
        ),
    )
    kafka_security_protocol: KafkaSecurityProtocol = Field(
        default="PLAINTEXT",
        description=(
            "How Oriole's Kafka clients talk to the brokers: PLAINTEXT, SSL (TLS), "
            "SASL_PLAINTEXT or SASL_SSL. The embedded Tansu broker is plaintext only."
        ),
    )
    kafka_sasl_mechanism: KafkaSaslMechanism | None = Field(
        default=None,
        description="SASL mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512); SASL_* only.",
    )
    kafka_sasl_username: str | None = Field(
        default=None, description="SASL user name; required with SASL_PLAINTEXT/SASL_SSL."
    )
    kafka_sasl_password: SecretStr | None = Field(
        default=None, description="SASL password; required with SASL_PLAINTEXT/SASL_SSL."
    )
    kafka_ssl_cafile: Path | None = Field(
        default=None,
        description="PEM file of the CA(s) that signed the brokers' certificates; unset: "
        "the system's CAs. SSL/SASL_SSL only.",
    )
    kafka_ssl_certfile: Path | None = Field(
        default=None,
        description="PEM client certificate for mutual TLS (needs kafka_ssl_keyfile).",
    )
    kafka_ssl_keyfile: Path | None = Field(
        default=None,
        description="PEM private key of kafka_ssl_certfile (needs kafka_ssl_certfile).",
    )
    kafka_ssl_key_password: SecretStr | None = Field(
        default=None, description="Password of an encrypted kafka_ssl_keyfile."
    )
    kafka_ssl_check_hostname: bool = Field(
        default=True,
        description="Check that a broker's certificate names the host connected to.",
    )

    # PostgreSQL
    database_url: str = Field(
        default="",
        repr=False,
        description=(
            "PostgreSQL DSN (postgresql://user:password@host:port/db). Empty: start the "
            "embedded PostgreSQL server in embedded_pg_dir."
        ),
    )
    database_pool_min_size: int = Field(
        default=1, ge=0, le=100, description="Connections the pool keeps open when idle."
    )
    database_pool_max_size: int = Field(
        default=10,
        ge=1,
        le=100,
        description="Most connections the pool opens; at least database_pool_min_size.",
    )
    database_command_timeout_seconds: float = Field(
        default=60.0, gt=0, le=3600, description="Longest a single SQL statement may run."
    )
    database_sslmode: DatabaseSslMode | None = Field(
        default=None,
        description=(
            "TLS to PostgreSQL: disable, prefer, require, verify-ca or verify-full; unset: "
            "the DSN's own ?sslmode= (libpq default prefer). Overrides the DSN."
        ),
    )
    database_sslrootcert: Path | None = Field(
        default=None,
        description="PEM file of the CA that signed the server certificate (verify-ca/-full).",
    )
    projection_batch_size: int = Field(
        default=2000,
        ge=1,
        le=100_000,
        description="Most run events the projector writes in one transaction.",
    )
    embedded_pg_dir: Path | None = Field(
        default=None,
        description=(
            "Data directory of the embedded PostgreSQL (default <home>/pgdata). Must not be "
            "under /root."
        ),
    )

    # Gateway
    gateway_host: str = Field(
        default="127.0.0.1",
        min_length=1,
        description="Address the websocket/HTTP gateway listens on.",
    )
    gateway_port: int = Field(
        default=8080, ge=1, le=65535, description="Port the websocket/HTTP gateway listens on."
    )
    gateway_tokens: Annotated[dict[str, TokenScope | GatewayToken], NoDecode] = Field(
        default_factory=dict,
        repr=False,
        description=(
            'Bearer tokens of the gateway as a JSON object {"<token>": "read" | "write"} or '
            '{"<token>": {"scope": "write", "name": "alice"}}; write implies read. The audit '
            "trail records the name (unnamed: token- and 8 hex digits of its SHA-256). Empty: "
            "no authentication, loopback-only bind."
        ),
    )
    gateway_client_queue_size: int = Field(
        default=2000,
        ge=10,
        le=1_000_000,
        description="Frames buffered per websocket client before it is told it lags and dropped.",
    )
    gateway_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "Host names the gateway answers to (any port; '*' for any), comma-separated or a "
            "JSON list. Empty: localhost, 127.0.0.1 and [::1] only, which refuses DNS "
            "rebinding; set the public names when binding a non-loopback address."
        ),
    )
    gateway_max_body_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1024,
        le=256 * 1024 * 1024,
        description=(
            "Largest body of POST /api/experiments (a start event may embed a big maze); "
            "every other route accepts no body."
        ),
    )
    gateway_max_concurrent_bodies: int = Field(
        default=4,
        ge=1,
        le=1000,
        description=(
            "Request bodies the gateway reads at once; more get 503 with Retry-After, so "
            "memory stays bounded by this times the body limit."
        ),
    )
    gateway_rate_limit_per_token: int = Field(
        default=600,
        ge=0,
        le=1_000_000,
        description="Requests per minute one token may make (429 beyond); 0: unlimited.",
    )
    gateway_rate_limit_per_address: int = Field(
        default=600,
        ge=0,
        le=1_000_000,
        description="Requests per minute one client address may make (429 beyond); 0: unlimited.",
    )
    gateway_database_timeout: float = Field(
        default=3.0,
        gt=0,
        le=300,
        description=(
            "Seconds the read API waits for a PostgreSQL connection and its queries before "
            "answering 503."
        ),
    )

    # Logging and limits
    log_level: LogLevel = Field(
        default="INFO",
        description="Minimum level of log records: DEBUG, INFO, WARNING or ERROR (any case).",
    )
    log_format: Literal["console", "json"] = Field(
        default="console",
        description="'console' for people, 'json' for log collectors (one object per line).",
    )
    max_concurrent_runs: int = Field(
        default=50,
        ge=1,
        le=10000,
        description="Most runs one worker process executes at the same time.",
    )
    maze_dirs: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description=(
            "Extra folders of maze JSON files. In the environment: a JSON list or "
            "paths separated by ':'."
        ),
    )

    # LLM providers
    ollama_endpoints: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://127.0.0.1:11434"],
        description=(
            "Ollama servers, tried with health checks and failover. In the environment: "
            "a JSON list or URLs separated by ','."
        ),
    )
    ollama_api_key: SecretStr | None = Field(
        default=None,
        description="Key for an Ollama behind an authenticating proxy "
        "(sent as Bearer token and X-API-Key).",
    )
    openai_endpoints: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["https://api.openai.com/v1"],
        description=(
            "OpenAI-compatible servers (vLLM, llama.cpp, LM Studio, OpenAI), base URLs "
            "ending in /v1; a JSON list or URLs separated by ','."
        ),
    )
    openai_api_key: SecretStr | None = Field(
        default=None, description="Bearer key for the OpenAI-compatible servers."
    )
    bedrock_region: str | None = Field(
        default=None,
        description="AWS region of Bedrock; empty: from the AWS chain (AWS_REGION, config).",
    )
    bedrock_endpoints: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Bedrock runtime URLs (e.g. a VPC endpoint); empty: the region's public one.",
    )
    llm_request_timeout_seconds: float = Field(
        default=120.0, gt=0, le=3600, description="Whole-request limit of one model call attempt."
    )
    llm_connect_timeout_seconds: float = Field(
        default=10.0, gt=0, le=600, description="Limit on connecting to a model server."
    )
    llm_max_attempts: int = Field(
        default=4, ge=1, le=20, description="Attempts per model call (1 = no retries)."
    )
    llm_backoff_base_seconds: float = Field(
        default=0.5, ge=0, le=600, description="First retry delay; doubles per attempt, jittered."
    )
    llm_backoff_max_seconds: float = Field(
        default=30.0, ge=0, le=3600, description="Longest delay between attempts."
    )
    llm_retry_after_max_seconds: float = Field(
        default=60.0, ge=0, le=3600, description="Longest server Retry-After that is honoured."
    )
    llm_breaker_failure_threshold: int = Field(
        default=3,
        ge=1,
        le=1000,
        description="Consecutive failures that open an endpoint's circuit.",
    )
    llm_breaker_reset_seconds: float = Field(
        default=30.0, gt=0, le=3600, description="How long an open circuit stays open."
    )
    llm_health_check_interval_seconds: float = Field(
        default=15.0, gt=0, le=3600, description="Probe interval (/api/tags, /v1/models)."
    )
    llm_endpoint_max_concurrency: int = Field(
        default=4, ge=1, le=10_000, description="Requests in flight per model server."
    )
    llm_rate_limits: Annotated[dict[str, LlmRateLimit], NoDecode] = Field(
        default_factory=dict,
        description=(
            'Per-model limits as JSON: {"<model>": {"requests_per_minute": 60, '
            '"tokens_per_minute": 100000}}.'
        ),
    )
    llm_endpoint_allowlist_only: bool = Field(
        default=True,
        description=(
            "A start event's agent.endpoint must be one of the configured endpoints "
            "(keys are never sent to other hosts)."
        ),
    )
    price_file: Path | None = Field(
        default=None,
        description="TOML price table merged over the built-in one (see docs/pricing.md).",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Put the TOML file below the environment and ``.env``; ``ORIOLE_<NAME>_FILE``
        secrets rank with the environment (pydantic's secrets-dir source is not used)."""
        secret_files = _SecretFilesSource(settings_cls, env_settings, dotenv_settings)
        higher = (init_settings, secret_files, env_settings, dotenv_settings)
        toml_path = _locate_toml_file(higher)
        if toml_path is None:
            return higher
        return (
            _FixedValuesSource(settings_cls, {"config_file": toml_path}),
            *higher,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_path),
        )

    # -- validators --------------------------------------------------------------------

    @field_validator("home", mode="before")
    @classmethod
    def _empty_home_is_default(cls, value: object) -> object:
        return DEFAULT_HOME if isinstance(value, str) and not value.strip() else value

    @field_validator("home", mode="after")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return _expand(value)

    @field_validator(*_OPTIONAL_PATHS, mode="before")
    @classmethod
    def _empty_path_is_unset(cls, value: object) -> object:
        """``ORIOLE_EMBEDDED_PG_DIR=`` means "the default", not the working directory."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator(*_OPTIONAL_PATHS, mode="after")
    @classmethod
    def _expand_optional_path(cls, value: Path | None) -> Path | None:
        return None if value is None else _expand(value)

    @field_validator("kafka_bootstrap_servers", mode="after")
    @classmethod
    def _check_bootstrap_servers(cls, value: str) -> str:
        entries = [entry.strip() for entry in value.split(",")]
        if entries == [""]:
            return ""
        for entry in entries:
            match = _HOST_PORT.match(entry)
            if match is None:
                raise ValueError(
                    f"{entry!r} is not host:port; expected a comma-separated list like "
                    "'kafka1:9092,kafka2:9092' (or empty for the embedded broker)"
                )
            port = int(match["port"])
            if not 1 <= port <= 65535:
                raise ValueError(f"port {port} in {entry!r} is not between 1 and 65535")
        return ",".join(entries)

    @field_validator("kafka_topic_prefix", mode="after")
    @classmethod
    def _check_topic_prefix(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be empty")
        if not _TOPIC_CHARS.match(value):
            raise ValueError(
                f"{value!r} contains characters Kafka does not allow in topic names; "
                "use only letters, digits, '.', '_' and '-'"
            )
        if value in {".", ".."}:
            raise ValueError("must not be '.' or '..'")
        if len(value) > MAX_TOPIC_PREFIX_LENGTH:
            raise ValueError(
                f"is {len(value)} characters long; at most {MAX_TOPIC_PREFIX_LENGTH} keep "
                "every topic name within Kafka's 249-character limit"
            )
        return value

    @field_validator("database_url", mode="after")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        value = value.strip()
        if value and not value.startswith(_DSN_SCHEMES):
            # Never echo the value: a DSN may hold a password.
            raise ValueError(
                "must start with postgresql:// or postgres:// (or be empty for the "
                "embedded PostgreSQL)"
            )
        return value

    @field_validator("database_pool_max_size", mode="after")
    @classmethod
    def _check_pool_sizes(cls, value: int, info: ValidationInfo) -> int:
        minimum = info.data.get("database_pool_min_size")
        if isinstance(minimum, int) and value < minimum:
            raise ValueError(
                f"is {value}, below {env_var_name('database_pool_min_size')}={minimum}"
            )
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("kafka_security_protocol", "kafka_sasl_mechanism", mode="before")
    @classmethod
    def _upper_kafka_names(cls, value: object) -> object:
        """Kafka spells these in upper case; accept ``sasl_ssl`` too."""
        return value.strip().upper() if isinstance(value, str) and value.strip() else value

    @field_validator("database_sslmode", mode="before")
    @classmethod
    def _lower_sslmode(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) and value.strip() else value

    @field_validator("maze_dirs", mode="before")
    @classmethod
    def _split_maze_dirs(cls, value: object) -> object:
        """Accept a JSON list or an os.pathsep-separated string (like PATH)."""
        return _split_list(value, os.pathsep)

    @field_validator(
        "ollama_endpoints",
        "openai_endpoints",
        "bedrock_endpoints",
        "gateway_allowed_hosts",
        mode="before",
    )
    @classmethod
    def _split_comma_lists(cls, value: object) -> object:
        """A JSON list or items separated by commas (endpoint URLs, host names)."""
        return _split_list(value, ",")

    @field_validator("ollama_endpoints", "openai_endpoints", "bedrock_endpoints", mode="after")
    @classmethod
    def _check_endpoints(cls, value: list[str]) -> list[str]:
        cleaned: list[str] = []
        for url in value:
            url = url.strip().rstrip("/")
            parsed = urlsplit(url)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise ValueError(f"{redact_url(url)!r} is not an http(s) URL")
            if url not in cleaned:
                cleaned.append(url)
        return cleaned

    @field_validator(
        "bedrock_region",
        "ollama_api_key",
        "openai_api_key",
        "kafka_sasl_mechanism",
        "kafka_sasl_username",
        "kafka_sasl_password",
        "kafka_ssl_key_password",
        "database_sslmode",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("llm_rate_limits", mode="before")
    @classmethod
    def _parse_rate_limits(cls, value: object) -> object:
        return _json_object(value, '{"qwen2.5:7b": {"requests_per_minute": 60}}')

    @field_validator("gateway_tokens", mode="before")
    @classmethod
    def _parse_tokens(cls, value: object) -> object:
        """A JSON object; empty means no tokens. Never echo the text: it holds secrets."""
        return _json_object(
            value, '{"<token>": "read", "<other>": {"scope": "write", "name": "alice"}}'
        )

    @field_validator("gateway_allowed_hosts", mode="after")
    @classmethod
    def _check_allowed_hosts(cls, value: list[str]) -> list[str]:
        names = [name.strip().lower() for name in value if name.strip()]
        for name in names:
            if name != "*" and not re.fullmatch(r"[a-z0-9_.-]{1,253}|\[[0-9a-f:.]+\]", name):
                raise ValueError(
                    f"{name!r} is not a host name (no scheme or port; IPv6 in brackets)"
                )
        return names

    @field_validator("maze_dirs", mode="after")
    @classmethod
    def _expand_maze_dirs(cls, value: list[Path]) -> list[Path]:
        return [_expand(path) for path in value]

    @model_validator(mode="after")
    def _check_security(self) -> Settings:
        """Refuse TLS/SASL combinations that cannot work, all at once, naming each variable."""
        problems = _kafka_security_problems(self) + _database_tls_problems(self)
        if problems:
            raise ValueError("\n".join(f"{_FIELD_MARKER}{name}: {why}" for name, why in problems))
        return self

    @model_validator(mode="after")
    def _check_pg_dir(self) -> Settings:
        """Refuse an explicit data directory under /root as soon as the settings load.

        The default ``<home>/pgdata`` is checked only when used (:attr:`resolved_pg_dir`),
        so that commands that never start PostgreSQL work as root with the default home.
        """
        if self.embedded_database and self.embedded_pg_dir is not None:
            problem = _pg_dir_problem(self.embedded_pg_dir, from_home=False)
            if problem is not None:
                raise ValueError(_PG_DIR_MARKER + problem)
        return self

    # -- derived values ----------------------------------------------------------------

    @property
    def embedded_broker(self) -> bool:
        """True when Oriole must start its own (Tansu) broker."""
        return not self.kafka_bootstrap_servers

    @property
    def tansu_broker(self) -> bool:
        """True when the broker in use is Tansu and needs the client fixes."""
        if self.kafka_broker_kind == "auto":
            return self.embedded_broker
        return self.kafka_broker_kind == "tansu"

    @property
    def embedded_database(self) -> bool:
        """True when Oriole must start its own PostgreSQL server."""
        return not self.database_url

    @property
    def resolved_pg_dir(self) -> Path:
        """Data directory of the embedded PostgreSQL.

        The default is ``<home>/pgdata``; when that is under /root (root with the default
        home) it is :data:`ROOT_FALLBACK_PG_DIR` instead. An explicit directory under /root
        raises :class:`SettingsError` naming ``ORIOLE_EMBEDDED_PG_DIR``.
        """
        explicit = self.embedded_pg_dir
        if explicit is None:
            path = self.home / "pgdata"
            if _pg_dir_problem(path, from_home=True) is not None:
                return ROOT_FALLBACK_PG_DIR
            return path
        problem = _pg_dir_problem(explicit, from_home=False)
        if problem is not None:
            raise SettingsError([(env_var_name("embedded_pg_dir"), problem)])
        return explicit

    @property
    def log_dir(self) -> Path:
        """Where background processes (embedded broker, database) write their logs."""
        return self.home / "logs"


def _pg_dir_problem(path: Path, *, from_home: bool) -> str | None:
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


#: Prefix of the model-level pg-dir error, so it can be attributed to ORIOLE_EMBEDDED_PG_DIR.
_PG_DIR_MARKER = "embedded_pg_dir: "
#: Prefix of each line of a model-level error about one field: ``@<field>: <reason>``.
_FIELD_MARKER = "@"

_SASL_PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")
_TLS_PROTOCOLS = ("SSL", "SASL_SSL")


def _kafka_security_problems(settings: Settings) -> list[tuple[str, str]]:
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


def _database_tls_problems(settings: Settings) -> list[tuple[str, str]]:
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


def secret_values(settings: Settings, environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Every secret value the settings hold, plus the AWS secrets in ``environ``.

    Fed to :class:`oriole.redaction.Redactor`, so that an upstream error echoing a key, or a
    library logging a DSN, cannot leak it. ``environ`` defaults to the process environment
    (botocore reads the AWS keys from there).
    """
    found: list[str] = []
    keys = (
        settings.ollama_api_key,
        settings.openai_api_key,
        settings.kafka_sasl_password,
        settings.kafka_ssl_key_password,
    )
    for key in keys:
        if key is not None:
            found.append(key.get_secret_value())
    found.extend(settings.gateway_tokens)
    if settings.database_url:  # the password, in the userinfo or as ?password=
        found.extend(url_secrets(settings.database_url, username=False))
    env = os.environ if environ is None else environ
    found.extend(env[name] for name in AWS_SECRET_VARIABLES if env.get(name))
    return tuple(dict.fromkeys(s for s in found if s))


class _SecretFilesSource(PydanticBaseSettingsSource):
    """``ORIOLE_<NAME>_FILE=/run/secrets/x`` for every secret setting (Docker, Kubernetes).

    Looked up in the environment and in ``.env`` (whose strict key check would otherwise
    call the ``_FILE`` keys unknown settings). The file's content, without its trailing
    newline, is the value. Setting both ``ORIOLE_<NAME>`` and ``ORIOLE_<NAME>_FILE`` is an
    error: which one wins would be a guess.
    """

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        env: PydanticBaseSettingsSource,
        dotenv: PydanticBaseSettingsSource,
    ) -> None:
        super().__init__(settings_cls)
        self._values: dict[str, str] = {}
        problems: list[tuple[str, str]] = []
        plain = [_env_vars(env), _env_vars(dotenv)]
        for field_name in SECRET_SETTINGS:
            variable = env_var_name(field_name) + FILE_SUFFIX
            key = variable.lower()
            path_text = None
            for source in (env, dotenv):
                values = _env_vars(source)
                if key in values and path_text is None:
                    path_text = values[key]
                if isinstance(source, EnvSettingsSource) and key in source.env_vars:
                    # Not a setting of its own: hide it from .env's unknown-key check.
                    source.env_vars = {k: v for k, v in source.env_vars.items() if k != key}
            if path_text is None or not path_text.strip():
                continue
            if any(
                (values.get(env_var_name(field_name).lower()) or "").strip() for values in plain
            ):
                problems.append(
                    (
                        variable,
                        f"both {env_var_name(field_name)} and {variable} are set; keep only one",
                    )
                )
                continue
            path = _expand(Path(path_text.strip()))
            try:
                content = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
                problems.append((variable, f"cannot read {path}: {reason}"))
                continue
            self._values[field_name] = content.rstrip("\r\n")
        if problems:
            raise SettingsError(problems)

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._values)


def _env_vars(source: PydanticBaseSettingsSource) -> dict[str, str | None]:
    """The (lower-cased) variables an environment or ``.env`` source read."""
    if isinstance(source, EnvSettingsSource):
        return dict(source.env_vars)
    return {}


class SettingsError(ValidationError):
    """One or more bad settings; ``field``/``reason`` describe the first one.

    ``problems`` lists every ``(ORIOLE_VARIABLE, reason)`` pair so that a user can fix them
    all in one go.
    """

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        if not problems:
            raise ValueError("SettingsError needs at least one problem")
        self.problems: tuple[tuple[str, str], ...] = tuple(problems)
        field, reason = problems[0]
        super().__init__(field, reason)
        if len(problems) > 1:
            lines = "\n".join(f"  {name}: {why}" for name, why in problems)
            self.args = (f"{len(problems)} invalid settings:\n{lines}",)


class _FixedValuesSource(PydanticBaseSettingsSource):
    """A source with precomputed values (records which TOML file was read)."""

    def __init__(self, settings_cls: type[BaseSettings], values: Mapping[str, Any]) -> None:
        super().__init__(settings_cls)
        self._values = dict(values)

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._values)


def _first_value(sources: tuple[PydanticBaseSettingsSource, ...], name: str) -> Any:
    """The value of setting ``name`` from the highest-priority source that has one."""
    for source in sources:
        values = source()
        if values.get(name) is not None:
            return values[name]
    return None


def _locate_toml_file(sources: tuple[PydanticBaseSettingsSource, ...]) -> Path | None:
    """The TOML file to read: explicit ``config_file`` (must exist) or ``<home>/config.toml``."""
    explicit = _first_value(sources, "config_file")
    if explicit not in (None, ""):
        path = _expand(Path(str(explicit)))
        if not path.is_file():
            raise SettingsError([(env_var_name("config_file"), f"file not found: {path}")])
        candidate = path
    else:
        home = _first_value(sources, "home")
        home_path = _expand(Path(str(home)) if home not in (None, "") else DEFAULT_HOME)
        candidate = home_path / CONFIG_FILE_NAME
        if not candidate.is_file():
            return None
    try:
        with candidate.open("rb") as handle:
            document = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(
            [(env_var_name("config_file"), f"{candidate} is not valid TOML: {exc}")]
        ) from None
    except OSError as exc:
        raise SettingsError(
            [(env_var_name("config_file"), f"cannot read {candidate}: {exc.strerror}")]
        ) from None
    # These two decide which TOML file is read, so the file itself cannot set them.
    for name in _NOT_IN_TOML:
        if name in document:
            raise SettingsError(
                [(env_var_name(name), f"cannot be set in the TOML file {candidate}")]
            )
    return candidate


def _describe(error: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(ORIOLE_VARIABLE, reason)`` pairs for one pydantic error (a model-level one may
    list several fields, one ``@field: reason`` line each)."""
    loc = error.get("loc", ())
    message = str(error.get("msg", "invalid value"))
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    if error.get("type") == "extra_forbidden":
        name = str(loc[0]) if loc else "?"
        if name.upper().startswith(ENV_PREFIX):
            name = name[len(ENV_PREFIX) :]
        return [(env_var_name(name), f"unknown setting {name!r} (check the spelling)")]
    if not loc and message.startswith(_FIELD_MARKER):
        problems = []
        for line in message[len(_FIELD_MARKER) :].split("\n" + _FIELD_MARKER):
            name, _, reason = line.partition(": ")
            problems.append((env_var_name(name), reason))
        return problems
    if not loc and message.startswith(_PG_DIR_MARKER):
        return [(env_var_name("embedded_pg_dir"), message[len(_PG_DIR_MARKER) :])]
    if not loc:
        return [("ORIOLE_*", message)]
    return [(env_var_name(str(loc[0])), message)]


def load_settings(*, env_file: str | Path | None = DEFAULT_ENV_FILE, **overrides: Any) -> Settings:
    """Build :class:`Settings` from all sources, with ``overrides`` winning over all of them.

    ``env_file`` is the ``.env`` file to read (``None``: none). Raises :class:`SettingsError`
    (an :class:`oriole.errors.ValidationError`) naming the ``ORIOLE_...`` variable at fault.
    """
    try:
        return Settings(_env_file=env_file, **overrides)
    except pydantic.ValidationError as exc:
        raise SettingsError(
            [problem for err in exc.errors() for problem in _describe(err)]
        ) from None
