"""A throwaway PKI for the TLS tests (fixture ``pki``, registered as a plugin in
conftest.py), and settings read without an env file."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from oriole.environment.settings import Settings, load_settings


@dataclass(frozen=True)
class Pki:
    ca: Path
    other_ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _make_ca(name: str, cwd: Path) -> None:
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.pem",
        cwd=cwd,
    )  # fmt: skip


def _make_leaf(name: str, ca: str, cwd: Path, *, san: str) -> None:
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=cwd,
    )  # fmt: skip
    (cwd / f"{name}.ext").write_text(f"subjectAltName={san}\n")
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem",
        cwd=cwd,
    )  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A test CA, a server certificate for 127.0.0.1/localhost, a client certificate, and
    an unrelated CA that signed neither."""
    where = tmp_path_factory.mktemp("pki")
    _make_ca("ca", where)
    _make_ca("other-ca", where)
    _make_leaf("server", "ca", where, san="IP:127.0.0.1,DNS:localhost")
    _make_leaf("client", "ca", where, san="DNS:oriole-client")
    return Pki(
        ca=where / "ca.pem",
        other_ca=where / "other-ca.pem",
        server_cert=where / "server.pem",
        server_key=where / "server.key",
        client_cert=where / "client.pem",
        client_key=where / "client.key",
    )


def settings(**values: Any) -> Settings:
    return load_settings(env_file=None, **values)
