"""Secrets stay secret: one redactor, logs filtered at the handler, provider error text
redacted before it becomes an event, and secrets read from files (container secret stores).

Assertions never print the text they search (a failing test must not show the secret).
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest
import pytest_asyncio

from oriole.environment.logs import QUIET_LIBRARIES, RedactingFilter, configure_logging
from oriole.environment.settings import SECRET_SETTINGS, SettingsError, env_var_name, load_settings
from oriole.environment.settings import secret_values as settings_secrets
from oriole.events import ModelCalled, RunFinished
from oriole.generators import generate
from oriole.llm.prompts import DEFAULT_PROMPT_VERSION
from oriole.redaction import MASK, Redactor, redact_url
from projections.database import DatabaseError, create_pool, redact
from tests.fake_llm import FakeOpenAI, HttpError, RecordedRequest
from tests.kafka_support import (
    TopicReader,
    eventually,
    finished,
    make_stack,
    publish,
    run_events,
    running_projector,
    running_worker,
    start_event,
)

KEY = "sk-live-" + uuid.uuid4().hex  # a fresh fake key: it can only appear if it leaked
PASSWORD = "pw-" + uuid.uuid4().hex[:12] + "/+@:"  # characters that need percent-encoding


def assert_absent(secret: str, text: str, where: str) -> None:
    """Fail without showing ``text``."""
    if secret in text:
        pytest.fail(f"a secret leaked into {where}", pytrace=False)


# --- the one redactor ---------------------------------------------------------------------


def test_redact_url_drops_userinfo_fragment_and_secret_query_values() -> None:
    dsn = "postgresql://oriole:hunter22@db:5432/oriole?sslmode=require&password=q-secret#x"
    shown = redact_url(dsn)
    assert shown == "postgresql://db:5432/oriole?sslmode=require&password=***"
    assert redact_url(dsn, keep_user=True).startswith("postgresql://oriole@db:5432/")
    assert redact_url("https://k:v@api.example/v1?key=abc") == "https://api.example/v1?key=***"
    assert redact_url("https://[::1]:8443/v1") == "https://[::1]:8443/v1"


def test_the_database_helper_uses_it_so_a_query_string_password_does_not_leak() -> None:
    shown = redact("postgresql://oriole@db/oriole?password=q-secret&host=/run/pg")
    assert_absent("q-secret", shown, "redact(dsn)")
    assert "host=/run/pg" in shown and "oriole@db" in shown


def test_the_redactor_masks_secrets_raw_and_percent_encoded_and_url_userinfo() -> None:
    redactor = Redactor([PASSWORD, KEY, None, ""])
    text = (
        f"auth failed for Bearer {KEY}; dsn postgresql://u:{quote(PASSWORD, safe='')}@h/db; "
        f"raw {PASSWORD}; other http://alice:wonder@example.com/x"
    )
    out = redactor(text)
    assert_absent(KEY, out, "redacted text")
    assert_absent(PASSWORD, out, "redacted text")
    assert_absent(quote(PASSWORD, safe=""), out, "redacted text")
    assert_absent("wonder", out, "redacted text")
    assert out.count(MASK) >= 4 and "example.com/x" in out
    assert "secrets" in repr(redactor) and KEY not in repr(redactor)


def test_secret_values_covers_every_secret_setting_and_the_aws_keys() -> None:
    settings = load_settings(
        env_file=None,
        openai_api_key="sk-openai-1234",
        ollama_api_key="ollama-5678",
        gateway_tokens={"gw-token-9999": "read"},
        database_url="postgresql://oriole:db-pass-1@db/oriole?password=db-pass-2",
        kafka_bootstrap_servers="kafka:9093",
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="oriole",
        kafka_sasl_password="sasl-pass-3",
    )
    environ = {"AWS_SECRET_ACCESS_KEY": "aws-secret-4", "AWS_SESSION_TOKEN": "aws-token-5"}
    found = set(settings_secrets(settings, environ))
    assert found == {
        "sk-openai-1234",
        "ollama-5678",
        "gw-token-9999",
        "db-pass-1",
        "db-pass-2",
        "sasl-pass-3",
        "aws-secret-4",
        "aws-token-5",
    }
    assert "oriole" not in found  # user names are not secrets (and would mask every word)


# --- logging --------------------------------------------------------------------------------


@pytest.fixture
def oriole_handler() -> Iterator[tuple[logging.Handler, io.StringIO]]:
    """configure_logging's handler writing to a buffer; the root logger is restored after."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_levels = {name: logging.getLogger(name).level for name in QUIET_LIBRARIES}
    settings = load_settings(
        env_file=None,
        openai_api_key=KEY,
        database_url=f"postgresql://oriole:{quote(PASSWORD, safe='')}@db/oriole",
        log_format="json",
        log_level="DEBUG",
    )
    try:
        configure_logging(settings)
        handler = root.handlers[0]
        buffer = io.StringIO()
        handler.setStream(buffer)  # type: ignore[attr-defined]
        yield handler, buffer
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)


