"""faultlab's pytest plugin: drills as tests, and fixtures to fault your own code.

Registered through the ``pytest11`` entry point (``faultlab = "faultlab.pytest_plugin"``),
so any project that installs faultlab has it. It does nothing unless asked:

``pytest --faultlab drills/ci-gate.yaml``
    Collects one test per target of every scenario in the plan
    (``drills/ci-gate.yaml::GATE-01::recover_within``). Each scenario runs once, when its
    first target is tested (:func:`faultlab.engine.plan.run_trial`, as ``faultlab drill``
    runs it); each target then passes or fails with the measured value against the target.
    Runs and their reports are written under ``--faultlab-reports`` (default ``reports``).

Fixtures for your own tests:

``faultlab_stack``
    A factory: ``stack = faultlab_stack("stacks/shop.yaml")`` brings a stack file up with
    the runtime it names (``local`` by default) and returns its
    :class:`~faultlab.runtime.base.StackHandle` (``.url()``, ``.link_address()``, ``.dsn()``,
    ``.proxy_api``, ``.service(name)``, ``.database(name)``); every stack it brought up is
    torn down after the test.
``fault_proxy``
    An embedded faultlab proxy server on 127.0.0.1 (the Toxiproxy v2 API): ``.url`` is the
    API's address, ``.create(name, upstream)`` makes a proxy and returns its
    ``127.0.0.1:PORT`` listen address.
``drill``
    Faults as context managers, using the fault kinds' own ``inject`` and ``revert`` (the
    revert runs whatever happens in the block)::

        with drill.partition(fault_proxy, "db"):
            ...
        with drill.fault(local, "latency", "gateway-db", latency="200ms"):
            ...

    The first argument is a stack from ``faultlab_stack`` or the ``fault_proxy``: link faults
    work on both, process and database faults on a stack. Load and job faults need a
    running drill and are refused here with a FaultError saying so.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from faultlab.model.stack import Stack
    from faultlab.runtime.base import StackHandle

__all__ = ["FaultProxy", "Drill", "DrillTargetMissed"]


def pytest_addoption(parser: Any) -> None:
    """``--faultlab PLAN`` and ``--faultlab-reports DIR``."""
    group = parser.getgroup("faultlab", "faultlab drills as tests")
    group.addoption("--faultlab", action="append", default=[], metavar="PLAN", dest="faultlab_plans",
                    help="collect one test per scenario target of this drill plan (repeatable)")
    group.addoption("--faultlab-reports", default="reports", metavar="DIR", dest="faultlab_reports",
                    help="where the drills' run directories go (default: reports)")


def pytest_configure(config: Any) -> None:
    """Register the ``faultlab`` marker the drill items carry."""
    config.addinivalue_line("markers", "faultlab: a scenario target collected from a faultlab drill plan")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: Any, config: Any, items: list[Any]) -> None:
    """Add the items of every ``--faultlab`` plan (nothing without the option)."""
    # tryfirst: the drill items are in place before -k / -m deselect anything.
    for plan in config.getoption("faultlab_plans", default=[]) or []:
        node = DrillPlanFile.from_parent(session, path=Path(plan).resolve())
        items.extend(session.genitems(node))


class DrillTargetMissed(Exception):
    """A scenario target was missed (or could not be judged)."""


class DrillPlanFile(pytest.File):
    """A drill plan: one collector per scenario."""

    def collect(self) -> Iterator[Any]:
        from faultlab.loader import load_plan

        plan = load_plan(self.path)
        for scenario in plan.resolved_scenarios:
            yield ScenarioNode.from_parent(self, name=scenario.id, scenario=scenario)

    def repr_failure(self, excinfo: Any, style: Any = None) -> Any:
        from faultlab.errors import FaultlabError

        if isinstance(excinfo.value, FaultlabError):
            return f"faultlab could not load the drill plan:\n{excinfo.value}"
        return super().repr_failure(excinfo)


class ScenarioNode(pytest.Collector):
    """A scenario of the plan: runs once, lazily, and yields one item per target."""

    def __init__(self, *, scenario: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self._outcome: tuple[Any, BaseException | None] | None = None

    def collect(self) -> Iterator[Any]:
        from faultlab.analysis.targets import HOW_MEASURED

        for key in self.scenario.targets.model_dump(exclude_none=True):
            if key in HOW_MEASURED:
                continue  # says how detect_within is measured; judged with it
            item = TargetItem.from_parent(self, name=key)
            item.add_marker("faultlab")
            yield item

    def outcome(self) -> Any:
        """The scenario's analysis (running it the first time); re-raises a failed run's error."""
        if self._outcome is None:
            from faultlab.engine.plan import run_trial
            from faultlab.errors import FaultlabError, Interrupted

            reports = Path(self.config.getoption("faultlab_reports"))
            if not reports.is_absolute():
                reports = Path(self.config.rootpath) / reports
            try:
                self._outcome = (run_trial(self.scenario, reports_dir=reports).analysis, None)
            except Interrupted as exc:
                raise KeyboardInterrupt(str(exc)) from exc
            except FaultlabError as exc:
                self._outcome = (None, exc)
        analysis, error = self._outcome
        if error is not None:
            raise DrillTargetMissed(f"the drill could not run: {type(error).__name__}: {error}")
        return analysis


class TargetItem(pytest.Item):
    """One target of one scenario, judged on the scenario's single run."""

    @property
    def scenario_node(self) -> ScenarioNode:
        """The scenario this target belongs to."""
        assert isinstance(self.parent, ScenarioNode)
        return self.parent

    def runtest(self) -> None:
        from faultlab.report.junit import verdict_message

        analysis = self.scenario_node.outcome()
        verdicts = [v for v in analysis.verdicts if v.target == self.name]
        if analysis.status != "completed":
            raise DrillTargetMissed(f"the run did not complete: status {analysis.status} "
                                    f"({analysis.end_reason}); run directory {analysis.run_dir}")
        if not verdicts:
            raise DrillTargetMissed(f"no verdict for target {self.name}")
        verdict = verdicts[0]
        self.user_properties.append(("run_dir", analysis.run_dir))
        self.user_properties.append(("measured", verdict_message(verdict)))
        if not verdict.met:
            raise DrillTargetMissed(f"{verdict_message(verdict)}; run directory {analysis.run_dir}")

    def repr_failure(self, excinfo: Any, style: Any = None) -> Any:
        if isinstance(excinfo.value, DrillTargetMissed):
            return f"{self.scenario_node.name} {self.name}: {excinfo.value}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, f"{self.scenario_node.name}::{self.name}"


