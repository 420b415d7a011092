"""The Kafka settings: which brokers, how topics are named and laid out, TLS and SASL.

A section of :class:`oriole.environment.settings.Settings`; whether the TLS/SASL settings
work together is checked across the section in :mod:`oriole.environment.settings_checks`.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, Field, field_validator

from oriole.environment.settings_values import (
    OptionalPath,
    OptionalSecret,
    OptionalText,
    blank_is_unset,
    upper_case,
)

__all__ = [
    "MAX_TOPIC_PREFIX_LENGTH",
    "KafkaSaslMechanism",
    "KafkaSecurityProtocol",
    "KafkaSettings",
]

#: Longest topic suffix in :mod:`oriole.kafka.topics` is ``.experiments.rejected`` (21
#: characters) and Kafka topic names are limited to 249 characters.
MAX_TOPIC_PREFIX_LENGTH = 249 - len(".experiments.rejected")

KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
KafkaSaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

#: Kafka spells these in upper case; ``sasl_ssl`` is accepted too.
_Protocol = Annotated[KafkaSecurityProtocol, BeforeValidator(upper_case)]
_Mechanism = Annotated[
    KafkaSaslMechanism | None, BeforeValidator(upper_case), BeforeValidator(blank_is_unset)
]

_TOPIC_CHARS = re.compile(r"^[A-Za-z0-9._-]+$")
_HOST_PORT = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>[0-9]+)$")


class KafkaSettings(BaseModel):
    """Where the event log lives and how Oriole's clients reach it."""

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
    kafka_security_protocol: _Protocol = Field(
        default="PLAINTEXT",
        description=(
            "How Oriole's Kafka clients talk to the brokers: PLAINTEXT, SSL (TLS), "
            "SASL_PLAINTEXT or SASL_SSL. The embedded Tansu broker is plaintext only."
        ),
    )
    kafka_sasl_mechanism: _Mechanism = Field(
        default=None,
        description="SASL mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512); SASL_* only.",
    )
    kafka_sasl_username: OptionalText = Field(
        default=None, description="SASL user name; required with SASL_PLAINTEXT/SASL_SSL."
    )
    kafka_sasl_password: OptionalSecret = Field(
        default=None, description="SASL password; required with SASL_PLAINTEXT/SASL_SSL."
    )
    kafka_ssl_cafile: OptionalPath = Field(
        default=None,
        description="PEM file of the CA(s) that signed the brokers' certificates; unset: "
        "the system's CAs. SSL/SASL_SSL only.",
    )
    kafka_ssl_certfile: OptionalPath = Field(
        default=None,
        description="PEM client certificate for mutual TLS (needs kafka_ssl_keyfile).",
    )
    kafka_ssl_keyfile: OptionalPath = Field(
        default=None,
        description="PEM private key of kafka_ssl_certfile (needs kafka_ssl_certfile).",
    )
    kafka_ssl_key_password: OptionalSecret = Field(
        default=None, description="Password of an encrypted kafka_ssl_keyfile."
    )
    kafka_ssl_check_hostname: bool = Field(
        default=True,
        description="Check that a broker's certificate names the host connected to.",
    )

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
