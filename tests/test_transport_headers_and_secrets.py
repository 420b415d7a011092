"""The endpoint pool against real (in-process) HTTP servers: headers and the request signer
are applied, credentials in a URL never show, and closing twice is harmless."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import pytest
from prometheus_client import REGISTRY

from oriole.llm.errors import ProviderUnavailable
from providers.transport import EndpointPool
from tests.transport_support import EchoWire, affinity_for, eventually, policy, request

pytestmark = pytest.mark.asyncio


async def test_headers_and_signer_are_applied(make_server: Any, make_pool: Any) -> None:
    server = await make_server()
    signed: list[tuple[str, str]] = []

    async def signer(
        method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> dict[str, str]:
        signed.append((method, url))
        return {**headers, "X-Signature": hashlib.sha256(body).hexdigest()}

    pool = await make_pool(
        [server.url],
        policy(health_check_interval_seconds=0.05),
        headers={"Authorization": "Bearer s3cret-key"},
        signer=signer,
    )
    await pool.chat(request("signed"), affinity="run-1")
    [seen] = server.seen
    assert seen.headers["Authorization"] == "Bearer s3cret-key"
    assert seen.headers["X-Signature"] == hashlib.sha256(seen.body).hexdigest()
    assert ("POST", server.url + "/chat/m1") in signed
    await eventually(lambda: ("GET", server.url + "/health") in signed)
    assert "s3cret" not in repr(pool)


async def test_userinfo_never_shows(make_server: Any, make_pool: Any) -> None:
    server = await make_server()
    secret_url = f"http://alice:pa55word@127.0.0.1:{server.port}"
    dead = await make_server()
    await dead.stop()
    dead_url = f"http://bob:hunter2@127.0.0.1:{dead.port}/"
    pool = await make_pool([secret_url, dead_url], policy())
    assert pool.endpoints == [server.url, dead.url + "/"]
    result = await pool.chat(request(), affinity=affinity_for(pool, pool.endpoints[1]))
    assert result.endpoint == server.url
    assert server.seen[0].headers["Authorization"].startswith("Basic ")  # userinfo used
    texts = [repr(pool), str(pool.status()), str(result)]
    for metric in REGISTRY.collect():
        if metric.name.startswith("oriole_provider"):
            texts += [str(sample.labels) for sample in metric.samples]
    for text in texts:
        assert "pa55word" not in text and "hunter2" not in text and "alice" not in text
    with pytest.raises(ProviderUnavailable) as caught:
        await pool.chat(request(), affinity="run-1", endpoint=dead_url)
    assert "hunter2" not in str(caught.value) and "hunter2" not in str(caught.value.retries)


async def test_close_is_idempotent(make_server: Any) -> None:
    server = await make_server()
    async with EndpointPool(EchoWire(), [server.url], policy()) as pool:
        await pool.chat(request(), affinity="run-1")
    await pool.close()
    with pytest.raises(RuntimeError):
        await pool.chat(request(), affinity="run-1")
