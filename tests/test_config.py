"""Settings: defaults, the four sources and their precedence, and readable errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from oriole.admission import AllowedEndpoints
from oriole.environment.settings import ROOT_FALLBACK_PG_DIR, Settings, SettingsError, load_settings
from oriole.errors import ValidationError


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No ORIOLE_* variables, cwd in an empty directory, home outside /root."""
    for name in list(os.environ):
        if name.upper().startswith("ORIOLE_"):
            monkeypatch.delenv(name)
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    home = tmp_path / "home"
    monkeypatch.setenv("ORIOLE_HOME", str(home))
    return home


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults(clean_env: Path) -> None:
    settings = load_settings()
    assert settings.home == clean_env
    assert settings.config_file is None
    assert settings.kafka_bootstrap_servers == ""
    assert settings.embedded_broker is True
    assert settings.kafka_topic_prefix == "oriole"
    assert settings.kafka_partitions == 4
    assert settings.kafka_replication_factor == 1
    assert settings.kafka_client_id == "oriole"
    assert settings.database_url == ""
    assert settings.embedded_database is True
    assert settings.database_pool_min_size == 1
    assert settings.database_pool_max_size == 10
    assert settings.embedded_pg_dir is None
    assert settings.resolved_pg_dir == clean_env / "pgdata"
    assert settings.log_dir == clean_env / "logs"
    assert settings.gateway_host == "127.0.0.1"
    assert settings.gateway_port == 8080
    assert settings.log_level == "INFO"
    assert settings.log_format == "console"
    assert settings.max_concurrent_runs == 50
    assert settings.maze_dirs == []


def test_default_home_is_dot_oriole_in_the_user_home() -> None:
    assert Settings.model_fields["home"].default == Path("~/.oriole")


def test_every_setting_is_documented() -> None:
    for name, field in Settings.model_fields.items():
        assert field.description, name
    docs = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
    for name in Settings.model_fields:
        assert f"ORIOLE_{name.upper()}" in docs, name


