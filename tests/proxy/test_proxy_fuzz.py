"""Arbitrary JSON against the API: always a Toxiproxy-shaped answer, never a crash."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from faultlab.proxy import ProxyServer

KEYS = ["name", "Name", "listen", "upstream", "enabled", "type", "stream", "toxicity", "attributes",
        "latency", "jitter", "rate", "delay", "timeout", "average_size", "size_variation", "bytes"]
# no ':' in generated text, so no generated listen address can bind (tests bind 127.0.0.1 only)
text = st.text(st.characters(blacklist_characters=":"), max_size=8)
scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | text
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4), max_leaves=8)
bodies = st.dictionaries(st.sampled_from(KEYS), values, max_size=6) | values


@pytest.fixture(scope="module")
def fuzz_api():
    with ProxyServer(host="127.0.0.1", port=0) as server, httpx.Client(base_url=server.url, timeout=5) as api:
        api.post("/proxies", json={"name": "p", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"})
        api.post("/proxies/p/toxics", json={"type": "latency", "name": "t"})
        yield api


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, target=st.sampled_from([
    ("POST", "/proxies"), ("PATCH", "/proxies/p"), ("POST", "/proxies/p/toxics"),
    ("PATCH", "/proxies/p/toxics/t"), ("POST", "/populate"),
]))
def test_any_json_gets_a_toxiproxy_answer(fuzz_api: httpx.Client, body: object, target: tuple[str, str]) -> None:
    method, path = target
    response = fuzz_api.request(method, path, content=json.dumps(body).encode())  # ASCII: \ud800 escapes too
    assert response.status_code in (200, 201, 400, 404, 409, 500)
    if response.status_code >= 400:
        payload = json.loads(response.content)
        assert payload["status"] == response.status_code and isinstance(payload["error"], str)
        if response.status_code == 500:
            assert payload["error"].startswith("listen tcp"), payload
    # undo what a successful request changed, so every example starts from the same state
    if method == "POST" and path == "/proxies" and response.status_code == 201:
        fuzz_api.delete(f"/proxies/{response.json()['name']}")
    if path == "/populate":
        for name in fuzz_api.get("/proxies").json():
            if name != "p":
                fuzz_api.delete(f"/proxies/{name}")
    if path == "/proxies/p/toxics" and response.status_code == 200:
        fuzz_api.delete(f"/proxies/p/toxics/{response.json()['name']}")
    if path == "/proxies/p":
        fuzz_api.patch("/proxies/p", json={"listen": "127.0.0.1:0", "upstream": "127.0.0.1:1", "enabled": True})
    assert fuzz_api.get("/version").status_code == 200
