"""The run's Prometheus and Alertmanager configuration, the instant queries of PromQL conditions,
and finding the programs. The configurations are checked by Prometheus' and Alertmanager's own
checkers (promtool, amtool) when they are installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml

from faultlab.errors import InfrastructureError
from faultlab.model.stack import Monitoring
from faultlab.monitoring import find_binaries, query_value, tool_versions
from faultlab.monitoring.config import Addresses, alertmanager_config, duration_text, prometheus_config

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "stacks" / "trading-alerts.yaml"
WRITTEN = {"rules": str(RULES), "scrape": {"gateway": "/metrics", "router": "/stats"}, "scrape_interval": "500ms",
           "evaluation_interval": "1s", "group_wait": "0s", "group_interval": "250ms"}
SPEC = Monitoring.model_validate(WRITTEN)
AT = Addresses(services={"gateway": "127.0.0.1:4001", "router": "127.0.0.1:4002"},
               alertmanager="127.0.0.1:4003", receiver="127.0.0.1:4004")


def test_durations_are_written_as_prometheus_reads_them() -> None:
    assert [duration_text(x) for x in (0.0, 0.5, 1.0, 0.25, 90.0)] == ["0s", "500ms", "1000ms", "250ms", "90000ms"]


def test_prometheus_scrapes_every_service_and_faultlab_and_sends_to_the_alertmanager() -> None:
    config = yaml.safe_load(prometheus_config(SPEC, RULES, AT, run_id="FT-01-x"))
    assert config["global"] == {"scrape_interval": "500ms", "scrape_timeout": "500ms", "evaluation_interval": "1000ms",
                                "external_labels": {"faultlab_run": "FT-01-x"}}
    assert config["rule_files"] == [str(RULES)]
    assert config["alerting"]["alertmanagers"] == [{"static_configs": [{"targets": ["127.0.0.1:4003"]}]}]
    jobs = {job["job_name"]: (job["metrics_path"], job["static_configs"][0]["targets"])
            for job in config["scrape_configs"]}
    assert jobs == {"gateway": ("/metrics", ["127.0.0.1:4001"]), "router": ("/stats", ["127.0.0.1:4002"]),
                    "faultlab": ("/metrics", ["127.0.0.1:4004"])}


def test_alertmanager_sends_each_alert_alone_and_its_resolution_to_faultlab() -> None:
    config = yaml.safe_load(alertmanager_config(SPEC, AT))
    assert config["route"] == {"receiver": "faultlab", "group_by": ["..."], "group_wait": "0s",
                               "group_interval": "250ms", "repeat_interval": "24h"}
    assert config["receivers"] == [{"name": "faultlab", "webhook_configs": [
        {"url": "http://127.0.0.1:4004/alerts", "send_resolved": True}]}]


def test_the_resolution_is_a_scrape_its_timeout_an_evaluation_and_the_group_wait() -> None:
    assert SPEC.timeout == 0.5  # the scrape interval, unless given
    assert SPEC.resolution == pytest.approx(2.0)
    assert SPEC.resolved_resolution == pytest.approx(2.25)
    quick = Monitoring.model_validate({**WRITTEN, "scrape_timeout": "100ms"})
    assert quick.resolution == pytest.approx(1.6)
    assert "scrape_timeout: 100ms" in prometheus_config(quick, RULES, AT, run_id="x")
    with pytest.raises(ValueError, match="longer than `scrape_interval`"):
        Monitoring.model_validate({**WRITTEN, "scrape_timeout": "1s"})


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian's prometheus) is not installed")
def test_promtool_accepts_the_prometheus_configuration(tmp_path: Path) -> None:
    path = tmp_path / "prometheus.yml"
    path.write_text(prometheus_config(SPEC, RULES, AT, run_id="FT-01-x"))
    result = subprocess.run(["promtool", "check", "config", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("amtool") is None, reason="amtool (Debian's prometheus-alertmanager) is not installed")
def test_amtool_accepts_the_alertmanager_configuration(tmp_path: Path) -> None:
    path = tmp_path / "alertmanager.yml"
    path.write_text(alertmanager_config(SPEC, AT))
    result = subprocess.run(["amtool", "check-config", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def _prometheus(body: dict | str, status: int = 200) -> httpx.Client:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/query" and request.url.params["query"] == "up"
        return httpx.Response(status, json=body) if isinstance(body, dict) else httpx.Response(status, text=body)

    return httpx.Client(transport=httpx.MockTransport(answer))


@pytest.mark.parametrize(("body", "value", "why"), [
    ({"status": "success", "data": {"resultType": "scalar", "result": [1.0, "0.25"]}}, 0.25, ""),
    ({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1.0, "3"]}]}},
     3.0, ""),
    ({"status": "success", "data": {"resultType": "vector", "result": []}}, None, "no data"),
    ({"status": "success", "data": {"resultType": "vector", "result": [{"value": [1, "1"]}, {"value": [1, "2"]}]}},
     None, "2 series; aggregate them"),
    ({"status": "success", "data": {"resultType": "vector", "result": [{"value": [1, "NaN"]}]}},
     None, "not a finite number"),
    ({"status": "success", "data": {"resultType": "matrix", "result": []}}, None, "a matrix, not a number"),
    ({"status": "error", "errorType": "bad_data", "error": "parse error"}, None, "bad_data: parse error"),
    ("<html>", None, "JSONDecodeError"),
])
def test_a_promql_condition_takes_one_number_or_says_why_not(body: dict | str, value: float | None, why: str) -> None:
    found, reason = query_value(_prometheus(body), "http://prometheus", "up")
    assert found == value
    assert why in reason


def _bin(tmp_path: Path, *names: str) -> str:
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    for name in names:
        path = folder / name
        path.write_text(f"#!/bin/sh\necho '{name}, version 9.9.9 (branch: test)'\n")
        path.chmod(0o755)
    return str(folder)


def test_missing_programs_are_an_infrastructure_error_naming_the_packages(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("FAULTLAB_PROMETHEUS", raising=False)
    monkeypatch.delenv("FAULTLAB_ALERTMANAGER", raising=False)
    monkeypatch.setenv("PATH", _bin(tmp_path))
    with pytest.raises(InfrastructureError) as info:
        find_binaries()
    assert info.value.exit_code == 3
    assert "apt-get install prometheus prometheus-alertmanager" in str(info.value)
    monkeypatch.setenv("PATH", _bin(tmp_path, "prometheus"))
    with pytest.raises(InfrastructureError, match="install the Debian package.s. prometheus-alertmanager "):
        find_binaries()


def test_the_programs_are_found_by_their_debian_or_upstream_names_or_named(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("FAULTLAB_PROMETHEUS", raising=False)
    monkeypatch.delenv("FAULTLAB_ALERTMANAGER", raising=False)
    monkeypatch.setenv("PATH", _bin(tmp_path, "prometheus", "alertmanager"))
    found = find_binaries()
    assert Path(found.alertmanager).name == "alertmanager"
    assert tool_versions(found) == {"prometheus": "9.9.9", "alertmanager": "9.9.9"}
    monkeypatch.setenv("FAULTLAB_ALERTMANAGER", os.path.join(_bin(tmp_path, "my-am"), "my-am"))
    assert Path(find_binaries().alertmanager).name == "my-am"
    monkeypatch.setenv("FAULTLAB_PROMETHEUS", "no-such-program")
    with pytest.raises(InfrastructureError, match="FAULTLAB_PROMETHEUS=no-such-program is not an executable"):
        find_binaries()