# -- fixtures -----------------------------------------------------------------------------


class FaultProxy:
    """An embedded faultlab proxy server (Toxiproxy v2 API) on 127.0.0.1."""

    ledger = None

    def __init__(self, server: Any):
        self.server = server

    @property
    def url(self) -> str:
        """The API's base URL, ``http://127.0.0.1:PORT``."""
        return self.server.url

    @property
    def proxy_api(self) -> str:
        """Same as :attr:`url` (the name a stack uses, so ``drill`` takes either)."""
        return str(self.server.url)

    @property
    def client(self) -> Any:
        """A ``toxiproxy-python`` client on this server."""
        from faultlab.runtime.base import proxy_client

        return proxy_client(self.url)

    def create(self, name: str, upstream: str, listen: str = "127.0.0.1:0") -> str:
        """Create proxy ``name`` to ``upstream`` (``host:port``); return its listen address."""
        return str(self.client.create(upstream=upstream, name=name, listen=listen, enabled=True).listen)

    def address(self, name: str) -> str:
        """The listen address of proxy ``name``."""
        return str(self.client.get_proxy(name).listen)

    @property
    def handle(self) -> StackHandle:
        """This proxy as a :class:`~faultlab.runtime.base.StackHandle` of a stack without
        services (what the ``drill`` fixture's faults act on)."""
        from faultlab.runtime.base import ProxyOnlyStack

        return ProxyOnlyStack(self.url, self.address, who="the fault_proxy fixture",
                              instead="bring a stack up with the faultlab_stack fixture")


class Drill:
    """Faults as context managers on a stack or a fault proxy (see the module doc)."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)

    @contextlib.contextmanager
    def fault(self, stack: StackHandle | FaultProxy, kind: str, target: str = "", **params: Any) -> Iterator[Any]:
        """Inject fault ``kind`` (a ``faultlab kinds`` name) on ``target`` with its parameters
        (written as in a scenario: ``latency="200ms"``); revert it when the block ends, with
        what the inject did (even when it failed half way). Yields the inject result."""
        from faultlab.engine.context import FaultContext
        from faultlab.plugin import load_plugin
        from faultlab.registry import fault_kinds

        kind_class = fault_kinds.get(kind)
        validated = kind_class.validate_params(params)
        fault = kind_class()
        handle = stack.handle if isinstance(stack, FaultProxy) else stack
        ctx = FaultContext(fault_id=f"pytest-{next(self._ids)}", stack=handle, plugin=load_plugin(None))
        injected = None
        try:
            injected = fault.inject(ctx, target, validated)
            yield injected
        finally:
            fault.revert(ctx, target, validated, injected if injected is not None else ctx.kept)

    def partition(self, stack: StackHandle | FaultProxy, link: str) -> contextlib.AbstractContextManager[Any]:
        """Take ``link`` down: connections refused and cut."""
        return self.fault(stack, "partition", link)

    def latency(self, stack: StackHandle | FaultProxy, link: str, latency: str,
                **params: Any) -> contextlib.AbstractContextManager[Any]:
        """Delay the data on ``link`` (``stream=``, ``jitter=`` as in a scenario)."""
        return self.fault(stack, "latency", link, latency=latency, **params)

    def stall(self, stack: StackHandle | FaultProxy, link: str,
              **params: Any) -> contextlib.AbstractContextManager[Any]:
        """Swallow the data on ``link`` while connections stay open."""
        return self.fault(stack, "stall", link, **params)


@pytest.fixture
def faultlab_stack(tmp_path_factory: Any) -> Iterator[Any]:
    """A factory bringing stack files up with the runtime each names; all torn down after the test."""
    with contextlib.ExitStack() as stacks:

        def up(stack_file: str | Path | Stack) -> StackHandle:
            from faultlab.engine.run import new_run_id
            from faultlab.loader import load_stack
            from faultlab.registry import runtimes
            from faultlab.runtime.ledger import Ledger

            stack = load_stack(stack_file) if isinstance(stack_file, (str, Path)) else stack_file
            run_id = new_run_id(stack.name)
            ledger = Ledger(run_id)
            stacks.callback(ledger.close)
            run_dir = tmp_path_factory.mktemp(f"faultlab-{stack.name}")
            runtime = runtimes.get(stack.runtime)()
            return stacks.enter_context(runtime.bring_up(stack, run_dir, ledger=ledger))

        yield up


@pytest.fixture
def fault_proxy() -> Iterator[FaultProxy]:
    """An embedded fault proxy server on 127.0.0.1 (a free port), stopped after the test."""
    from faultlab.proxy import ProxyServer

    server = ProxyServer(host="127.0.0.1", port=0)
    server.start()
    try:
        yield FaultProxy(server)
    finally:
        server.stop()


@pytest.fixture
def drill() -> Drill:
    """Faults as context managers: ``with drill.partition(stack, "link"):``."""
    return Drill()
