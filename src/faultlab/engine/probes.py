"""Probes that sample the stack all through a run: the canary and the monitor.

- :class:`CanaryProbe` calls ``place(timeout_s)`` (one business request, supplied by the
  stack's plugin) at a fixed rate from a small pool of worker threads. Send times are
  deadlines on the run's clock, so a stalled request never delays the next sends; each call
  returns a :class:`~faultlab.plugin.CanaryOutcome` (or a mapping of its fields: ``ok``,
  ``status``, ``error``, ``ack``) which the probe timestamps (``t_send``, ``t_done``,
  ``latency_s``) and records.
- :class:`MonitorProbe` polls the stack's own readiness URL (and optionally a metrics URL)
  at 10 Hz or faster with httpx, each request timing out before the next is due.

Samples go to a :class:`~faultlab.journal.JournalWriter` (``canary.jsonl``,
``monitor.jsonl``) and are published to a :class:`~faultlab.hub.Hub` as ``sample`` (canary)
and ``monitor`` events. Both probes are context managers; :meth:`stop` is idempotent.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from faultlab.engine.clock import Clock, MonotonicClock
from faultlab.hub import Hub, Observer
from faultlab.journal import CanarySample, JournalWriter, MonitorSample
from faultlab.plugin.results import CanaryOutcome, canary_outcome

__all__ = ["CanaryProbe", "MonitorProbe", "parse_prometheus", "labelled"]

log = logging.getLogger(__name__)


class CanaryProbe:
    """Fires ``place(timeout_s)`` ``rate_hz`` times a second until stopped.

    ``place`` gets the seconds it may take and returns a CanaryOutcome or a mapping with any
    of ``ok`` (default True), ``status``, ``error``, ``ack``; an exception is a failed sample
    with the error.
    A call slower than ``timeout_s`` is a failure even if it succeeded. When every worker
    is still busy at a send time (calls hanging past their timeout), that send is recorded
    as failed ("not sent") rather than queued late. ``workers`` defaults to enough for
    ``rate_hz * timeout_s`` calls in flight, plus two.
    """

    def __init__(
        self,
        place: Callable[[float], CanaryOutcome | Mapping[str, Any]],
        *,
        rate_hz: float,
        timeout_s: float,
        origin: float,
        clock: Clock | None = None,
        journal: JournalWriter | None = None,
        observers: Hub | Iterable[Observer] = (),
        workers: int | None = None,
    ):
        if rate_hz <= 0 or timeout_s <= 0:
            raise ValueError("rate_hz and timeout_s must be positive")
        self.place = place
        self.interval_s = 1.0 / rate_hz
        self.timeout_s = timeout_s
        self.origin = origin
        self.clock: Clock = clock or MonotonicClock()
        self.journal = journal
        self.hub = Hub.of(observers)
        self.workers = workers or math.ceil(rate_hz * timeout_s) + 2
        self.samples: list[CanarySample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._queue: queue.SimpleQueue[float | None] = queue.SimpleQueue()
        self._idle = 0
        self._in_flight: dict[int, float] = {}
        self._threads: list[threading.Thread] = []
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> CanaryProbe:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start the worker pool and the send schedule (first send at once)."""
        if self._ticker is not None:
            raise RuntimeError("the canary probe was already started")
        for n in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"faultlab-canary-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self._idle = self.workers
        self._ticker = threading.Thread(target=self._tick, name="faultlab-canary", daemon=True)
        self._ticker.start()

    def _tick(self) -> None:
        first = self.clock.now()
        k = 0
        while not self._stop.is_set():
            due = first + k * self.interval_s
            if self.clock.sleep_until(due, self._stop):
                return
            k += 1
            with self._lock:
                has_worker = self._idle > 0
                if has_worker:
                    self._idle -= 1
            if has_worker:
                self._queue.put(due)
            else:
                t = due - self.origin
                busy = self.workers
                self._record(CanarySample(t_send=t, t_done=t, ok=False, latency_s=0.0,
                                          error=f"not sent: all {busy} probe workers still waiting on earlier calls"))
            # a late tick (the machine stalled) skips the sends it missed instead of bursting
            behind = self.clock.now() - (first + k * self.interval_s)
            if behind > self.interval_s:
                k += int(behind // self.interval_s)

    def _work(self) -> None:
        ident = threading.get_ident()
        while True:
            due = self._queue.get()
            if due is None:
                return
            t_send = self.clock.now()
            with self._lock:
                self._in_flight[ident] = t_send
            try:
                result = canary_outcome(self.place(self.timeout_s) or {})
                error = result.error
            except Exception as exc:
                result, error = CanaryOutcome(ok=False), f"{type(exc).__name__}: {exc}"
            t_done = self.clock.now()
            with self._lock:
                started = self._in_flight.pop(ident, None)
                self._idle += 1
            if started is None:
                continue  # stop() already recorded this call as unanswered
            latency = t_done - t_send
            ok = result.ok and error is None
            if ok and latency > self.timeout_s:
                ok, error = False, f"answered after {latency:.3f} s, over the {self.timeout_s:g} s timeout"
            self._record(CanarySample(
                t_send=t_send - self.origin, t_done=t_done - self.origin, ok=ok, latency_s=latency,
                status=result.status, error=error, ack=result.ack, request_id=result.request_id,
                extra=dict(result.detail),
            ))

    def _record(self, sample: CanarySample) -> None:
        with self._lock:
            self.samples.append(sample)
        if self.journal is not None:
            try:
                self.journal.canary(sample)
            except Exception:
                log.exception("could not journal a canary sample")
        self.hub.publish("sample", sample=sample)

    def stop(self, *, drain_s: float | None = None) -> None:
        """Stop sending; wait up to ``drain_s`` (default: the timeout) for calls in flight,
        then record those still unanswered as failures. Idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        for _ in self._threads:
            self._queue.put(None)
        wait = self.timeout_s if drain_s is None else drain_s
        deadline = self.clock.now() + wait
        for thread in self._threads:
            remaining = deadline - self.clock.now()
            thread.join(max(0.0, remaining))
        now = self.clock.now()
        with self._lock:
            hung, self._in_flight = dict(self._in_flight), {}
        for t_send in sorted(hung.values()):
            self._record(CanarySample(t_send=t_send - self.origin, t_done=now - self.origin, ok=False,
                                      latency_s=now - t_send, error="no answer by the end of the probe"))


def parse_prometheus(text: str) -> dict[str, float]:
    """Prometheus text exposition to ``{"name{label=\\"v\\"}": value}`` (samples only)."""
    from prometheus_client.parser import text_string_to_metric_families

    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return values


_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def labelled(key: str, **labels: str) -> str:
    """A series key of :func:`parse_prometheus` (``name{a="1"}``) with ``labels`` added, the
    labels in name order as there."""
    name, brace, rest = key.partition("{")
    found = dict(_LABEL.findall(rest)) if brace else {}
    found.update(labels)
    return f"{name}{{{','.join(f'{k}={chr(34)}{v}{chr(34)}' for k, v in sorted(found.items()))}}}"


class MonitorProbe:
    """Polls ``ready_url`` every ``interval_s`` (default 0.1 s) on its own thread.

    ``ready`` is a 2xx answer; the request times out after ``timeout_s`` (default 80 % of
    the interval) so polls never pile up. A JSON body goes into ``detail["body"]``; with a
    ``metrics_url`` every ``metrics_every``-th poll also scrapes it into
    ``detail["metrics"]`` through ``parse_metrics`` (Prometheus text by default).

    ``scrape`` (``{service: url}``) scrapes services' metrics on a thread of its own, every
    ``metrics_every`` intervals, each request within ``scrape_timeout_s``, so a slow metrics
    endpoint never delays a readiness poll. Each series is labelled ``service="<name>"``;
    the next poll after a scrape carries it in ``detail["metrics"]`` with the time the
    scrape began (``detail["metrics_t"]``), and the services that did not answer in
    ``detail["metrics_error"]``.
    """

    def __init__(
        self,
        ready_url: str,
        *,
        origin: float,
        interval_s: float = 0.1,
        timeout_s: float | None = None,
        metrics_url: str | None = None,
        metrics_every: int = 10,
        parse_metrics: Callable[[str], Mapping[str, Any]] | None = None,
        scrape: Mapping[str, str] | None = None,
        scrape_timeout_s: float = 1.0,
        clock: Clock | None = None,
        journal: JournalWriter | None = None,
        observers: Hub | Iterable[Observer] = (),
    ):
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.ready_url = ready_url
        self.origin = origin
        self.interval_s = interval_s
        self.timeout_s = timeout_s if timeout_s is not None else 0.8 * interval_s
        if self.timeout_s >= interval_s:
            raise ValueError("the poll timeout must be below the interval")
        self.metrics_url = metrics_url
        self.metrics_every = max(1, metrics_every)
        self.parse_metrics = parse_metrics or parse_prometheus
        self.scrape = dict(scrape or {})
        self.scrape_timeout_s = scrape_timeout_s
        self._scraped: dict[str, Any] | None = None
        self._scraper: threading.Thread | None = None
        self.clock: Clock = clock or MonotonicClock()
        self.journal = journal
        self.hub = Hub.of(observers)
        self.samples: list[MonitorSample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> MonitorProbe:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start polling (first poll at once)."""
        if self._thread is not None:
            raise RuntimeError("the monitor probe was already started")
        self._thread = threading.Thread(target=self._run, name="faultlab-monitor", daemon=True)
        self._thread.start()
        if self.scrape:
            self._scraper = threading.Thread(target=self._scrape_loop, name="faultlab-scrape", daemon=True)
            self._scraper.start()

    def stop(self) -> None:
        """Stop polling and wait for the poll in progress (at most one timeout). Idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout_s * 2 + 1.0)
        if self._scraper is not None:
            self._scraper.join(self.scrape_timeout_s * len(self.scrape) + 1.0)

    def _run(self) -> None:
        import httpx

        first = self.clock.now()
        k = 0
        with httpx.Client(timeout=self.timeout_s) as client:
            while not self._stop.is_set():
                due = first + k * self.interval_s
                if self.clock.sleep_until(due, self._stop):
                    return
                sample = self.poll(client, scrape=self.metrics_url is not None and k % self.metrics_every == 0)
                with self._lock:
                    self.samples.append(sample)
                if self.journal is not None:
                    try:
                        self.journal.monitor(sample)
                    except Exception:
                        log.exception("could not journal a monitor sample")
                self.hub.publish("monitor", sample=sample)
                k += 1
                behind = self.clock.now() - (first + k * self.interval_s)
                if behind > 0:
                    k += math.ceil(behind / self.interval_s)

    def poll(self, client: Any, *, scrape: bool = False) -> MonitorSample:
        """One readiness poll (and metrics scrape) through ``client``, as a sample."""
        import httpx

        t0 = self.clock.now()
        detail: dict[str, Any] = {}
        status = None
        try:
            response = client.get(self.ready_url, timeout=self.timeout_s)
            status = response.status_code
            if "json" in response.headers.get("content-type", ""):
                with contextlib.suppress(ValueError):
                    detail["body"] = response.json()
        except httpx.HTTPError as exc:
            detail["error"] = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        latency = self.clock.now() - t0
        if scrape and self.metrics_url:
            try:
                metrics = client.get(self.metrics_url, timeout=self.timeout_s)
                detail["metrics"] = dict(self.parse_metrics(metrics.text))
            except Exception as exc:
                detail["metrics_error"] = f"{type(exc).__name__}: {exc}"
        with self._lock:
            scraped, self._scraped = self._scraped, None
        if scraped is not None:
            detail["metrics"] = {**detail.get("metrics", {}), **scraped["metrics"]}
            detail["metrics_t"] = scraped["t"]
            if scraped["errors"]:
                detail["metrics_error"] = "; ".join([*filter(None, [detail.get("metrics_error")]), *scraped["errors"]])
        ready = status is not None and 200 <= status < 300
        return MonitorSample(t=t0 - self.origin, ready=ready, status=status, latency_s=latency, detail=detail)

    def _scrape_loop(self) -> None:
        import httpx

        period = self.interval_s * self.metrics_every
        first = self.clock.now()
        k = 0
        with httpx.Client(timeout=self.scrape_timeout_s) as client:
            while not self._stop.is_set():
                if self.clock.sleep_until(first + k * period, self._stop):
                    return
                scraped = self.scrape_services(client)
                with self._lock:
                    self._scraped = scraped
                k = max(k + 1, math.ceil((self.clock.now() - first) / period))

    def scrape_services(self, client: Any) -> dict[str, Any]:
        """One scrape of every service of ``scrape`` through ``client``: ``{"t", "metrics", "errors"}``,
        each series labelled with its service."""
        t = self.clock.now() - self.origin
        series: dict[str, float] = {}
        errors: list[str] = []
        for service, url in self.scrape.items():
            try:
                response = client.get(url, timeout=self.scrape_timeout_s)
                found = self.parse_metrics(response.text)
            except Exception as exc:
                errors.append(f"{service}: {type(exc).__name__}: {exc}")
                continue
            for key, value in found.items():
                series[labelled(key, service=service)] = value
        return {"t": t, "metrics": series, "errors": errors}