def test_environment_overrides_defaults(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORIOLE_GATEWAY_PORT", "9999")
    monkeypatch.setenv("ORIOLE_KAFKA_BOOTSTRAP_SERVERS", " k1:9092, k2:9093 ")
    monkeypatch.setenv("ORIOLE_DATABASE_URL", "postgresql://u:p@db:5432/oriole")
    monkeypatch.setenv("ORIOLE_LOG_LEVEL", "debug")
    monkeypatch.setenv("ORIOLE_MAZE_DIRS", f"/srv/mazes{os.pathsep}~/more-mazes")
    settings = load_settings()
    assert settings.gateway_port == 9999
    assert settings.kafka_bootstrap_servers == "k1:9092,k2:9093"
    assert settings.embedded_broker is False
    assert settings.embedded_database is False
    assert settings.log_level == "DEBUG"
    assert settings.maze_dirs == [Path("/srv/mazes"), Path("~/more-mazes").expanduser()]


def test_empty_path_variables_mean_the_default(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORIOLE_CONFIG_FILE", "")
    monkeypatch.setenv("ORIOLE_EMBEDDED_PG_DIR", "")
    settings = load_settings()
    assert settings.config_file is None
    assert settings.embedded_pg_dir is None
    assert settings.resolved_pg_dir == clean_env / "pgdata"


def test_maze_dirs_as_json_list(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORIOLE_MAZE_DIRS", '["/a", "/b"]')
    assert load_settings().maze_dirs == [Path("/a"), Path("/b")]


def test_dotenv_file(clean_env: Path) -> None:
    write(Path(".env"), "ORIOLE_GATEWAY_PORT=7000\nORIOLE_LOG_FORMAT=json\nOTHER_TOOL=x\n")
    settings = load_settings()
    assert settings.gateway_port == 7000
    assert settings.log_format == "json"


def test_explicit_dotenv_file_and_none(clean_env: Path, tmp_path: Path) -> None:
    custom = write(tmp_path / "custom.env", "ORIOLE_GATEWAY_PORT=7001\n")
    write(Path(".env"), "ORIOLE_GATEWAY_PORT=7000\n")
    assert load_settings(env_file=custom).gateway_port == 7001
    assert load_settings(env_file=None).gateway_port == 8080


def test_toml_file_from_home(clean_env: Path) -> None:
    toml = write(clean_env / "config.toml", 'kafka_topic_prefix = "lab"\nkafka_partitions = 8\n')
    settings = load_settings()
    assert settings.kafka_topic_prefix == "lab"
    assert settings.kafka_partitions == 8
    assert settings.config_file == toml


def test_toml_file_from_oriole_config_file(
    clean_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(clean_env / "config.toml", "gateway_port = 1111\n")
    toml = write(
        tmp_path / "elsewhere.toml",
        'gateway_port = 2222\nmaze_dirs = ["/m1", "/m2"]\nlog_level = "warning"\n',
    )
    monkeypatch.setenv("ORIOLE_CONFIG_FILE", str(toml))
    settings = load_settings()
    assert settings.gateway_port == 2222
    assert settings.maze_dirs == [Path("/m1"), Path("/m2")]
    assert settings.log_level == "WARNING"
    assert settings.config_file == toml


def test_precedence_overrides_env_dotenv_toml_defaults(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(clean_env / "config.toml", "gateway_port = 1001\nmax_concurrent_runs = 7\n")
    write(Path(".env"), "ORIOLE_GATEWAY_PORT=1002\nORIOLE_KAFKA_CLIENT_ID=from-dotenv\n")
    monkeypatch.setenv("ORIOLE_GATEWAY_PORT", "1003")

    settings = load_settings()
    assert settings.gateway_port == 1003  # env beats .env and TOML
    assert settings.kafka_client_id == "from-dotenv"  # .env beats the default
    assert settings.max_concurrent_runs == 7  # TOML beats the default
    assert settings.kafka_partitions == 4  # default

    assert load_settings(gateway_port=1004).gateway_port == 1004  # overrides beat everything
    monkeypatch.delenv("ORIOLE_GATEWAY_PORT")
    assert load_settings().gateway_port == 1002  # .env beats TOML
    Path(".env").unlink()
    assert load_settings().gateway_port == 1001  # TOML beats the default


def test_dotenv_can_set_home_and_thereby_the_toml_file(
    clean_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ORIOLE_HOME")
    other_home = tmp_path / "other-home"
    write(other_home / "config.toml", "gateway_port = 4321\n")
    write(Path(".env"), f"ORIOLE_HOME={other_home}\n")
    settings = load_settings()
    assert settings.home == other_home
    assert settings.gateway_port == 4321


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("ORIOLE_GATEWAY_PORT", "0", "Input should be greater than or equal to 1"),
        ("ORIOLE_GATEWAY_PORT", "65536", "Input should be less than or equal to 65535"),
        ("ORIOLE_GATEWAY_PORT", "http", "Input should be a valid integer"),
        ("ORIOLE_KAFKA_PARTITIONS", "0", "Input should be greater than or equal to 1"),
        ("ORIOLE_KAFKA_PARTITIONS", "257", "Input should be less than or equal to 256"),
        ("ORIOLE_KAFKA_REPLICATION_FACTOR", "0", "Input should be greater than or equal to 1"),
        ("ORIOLE_MAX_CONCURRENT_RUNS", "10001", "Input should be less than or equal to 10000"),
        (
            "ORIOLE_DATABASE_URL",
            "mysql://u:secret@db/oriole",
            "must start with postgresql:// or postgres://",
        ),
        ("ORIOLE_EMBEDDED_PG_DIR", "/root/pgdata", "/root/pgdata is under /root"),
        (
            "ORIOLE_LOG_LEVEL",
            "verbose",
            "Input should be 'DEBUG', 'INFO', 'WARNING' or 'ERROR'",
        ),
        ("ORIOLE_LOG_FORMAT", "xml", "Input should be 'console' or 'json'"),
        ("ORIOLE_KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2", "'k2' is not host:port"),
        ("ORIOLE_KAFKA_BOOTSTRAP_SERVERS", "k1:99999", "port 99999 in 'k1:99999'"),
        ("ORIOLE_KAFKA_TOPIC_PREFIX", "my topics", "characters Kafka does not allow"),
        ("ORIOLE_KAFKA_TOPIC_PREFIX", "x" * 300, "at most 228"),
        ("ORIOLE_DATABASE_POOL_MAX_SIZE", "101", "Input should be less than or equal to 100"),
        ("ORIOLE_MAZE_DIRS", "[not json", "is not a valid JSON list"),
    ],
)
def test_bad_values_name_the_variable(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, reason: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as info:
        load_settings()
    assert info.value.field == variable
    assert reason in info.value.reason
    assert str(info.value).startswith(f"{variable}: ")


def test_dsn_errors_never_echo_the_password(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORIOLE_DATABASE_URL", "mysql://u:hunter2@db/oriole")
    with pytest.raises(ValidationError) as info:
        load_settings()
    assert "hunter2" not in str(info.value)


def test_default_pg_dir_under_root_falls_back_outside_root(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORIOLE_HOME", "/root/.oriole")
    settings = load_settings()  # root with the default home: `oriole up` must still work
    assert settings.resolved_pg_dir == ROOT_FALLBACK_PG_DIR
    assert not ROOT_FALLBACK_PG_DIR.is_relative_to("/root")


def test_explicit_pg_dir_under_root_is_fine_with_an_external_database(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORIOLE_EMBEDDED_PG_DIR", "/root/pgdata")
    settings = load_settings(database_url="postgres://db/oriole")
    assert settings.embedded_database is False


def test_pool_max_below_min(clean_env: Path) -> None:
    with pytest.raises(ValidationError) as info:
        load_settings(database_pool_min_size=5, database_pool_max_size=2)
    assert info.value.field == "ORIOLE_DATABASE_POOL_MAX_SIZE"
    assert info.value.reason == "is 2, below ORIOLE_DATABASE_POOL_MIN_SIZE=5"


def test_several_bad_values_are_all_listed(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORIOLE_GATEWAY_PORT", "0")
    monkeypatch.setenv("ORIOLE_KAFKA_PARTITIONS", "0")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert {field for field, _ in info.value.problems} == {
        "ORIOLE_GATEWAY_PORT",
        "ORIOLE_KAFKA_PARTITIONS",
    }
    assert "2 invalid settings" in str(info.value)


def test_bad_value_in_toml_names_the_variable(clean_env: Path) -> None:
    write(clean_env / "config.toml", "kafka_partitions = 0\n")
    with pytest.raises(ValidationError) as info:
        load_settings()
    assert info.value.field == "ORIOLE_KAFKA_PARTITIONS"


def test_unknown_key_in_toml_or_dotenv_is_an_error(clean_env: Path) -> None:
    write(clean_env / "config.toml", "gateway_prot = 1\n")
    with pytest.raises(ValidationError) as info:
        load_settings()
    assert info.value.field == "ORIOLE_GATEWAY_PROT"
    assert "unknown setting 'gateway_prot'" in info.value.reason

    (clean_env / "config.toml").unlink()
    write(Path(".env"), "ORIOLE_LOG_LEVLE=debug\n")
    with pytest.raises(ValidationError) as info:
        load_settings()
    assert info.value.field == "ORIOLE_LOG_LEVLE"


def test_toml_cannot_move_home_or_itself(clean_env: Path) -> None:
    write(clean_env / "config.toml", 'home = "/elsewhere"\n')
    with pytest.raises(ValidationError) as info:
        load_settings()
    assert info.value.field == "ORIOLE_HOME"
    assert "cannot be set in the TOML file" in info.value.reason


def test_broken_or_missing_config_file(
    clean_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = write(tmp_path / "broken.toml", "gateway_port = = 1\n")
    monkeypatch.setenv("ORIOLE_CONFIG_FILE", str(broken))
    with pytest.raises(ValidationError) as info:
        load_settings()
    assert info.value.field == "ORIOLE_CONFIG_FILE"
    assert "is not valid TOML" in info.value.reason

    monkeypatch.setenv("ORIOLE_CONFIG_FILE", str(tmp_path / "missing.toml"))
    with pytest.raises(ValidationError) as info:
        load_settings()
    assert info.value.field == "ORIOLE_CONFIG_FILE"
    assert info.value.reason == f"file not found: {tmp_path / 'missing.toml'}"


def test_settings_are_immutable(clean_env: Path) -> None:
    settings = load_settings()
    with pytest.raises(Exception, match="frozen"):
        settings.gateway_port = 1  # type: ignore[misc]


def test_json_log_lines_carry_the_run_id(capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import logging

    from oriole.environment.logs import configure_logging
    from oriole.environment.settings import load_settings

    configure_logging(load_settings(env_file=None, log_format="json", log_level="INFO"))
    try:
        logging.getLogger("oriole.test").info("run %s started", "r1", extra={"run_id": "r1"})
        line = capsys.readouterr().err.strip().splitlines()[-1]
        entry = json.loads(line)
        assert entry["message"] == "run r1 started"
        assert entry["run_id"] == "r1"
        assert entry["level"] == "INFO"
    finally:
        logging.getLogger().handlers[:] = []


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", {}),
        ('{"s3cret-1": "read", "s3cret-2": "write"}', {"s3cret-1": "read", "s3cret-2": "write"}),
    ],
)
def test_gateway_tokens_from_the_environment(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, raw: str, expected: dict[str, str]
) -> None:
    monkeypatch.setenv("ORIOLE_GATEWAY_TOKENS", raw)
    settings = load_settings()
    assert settings.gateway_tokens == expected
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize("raw", ["s3cret", '["s3cret"]', '{"s3cret": "admin"}'])
def test_bad_gateway_tokens_name_the_variable_not_the_secret(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv("ORIOLE_GATEWAY_TOKENS", raw)
    with pytest.raises(ValidationError) as info:
        load_settings()
    assert info.value.field == "ORIOLE_GATEWAY_TOKENS"
    assert "s3cret" not in str(info.value)


def test_endpoints_are_stored_as_admission_compares_them(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORIOLE_OPENAI_ENDPOINTS", '[" http://h:1/v1/ ", "http://h:1/v1"]')
    monkeypatch.setenv("ORIOLE_OLLAMA_ENDPOINTS", "http://a:11434/, https://b/")
    settings = load_settings()
    assert settings.openai_endpoints == ["http://h:1/v1"]
    assert settings.ollama_endpoints == ["http://a:11434", "https://b"]
    allowed = AllowedEndpoints.only({"openai": settings.openai_endpoints})
    assert allowed.refusal("openai", "http://h:1/v1/") is None


def test_an_endpoint_that_is_not_http_names_the_variable_not_the_secret(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORIOLE_OLLAMA_ENDPOINTS", "ftp://u:s3cret@h")
    with pytest.raises(ValidationError) as info:
        load_settings()
    assert info.value.field == "ORIOLE_OLLAMA_ENDPOINTS"
    assert "expected an http(s) URL with a host" in info.value.reason
    assert "s3cret" not in str(info.value)
