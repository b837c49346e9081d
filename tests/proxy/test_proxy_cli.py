"""``faultlab proxy serve`` in a real process, and the package's public surface."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    return env


def _serve(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "faultlab", "proxy", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )


def test_serve_with_config_then_ctrl_c_exits_0(tmp_path: Path) -> None:
    config = tmp_path / "proxies.json"
    config.write_text(json.dumps([
        {"name": "db", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:5432"},
        {"name": "off", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1", "enabled": False},
    ]))
    proc = _serve("--config", str(config))
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.split()[line.split().index("on") + 1]
        assert url.startswith("http://127.0.0.1:")
        proxies = httpx.get(url + "/proxies", timeout=5).json()
        assert sorted(proxies) == ["db", "off"] and proxies["off"]["enabled"] is False
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigterm_is_a_clean_stop_too() -> None:
    proc = _serve()
    try:
        assert proc.stdout is not None
        assert "API on http://127.0.0.1:" in proc.stdout.readline()
        proc.terminate()
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_bad_config_is_invalid_input(tmp_path: Path) -> None:
    config = tmp_path / "proxies.json"
    config.write_text('[{"name": "x"}]')
    proc = _serve("--config", str(config))
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert "missing required field: upstream at proxy 1" in err


def test_public_api_is_small_and_import_does_no_work() -> None:
    code = (
        "import sys, threading, faultlab.proxy as p\n"
        "assert sorted(p.__all__) == ['ProxyServer', 'TOXIPROXY_VERSION'], p.__all__\n"
        "assert threading.active_count() == 1\n"
        "assert 'prometheus_client' not in sys.modules and 'faultlab.proxy.loop' not in sys.modules\n"
        "from faultlab.proxy import ProxyServer, TOXIPROXY_VERSION\n"
        "assert TOXIPROXY_VERSION == '2.12.0' and threading.active_count() == 1\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=_env(), timeout=30)


@pytest.mark.parametrize("port", [0])
def test_embedded_server_url(port: int) -> None:
    from faultlab.proxy import ProxyServer

    with ProxyServer(host="127.0.0.1", port=port) as srv:
        assert srv.url.startswith("http://127.0.0.1:") and srv.port > 0
        assert httpx.get(srv.url + "/version").status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(srv.url + "/version")


def test_config_with_a_taken_port_is_an_infrastructure_error(tmp_path: Path) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        config = tmp_path / "proxies.json"
        config.write_text(json.dumps([{"name": "x", "listen": f"127.0.0.1:{taken.getsockname()[1]}",
                                       "upstream": "127.0.0.1:1"}]))
        proc = _serve("--config", str(config))
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 3
    assert "bind: address already in use" in err