def test_chatty_libraries_are_kept_at_warning_even_at_debug(
    oriole_handler: tuple[logging.Handler, io.StringIO],
) -> None:
    for name in ("httpx", "httpcore", "botocore", "urllib3", "aiokafka"):
        assert logging.getLogger(name).level == logging.WARNING, name


def test_every_record_reaching_the_handler_is_redacted(
    oriole_handler: tuple[logging.Handler, io.StringIO],
) -> None:
    _, buffer = oriole_handler
    library = logging.getLogger("some.library")  # a third-party logger, any level
    library.warning('HTTP Request: POST %s "HTTP/1.1 200 OK"', "http://user:pw-1@h/api/chat")
    library.error("upstream answered: invalid key %s", KEY)
    library.error("dsn %(dsn)s", {"dsn": f"postgresql://u:{PASSWORD}@db/x"})
    try:
        raise RuntimeError(f"connect failed with {KEY}")
    except RuntimeError:
        library.exception("call failed")
    logging.getLogger("oriole.test").critical("bad format %d", "not a number")
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert len(lines) == 5
    everything = buffer.getvalue()
    assert_absent(KEY, everything, "the log output")
    assert_absent(PASSWORD, everything, "the log output")
    assert_absent("pw-1", everything, "the log output")
    assert "http://***@h/api/chat" in lines[0]["message"]
    assert "RuntimeError" in lines[3]["exception"] and MASK in lines[3]["exception"]


def test_a_dsn_with_a_password_in_its_query_string_never_reaches_a_log_line() -> None:
    """The projector's own line (through ``redact``) and a library logging the raw DSN."""
    query_secret = "q-" + uuid.uuid4().hex
    dsn = f"postgresql://oriole@db:5432/oriole?sslmode=require&password={query_secret}"
    settings = load_settings(env_file=None, database_url=dsn, log_format="json")
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    buffer = io.StringIO()
    try:
        configure_logging(settings)
        root.handlers[0].setStream(buffer)  # type: ignore[attr-defined]
        logging.getLogger("oriole.cli").info("projector connected to %s", redact(dsn))
        logging.getLogger("asyncpg").warning("connecting to %s", dsn)
        logging.getLogger("some.library").error("pool failed for %r", {"dsn": dsn})
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert len(lines) == 3
    assert_absent(query_secret, buffer.getvalue(), "the log output")
    assert "db:5432/oriole?sslmode=require&password=***" in lines[0]["message"]


