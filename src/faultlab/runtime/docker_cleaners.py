"""What ``faultlab cleanup`` does for a docker run a ``kill -9`` left behind.

Two ledger cleaners, registered in the ``faultlab.cleaners`` entry points like any plugin's:

- ``packet_filter`` (rank 25): delete a packet filter's iptables chain in its container's
  network namespace, from a helper container joined to it (the container may hold it still);
- ``docker_run`` (rank 70, after the PostgreSQL sessions and settings were undone through the
  still running containers): remove every container (paused ones too), network and volume
  labelled ``faultlab.run=<run id>`` on the engine the run used.

Both are idempotent: what is gone already is a success.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from faultlab.runtime.docker import ROLE_LABEL, RUN_LABEL
from faultlab.runtime.ledger import cleaner

__all__: list[str] = []


def _client(entry: Mapping[str, Any]) -> Any:
    from faultlab.runtime.engine import connect

    return connect(entry.get("engine"), timeout_s=60)


@cleaner(rank=25)
def _remove_packet_filter(entry: Mapping[str, Any], **_: Any) -> list[tuple[str, bool, str]]:
    """Delete a packet filter's iptables chain in its container's network namespace."""
    from faultlab.runtime.engine import docker_sdk

    container_id, chain = str(entry["container"]), str(entry["chain"])
    what = f"remove iptables chain {chain} of container {container_id[:12]}"
    client = _client(entry)
    try:
        container = client.containers.get(container_id)
    except docker_sdk().errors.NotFound:
        return [(what, True, "container gone, and its rules with its network namespace")]
    if container.status != "running":
        return [(what, True, f"container {container.status}: its network namespace is gone")]
    from faultlab.runtime.containers import run_in_namespace, unfilter_script

    run_in_namespace(client, str(entry["image"]), container, unfilter_script(chain),
                     labels={RUN_LABEL: str(entry.get("run_id", "")), ROLE_LABEL: "filter"})
    return [(what, True, "removed")]


@cleaner(rank=70)
def _remove_run_resources(entry: Mapping[str, Any], *, run_id: str, **_: Any) -> list[tuple[str, bool, str]]:
    """Remove every container (paused ones too), network and volume labelled with the run."""
    client = _client(entry)
    label = {"label": f"{RUN_LABEL}={entry.get('run_id', run_id)}"}
    results: list[tuple[str, bool, str]] = []
    for container in client.containers.list(all=True, filters=label):
        what = f"remove container {container.name}"
        try:
            if container.status == "paused":
                container.unpause()
            container.remove(force=True, v=True)
            results.append((what, True, "removed"))
        except Exception as exc:  # noqa: BLE001 - reported, and the ledger kept
            results.append((what, False, f"{type(exc).__name__}: {exc}"))
    for network in client.networks.list(filters=label):
        what = f"remove network {network.name}"
        try:
            network.remove()
            results.append((what, True, "removed"))
        except Exception as exc:  # noqa: BLE001
            results.append((what, False, f"{type(exc).__name__}: {exc}"))
    for volume in client.volumes.list(filters=label):
        what = f"remove volume {volume.name}"
        try:
            volume.remove(force=True)
            results.append((what, True, "removed"))
        except Exception as exc:  # noqa: BLE001
            results.append((what, False, f"{type(exc).__name__}: {exc}"))
    engine = entry.get("engine")
    return results or [(f"containers, networks and volumes of the run on {engine}", True, "none left")]
