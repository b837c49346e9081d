"""Contract tests of the Toxiproxy v2 API over raw HTTP (Toxiproxy's api_test.go, README).

Expected bodies are written out byte for byte: a Toxiproxy client can tell the difference.
"""

from __future__ import annotations

import json
import re

import httpx
import pytest
from proxy_helpers import add_toxic, make_proxy, port_of

ERROR_TYPE = "text/plain; charset=utf-8"


def error_of(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == ERROR_TYPE
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.content == json.dumps({"error": message, "status": status}, separators=(",", ":")).encode() + b"\n"


def test_version_is_exactly_toxiproxy_2_12(api: httpx.Client) -> None:
    response = api.get("/version")
    assert response.status_code == 200
    assert response.content == b'{"version": "2.12.0"}\n'
    assert response.headers["content-type"] == "application/json;charset=utf-8"


def test_every_matched_route_has_a_request_id(api: httpx.Client) -> None:
    ids = {api.get("/proxies").headers["x-toxiproxy-request-id"] for _ in range(3)}
    assert len(ids) == 3
    assert all(re.fullmatch(r"[0-9a-v]{20}", i) for i in ids)
    assert "x-toxiproxy-request-id" in api.get("/proxies/nope").headers


def test_browsers_get_403(api: httpx.Client) -> None:
    response = api.get("/proxies", headers={"User-Agent": "Mozilla/5.0 (X11)"})
    assert response.status_code == 403
    assert response.content == b"User agent not allowed\n"
    assert response.headers["content-type"] == ERROR_TYPE


def test_unknown_path_404_and_wrong_method_405(api: httpx.Client) -> None:
    response = api.get("/nope")
    assert (response.status_code, response.content) == (404, b"404 page not found\n")
    assert api.get("/proxies/").status_code == 404
    response = api.put("/proxies")
    assert (response.status_code, response.content) == (405, b"")
    assert api.delete("/version").status_code == 405


def test_empty_proxy_list_is_an_object(api: httpx.Client) -> None:
    response = api.get("/proxies")
    assert (response.status_code, response.content) == (200, b"{}")
    assert response.headers["content-type"] == "application/json"


def test_create_proxy_201_resolves_listen_and_keeps_go_key_order(api: httpx.Client) -> None:
    response = api.post("/proxies", json={"name": "redis", "listen": "localhost:0", "upstream": "localhost:6379"})
    assert response.status_code == 201
    port = port_of(response.json()["listen"])
    assert response.content == (
        b'{"name":"redis","listen":"127.0.0.1:%d","upstream":"localhost:6379","enabled":true,"toxics":[]}' % port
    )


def test_create_proxy_errors(api: httpx.Client) -> None:
    error_of(api.post("/proxies", content=b""), 400, "bad request body: EOF")
    error_of(api.post("/proxies", json={"upstream": "x:1"}), 400, "missing required field: name")
    error_of(api.post("/proxies", json={"name": "a", "listen": "127.0.0.1:0"}), 400, "missing required field: upstream")
    make_proxy(api, "a", "127.0.0.1:1")
    error_of(api.post("/proxies", json={"name": "a", "listen": "127.0.0.1:0", "upstream": "x:1"}), 409,
             "proxy already exists")


def test_create_proxy_listen_errors_are_go_net_errors_500(api: httpx.Client) -> None:
    taken = make_proxy(api, "a", "127.0.0.1:1")
    error_of(api.post("/proxies", json={"name": "b", "listen": f"127.0.0.1:{taken}", "upstream": "x:1"}), 500,
             f"listen tcp 127.0.0.1:{taken}: bind: address already in use")
    error_of(api.post("/proxies", json={"name": "c", "listen": "local373", "upstream": "x:1"}), 500,
             "listen tcp: address local373: missing port in address")
    assert sorted(api.get("/proxies").json()) == ["a"], "a failed bind leaves no proxy behind"


def test_create_disabled_keeps_listen_verbatim(api: httpx.Client) -> None:
    response = api.post("/proxies", json={"name": "d", "listen": "localhost:0", "upstream": "x:1", "enabled": False})
    assert response.status_code == 201
    assert response.json() == {"name": "d", "listen": "localhost:0", "upstream": "x:1", "enabled": False, "toxics": []}


def test_go_decoding_quirks(api: httpx.Client) -> None:
    # case-insensitive keys, null = absent (enabled stays true), unknown keys ignored, trailing bytes ignored
    response = api.post("/proxies", content=b'{"NAME":"q","Listen":"127.0.0.1:0","upstream":"x:1",'
                                             b'"enabled":null,"toxics":null,"whatever":[1]} trailing')
    assert response.status_code == 201
    assert response.json()["enabled"] is True and response.json()["name"] == "q"
    toxic = add_toxic(api, "q", Type="latency", Stream="UPSTREAM", toxicity=None, Attributes={"Latency": 5})
    assert toxic == {"attributes": {"latency": 5, "jitter": 0}, "name": "latency_UPSTREAM", "type": "latency",
                     "stream": "UPSTREAM", "toxicity": 1}
    # attributes at the top level are ignored (issue #119)
    assert add_toxic(api, "q", type="bandwidth", rate=100)["attributes"] == {"rate": 0}


def test_wrong_types_are_400(api: httpx.Client) -> None:
    error_of(api.post("/proxies", json={"name": 5, "upstream": "x:1"}), 400,
             "bad request body: json: cannot unmarshal number into Go struct field Proxy.name of type string")
    error_of(api.post("/proxies", json={"name": "x", "upstream": "x:1", "enabled": "yes"}), 400,
             "bad request body: json: cannot unmarshal string into Go struct field Proxy.enabled of type bool")
    make_proxy(api, "p", "127.0.0.1:1")
    for bad in (100.5, 100.0, "100", [1], 2**64):
        response = api.post("/proxies/p/toxics", json={"type": "latency", "attributes": {"latency": bad}})
        assert response.status_code == 400
        assert response.json()["error"].startswith("bad request body: json: cannot unmarshal")
    assert api.get("/proxies/p/toxics").json() == []


def test_get_update_delete_proxy(api: httpx.Client) -> None:
    error_of(api.get("/proxies/missing"), 404, "proxy not found")
    error_of(api.patch("/proxies/missing", json={}), 404, "proxy not found")
    error_of(api.delete("/proxies/missing"), 404, "proxy not found")
    port = make_proxy(api, "p", "127.0.0.1:1")
    shown = api.get("/proxies/p")
    assert shown.status_code == 200 and shown.json()["listen"] == f"127.0.0.1:{port}"
    response = api.patch("/proxies/p", json={"enabled": False, "name": "ignored"})
    assert response.status_code == 200
    assert response.json() == {"name": "p", "listen": f"127.0.0.1:{port}", "upstream": "127.0.0.1:1",
                               "enabled": False, "toxics": []}
    assert api.post("/proxies/p", json={"enabled": True}).json()["enabled"] is True, "deprecated POST still updates"
    assert api.get("/proxies/p").json()["listen"] == f"127.0.0.1:{port}", "the port survives disable/enable"
    error_of(api.patch("/proxies/p", content=b"{"), 400, "bad request body: unexpected EOF")
    response = api.delete("/proxies/p")
    assert (response.status_code, response.content) == (204, b"")
    assert api.get("/proxies").json() == {}


def test_proxy_index_is_sorted_by_name(api: httpx.Client) -> None:
    for name in ("b", "c", "a"):
        make_proxy(api, name, "127.0.0.1:1")
    assert list(api.get("/proxies").json()) == ["a", "b", "c"]
    assert api.get("/proxies").text.startswith('{"a":{"name":"a",')


def test_toxic_create_is_200_with_every_attribute_zero_filled(api: httpx.Client) -> None:
    make_proxy(api, "p", "127.0.0.1:1")
    expected = {
        "latency": {"latency": 0, "jitter": 0},
        "bandwidth": {"rate": 0},
        "slow_close": {"delay": 0},
        "timeout": {"timeout": 0},
        "reset_peer": {"timeout": 0},
        "slicer": None,
        "limit_data": {"bytes": 0},
        "noop": {},
    }
    for kind, attributes in expected.items():
        body = {"type": kind, "stream": "upstream"}
        if kind == "slicer":
            body["attributes"] = {"average_size": 10}
            attributes = {"average_size": 10, "size_variation": 0, "delay": 0}
        response = api.post("/proxies/p/toxics", json=body)
        assert response.status_code == 200, response.text
        assert response.text == (
            f'{{"attributes":{json.dumps(attributes, separators=(",", ":"))},"name":"{kind}_upstream",'
            f'"type":"{kind}","stream":"upstream","toxicity":1}}'
        )


def test_toxic_defaults_and_float32_toxicity(api: httpx.Client) -> None:
    make_proxy(api, "p", "127.0.0.1:1")
    toxic = api.post("/proxies/p/toxics", json={"type": "latency", "toxicity": 0.1})
    assert toxic.text == ('{"attributes":{"latency":0,"jitter":0},"name":"latency_downstream",'
                          '"type":"latency","stream":"downstream","toxicity":0.1}')


def test_toxic_errors_in_toxiproxy_order(api: httpx.Client) -> None:
    error_of(api.post("/proxies/missing/toxics", json={"type": "latency"}), 404, "proxy not found")
    make_proxy(api, "p", "127.0.0.1:1")
    response = api.post("/proxies/p/toxics", content=b"nope")
    assert response.status_code == 400 and response.json()["error"].startswith("bad request body: invalid character")
    error_of(api.post("/proxies/p/toxics", json={"type": "latency", "stream": "sideways"}), 400,
             "stream was invalid, can be either upstream or downstream")
    error_of(api.post("/proxies/p/toxics", json={"type": "latency", "stream": ""}), 400,
             "stream was invalid, can be either upstream or downstream")
    error_of(api.post("/proxies/p/toxics", json={"type": "nope"}), 400, "invalid toxic type")
    error_of(api.post("/proxies/p/toxics", json={}), 400, "invalid toxic type")
    add_toxic(api, "p", type="latency", name="t", stream="upstream")
    error_of(api.post("/proxies/p/toxics", json={"type": "bandwidth", "name": "t", "stream": "downstream"}), 409,
             "toxic already exists")
    # the name conflict is checked before the attributes (Toxiproxy's order)
    error_of(api.post("/proxies/p/toxics", json={"type": "latency", "name": "t", "attributes": {"latency": "x"}}),
             409, "toxic already exists")


def test_crashing_values_are_400_not_a_crash(api: httpx.Client) -> None:
    make_proxy(api, "p", "127.0.0.1:1")
    for body in (
        {"type": "bandwidth", "attributes": {"rate": -1}},
        {"type": "slicer", "attributes": {"average_size": 0}},
        {"type": "slicer", "attributes": {"average_size": -5}},
        {"type": "slicer", "attributes": {"average_size": 10, "size_variation": 11}},
    ):
        response = api.post("/proxies/p/toxics", json=body)
        assert response.status_code == 400 and response.json()["error"].startswith("bad request body: "), body
    add_toxic(api, "p", type="bandwidth", name="bw", attributes={"rate": 10})
    assert api.patch("/proxies/p/toxics/bw", json={"attributes": {"rate": -10}}).status_code == 400
    assert api.get("/proxies/p/toxics/bw").json()["attributes"] == {"rate": 10}
    assert api.get("/version").status_code == 200


def test_toxic_show_update_delete(api: httpx.Client) -> None:
    make_proxy(api, "p", "127.0.0.1:1")
    error_of(api.get("/proxies/p/toxics/t"), 404, "toxic not found")
    error_of(api.patch("/proxies/p/toxics/t", json={}), 404, "toxic not found")
    error_of(api.delete("/proxies/p/toxics/t"), 404, "toxic not found")
    error_of(api.get("/proxies/missing/toxics/t"), 404, "proxy not found")
    add_toxic(api, "p", type="latency", name="t", attributes={"latency": 100, "jitter": 10})
    assert api.get("/proxies/p/toxics/t").json()["attributes"] == {"latency": 100, "jitter": 10}
    updated = api.patch("/proxies/p/toxics/t", json={"attributes": {"latency": 50}})
    assert updated.status_code == 200
    assert updated.json() == {"attributes": {"latency": 50, "jitter": 10}, "name": "t", "type": "latency",
                              "stream": "downstream", "toxicity": 1}, "partial updates merge"
    updated = api.post("/proxies/p/toxics/t", json={"toxicity": 0.5, "type": "bandwidth", "stream": "upstream"})
    assert updated.json()["toxicity"] == 0.5 and updated.json()["type"] == "latency"
    assert updated.json()["stream"] == "downstream", "name, type and stream cannot change"
    response = api.delete("/proxies/p/toxics/t")
    assert (response.status_code, response.content) == (204, b"")
    assert api.get("/proxies/p/toxics").content == b"[]"


def test_toxics_listed_upstream_first_then_creation_order(api: httpx.Client) -> None:
    make_proxy(api, "p", "127.0.0.1:1")
    add_toxic(api, "p", type="noop", name="d1")
    add_toxic(api, "p", type="noop", name="u1", stream="upstream")
    add_toxic(api, "p", type="noop", name="d2")
    add_toxic(api, "p", type="noop", name="u2", stream="upstream")
    assert [t["name"] for t in api.get("/proxies/p/toxics").json()] == ["u1", "u2", "d1", "d2"]
    assert [t["name"] for t in api.get("/proxies/p").json()["toxics"]] == ["u1", "u2", "d1", "d2"]


def test_reset_enables_all_and_removes_toxics(api: httpx.Client) -> None:
    port = make_proxy(api, "p", "127.0.0.1:1")
    add_toxic(api, "p", type="latency")
    api.patch("/proxies/p", json={"enabled": False})
    response = api.post("/reset")
    assert (response.status_code, response.content) == (204, b"")
    assert api.get("/proxies/p").json() == {"name": "p", "listen": f"127.0.0.1:{port}", "upstream": "127.0.0.1:1",
                                            "enabled": True, "toxics": []}


def test_populate_creates_201_in_input_order(api: httpx.Client) -> None:
    response = api.post("/populate", json=[
        {"name": "one", "listen": "127.0.0.1:0", "upstream": "x:1"},
        {"name": "two", "listen": "127.0.0.1:0", "upstream": "x:2", "enabled": False},
    ])
    assert response.status_code == 201
    proxies = response.json()["proxies"]
    assert [p["name"] for p in proxies] == ["one", "two"]
    assert [p["enabled"] for p in proxies] == [True, False]
    assert list(response.json()) == ["proxies"]
    ignored = api.post("/populate", json=[{"name": "three", "listen": "127.0.0.1:0", "upstream": "x:3",
                                           "toxics": [{"type": "latency"}]}])
    assert ignored.json()["proxies"][0]["toxics"] == [], "toxics in populate input are ignored (#79, #447)"
    assert api.post("/populate", json=[]).content == b'{"proxies":null}'


def test_populate_validates_everything_first(api: httpx.Client) -> None:
    response = api.post("/populate", json=[{"name": "ok", "upstream": "x:1"}, {"upstream": "x:2"}])
    assert response.status_code == 400
    assert response.content == b'{"error":"missing required field: name at proxy 2","status":400,"proxies":null}'
    assert api.get("/proxies").json() == {}
    response = api.post("/populate", json={"name": "x"})
    assert response.status_code == 400
    assert response.json()["error"].startswith("bad request body: json: cannot unmarshal object")


def test_populate_keeps_identical_proxies_and_replaces_different_ones(api: httpx.Client) -> None:
    port = make_proxy(api, "same", "127.0.0.1:1")
    add_toxic(api, "same", type="latency")
    make_proxy(api, "other", "127.0.0.1:1")
    add_toxic(api, "other", type="latency")
    response = api.post("/populate", json=[
        {"name": "same", "listen": f"localhost:{port}", "upstream": "127.0.0.1:1", "enabled": False},
        {"name": "other", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:2"},
    ])
    assert response.status_code == 201
    same, other = response.json()["proxies"]
    assert same["enabled"] is True and len(same["toxics"]) == 1, "identical (after resolving) = untouched"
    assert other["upstream"] == "127.0.0.1:2" and other["toxics"] == [], "different = replaced"


def test_populate_is_not_atomic_on_bind_errors(api: httpx.Client) -> None:
    taken = make_proxy(api, "taken", "127.0.0.1:1")
    response = api.post("/populate", json=[
        {"name": "first", "listen": "127.0.0.1:0", "upstream": "x:1"},
        {"name": "second", "listen": f"127.0.0.1:{taken}", "upstream": "x:1"},
        {"name": "third", "listen": "127.0.0.1:0", "upstream": "x:1"},
    ])
    assert response.status_code == 500
    body = response.json()
    assert body["error"] == f"listen tcp 127.0.0.1:{taken}: bind: address already in use"
    assert body["status"] == 500 and [p["name"] for p in body["proxies"]] == ["first"]
    assert sorted(api.get("/proxies").json()) == ["first", "taken"]


def test_metrics_are_prometheus_text(api: httpx.Client) -> None:
    make_proxy(api, "p", "127.0.0.1:1")
    response = api.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    assert 'toxiproxy_proxy_received_bytes_total{direction="upstream"' in response.text


@pytest.mark.parametrize("body", [b"{", b"[1,2", b"\xff\xfe", b"null", b'"str"', b"{]}", b"{\"name\": tru}"])
def test_malformed_bodies_get_toxiproxy_shaped_400(api: httpx.Client, body: bytes) -> None:
    response = api.post("/proxies", content=body)
    assert response.status_code == 400
    assert response.headers["content-type"] == ERROR_TYPE
    payload = json.loads(response.content)
    assert payload["status"] == 400
    assert payload["error"].startswith(("bad request body: ", "missing required field: "))
    assert api.get("/version").status_code == 200


def test_huge_body_is_refused_and_the_server_keeps_serving(server: object, api: httpx.Client) -> None:
    response = api.post("/proxies", content=b"[" + b"1," * (1 << 20) + b"1]")
    error_of(response, 400, "bad request body: http: request body too large")
    assert api.get("/version").status_code == 200
    chunked = api.post("/populate", content=iter([b"[" + b" " * (1 << 19)] * 3))
    assert chunked.status_code == 400
    assert api.get("/proxies").status_code == 200


def test_malformed_chunked_body_is_400(server) -> None:
    import socket

    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(b"POST /proxies HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        head = sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b'{"error":"bad request body: http: invalid byte in chunk length","status":400}' in head
    assert httpx.get(server.url + "/version").status_code == 200


def test_unpaired_surrogates_become_replacement_characters_like_go(api: httpx.Client) -> None:
    response = api.post("/proxies", content=b'{"name": "x\\ud800", "listen": "127.0.0.1:0", "upstream": "x:1"}')
    assert response.status_code == 201
    assert response.json()["name"] == "x\ufffd"
    assert api.get("/proxies/x\ufffd").status_code == 200


def test_deeply_nested_json_is_400(api: httpx.Client) -> None:
    response = api.post("/proxies", content=b"[" * 100_000 + b"]" * 100_000)
    error_of(response, 400, "bad request body: exceeded max depth")
    assert api.get("/version").status_code == 200