def test_the_filter_also_redacts_the_console_format() -> None:
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(RedactingFilter(Redactor([KEY])))
    logger = logging.getLogger(f"test.console.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        raise ValueError(KEY)
    except ValueError:
        logger.exception("boom %s", KEY)
    assert_absent(KEY, buffer.getvalue(), "console log output")
    assert "ValueError" in buffer.getvalue()


# --- secrets from files ---------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in SECRET_SETTINGS:
        monkeypatch.delenv(env_var_name(name), raising=False)
        monkeypatch.delenv(env_var_name(name) + "_FILE", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("field", "content", "check"),
    [
        ("openai_api_key", f"{KEY}\n", lambda s: s.openai_api_key.get_secret_value() == KEY),
        ("ollama_api_key", f"{KEY}\r\n", lambda s: s.ollama_api_key.get_secret_value() == KEY),
        ("database_url", "postgresql://o:p@db/o\n", lambda s: s.database_url.endswith("@db/o")),
        (
            "gateway_tokens",
            json.dumps({KEY: "read"}),
            lambda s: list(s.gateway_tokens) == [KEY],
        ),
        (
            "kafka_sasl_password",
            f"{KEY}\n",
            lambda s: s.kafka_sasl_password.get_secret_value() == KEY,
        ),
    ],
)
def test_every_secret_setting_can_come_from_a_file(
    field: str, content: str, check: Any, clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_file = clean_env / "secret"
    secret_file.write_text(content)
    monkeypatch.setenv(env_var_name(field) + "_FILE", str(secret_file))
    extra: dict[str, Any] = {}
    if field == "kafka_sasl_password":
        extra = {
            "kafka_bootstrap_servers": "kafka:9093",
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_username": "oriole",
        }
    settings = load_settings(env_file=None, **extra)
    assert check(settings)
    assert field in SECRET_SETTINGS


def test_a_secret_file_named_in_dot_env_is_read_and_not_an_unknown_setting(
    clean_env: Path,
) -> None:
    (clean_env / "key").write_text(KEY + "\n")
    (clean_env / ".env").write_text(f"ORIOLE_OPENAI_API_KEY_FILE={clean_env / 'key'}\n")
    settings = load_settings(env_file=clean_env / ".env")
    assert settings.openai_api_key is not None
    assert settings.openai_api_key.get_secret_value() == KEY


def test_an_unreadable_secret_file_is_a_clear_error(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = clean_env / "nope"
    monkeypatch.setenv("ORIOLE_OPENAI_API_KEY_FILE", str(missing))
    with pytest.raises(SettingsError) as caught:
        load_settings(env_file=None)
    assert caught.value.field == "ORIOLE_OPENAI_API_KEY_FILE"
    assert str(missing) in caught.value.reason and "No such file" in caught.value.reason
    monkeypatch.setenv("ORIOLE_OPENAI_API_KEY_FILE", str(clean_env))  # a directory
    with pytest.raises(SettingsError, match="ORIOLE_OPENAI_API_KEY_FILE: cannot read"):
        load_settings(env_file=None)


def test_a_secret_set_both_directly_and_by_file_is_refused(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean_env / "key").write_text(KEY)
    monkeypatch.setenv("ORIOLE_OPENAI_API_KEY_FILE", str(clean_env / "key"))
    monkeypatch.setenv("ORIOLE_OPENAI_API_KEY", "sk-other-value")
    with pytest.raises(SettingsError) as caught:
        load_settings(env_file=None)
    assert caught.value.field == "ORIOLE_OPENAI_API_KEY_FILE"
    assert "ORIOLE_OPENAI_API_KEY and ORIOLE_OPENAI_API_KEY_FILE" in caught.value.reason
    assert_absent(KEY, str(caught.value), "the error")
    assert_absent("sk-other-value", str(caught.value), "the error")


# --- upstream error text echoing the key, end to end ------------------------------------------


class EchoingServer:
    """The brain of a fake OpenAI server whose errors quote the Authorization header, as some
    proxies and misconfigured gateways do: first a retryable 500, then a 401."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, request: RecordedRequest) -> HttpError:
        self.calls += 1
        echoed = request.header("authorization") or "(none)"
        if self.calls == 1:
            return HttpError(500, f"upstream proxy failed for credentials {echoed!r}")
        return HttpError(401, f"Incorrect API key provided: {echoed}")


@pytest_asyncio.fixture
async def pool(pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    created = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=4)
    try:
        yield created
    finally:
        await created.close()


@pytest.mark.slow
@pytest.mark.asyncio
async def test_a_key_echoed_by_the_server_reaches_no_event_log_or_archive_row(
    kafka_broker: str,
    topic_prefix: str,
    tmp_path: Path,
    pool: asyncpg.Pool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with FakeOpenAI(brain=EchoingServer()) as fake:
        stack = await make_stack(
            tmp_path,
            kafka_broker,
            topic_prefix,
            openai_endpoints=[fake.url],
            openai_api_key=KEY,
            llm_backoff_base_seconds=0.01,
            llm_backoff_max_seconds=0.05,
            llm_max_attempts=3,
        )
        run_id = f"echo-{uuid.uuid4().hex[:8]}"
        start = start_event(
            run_id,
            generate("backtracker", 11, 11, seed=7).to_dict(),
            agent={"provider": "openai", "model": "gpt-4o-mini"},
            prompt={"version": DEFAULT_PROMPT_VERSION},
        )
        async with (
            running_worker(stack),
            running_projector(stack, pool),
            TopicReader(stack.bootstrap, stack.topics.runs_events) as events_reader,
        ):
            await publish(stack.bootstrap, stack.topics.experiments_start, start, run_id.encode())
            await events_reader.until(finished([run_id]))

            async def archived() -> bool:
                status = await pool.fetchval(
                    "SELECT status FROM experiments WHERE run_id = $1", run_id
                )
                return status is not None and status != "running"

            await eventually(archived)
            async with TopicReader(stack.bootstrap, stack.topics.runs_commands) as intents:
                await intents.until(lambda records: any(r.key == run_id.encode() for r in records))
                intent_bytes = b"".join(r.value for r in intents.records)
            archive = await pool.fetch("SELECT * FROM run_events WHERE run_id = $1", run_id)
            projections = [
                await pool.fetch(f"SELECT * FROM {table} WHERE run_id = $1", run_id)
                for table in ("experiments", "model_calls", "agent_actions")
            ]

    # The server did receive the key, and did echo it: the test would see a leak.
    assert fake.chat_requests[0].header("authorization") == f"Bearer {KEY}"
    assert len(fake.chat_requests) >= 2

    # Leaks first, each reported without the text it was found in.
    topic_bytes = b"".join(r.value for r in events_reader.records) + intent_bytes
    assert_absent(KEY, topic_bytes.decode("utf-8", "replace"), "a Kafka record")
    rows = json.dumps([dict(r) for r in archive], default=str)
    rows += json.dumps([[dict(r) for r in table] for table in projections], default=str)
    assert_absent(KEY, rows, "the PostgreSQL archive or projections")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert_absent(KEY, logged + caplog.text, "a log record")

    events = run_events(events_reader.records, run_id)
    end = events[-1]
    assert isinstance(end, RunFinished) and end.payload.error is not None
    assert end.payload.error.error_class == "AuthenticationFailed"
    assert MASK in end.payload.error.message  # redacted, not dropped
    calls = [e for e in events if isinstance(e, ModelCalled)]
    retried = [r for c in calls for r in c.payload.retries]
    assert [r.error_class for r in retried] == ["ServerError", "AuthenticationFailed"]
    assert all(MASK in r.message for r in retried)
    assert "AuthenticationFailed" in rows
    assert any(MASK in record.getMessage() for record in caplog.records)


# --- DatabaseError messages -------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_connection_error_names_the_server_without_the_password() -> None:
    settings = load_settings(env_file=None, database_command_timeout_seconds=5)
    dsn = f"postgresql://oriole:{quote(PASSWORD, safe='')}@127.0.0.1:1/x?password={KEY}"
    with pytest.raises(DatabaseError) as caught:
        await create_pool(dsn, settings)
    assert "127.0.0.1:1" in str(caught.value)
    assert_absent(KEY, str(caught.value), "the DatabaseError")
    assert_absent(PASSWORD.split("/")[0], str(caught.value), "the DatabaseError")
