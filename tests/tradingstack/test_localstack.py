"""LocalStack's readiness wait when the service is not there (no processes started)."""

from __future__ import annotations

import pytest

from faultlab.errors import ServiceFailed
from tradingstack.localstack import LocalStack, Service


def test_waiting_for_a_service_that_was_never_started_says_so(workdir):
    stack = LocalStack(workdir / "stack")
    stack.services["gateway"] = Service("gateway", "tradingstack.gateway", stack.ports["gateway"], {},
                                        workdir / "gateway.log")
    with pytest.raises(ServiceFailed, match="gateway is not running"):
        stack.wait_ready("gateway", timeout=1.0)
