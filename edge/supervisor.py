"""Thread supervision for the edge worker: no thread dies quietly.

An uncaught exception used to end a thread for good: the MQTT network thread died in
on_publish when the disk was full (the broker then dropped the client for missed
keepalives and it never reconnected), and the status loop had no guard at all. A
supervised thread runs its target in a loop instead: an exception is logged (with the
traceback, as a structured line), counted, and the target started again after a capped
exponential backoff. A target that returns has finished its job (a stop was asked for)
and is not restarted.

Threads that the worker does not create itself (paho's network thread, an inference
engine's loop) are *watched*: ``check()`` finds them dead and starts them again through
a callback. A process-wide ``threading.excepthook`` logs and counts the deaths of any
thread, so a watched thread's exception is not lost either.

A thread that keeps dying (``max_deaths`` within ``window_s``) is *failing*: the
Prometheus collector exports it and ``edgewatch edge health`` fails, so the container
is restarted by its orchestrator if restarting the thread in place does not help.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

_hook_lock = threading.Lock()
_hook_installed = False
_last_errors: dict[str, str] = {}  # thread name -> last uncaught exception (excepthook)


def install_excepthook() -> None:
    """Log (structured) and remember every uncaught exception that ends a thread."""
    global _hook_installed
    with _hook_lock:
        if _hook_installed:
            return
        previous = threading.excepthook

        def hook(args: threading.ExceptHookArgs) -> None:
            name = args.thread.name if args.thread is not None else "?"
            if args.exc_type is SystemExit:
                previous(args)
                return
            _last_errors[name] = f"{args.exc_type.__name__}: {args.exc_value}"
            log.error(
                "thread died with an uncaught exception",
                extra={"thread_name": name, "error": _last_errors[name]},
                exc_info=(args.exc_type, args.exc_value, args.exc_traceback),  # type: ignore[arg-type]
            )

        threading.excepthook = hook
        _hook_installed = True


def last_error(thread_name: str) -> str | None:
    return _last_errors.pop(thread_name, None)


@dataclass
class ThreadState:
    name: str
    deaths: int = 0
    restarts: int = 0
    last_error: str | None = None
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=64))  # monotonic
    alive: bool = False


@dataclass
class _Watch:
    name: str
    is_alive: Callable[[], bool]
    restart: Callable[[], None]


class Supervisor:
    """Runs, restarts and reports the threads of one worker (or one publisher)."""

    def __init__(
        self,
        stop: threading.Event | None = None,
        *,
        window_s: float = 120.0,
        max_deaths: int = 3,
        backoff_s: float = 0.5,
        backoff_max_s: float = 30.0,
        stable_s: float = 60.0,
    ) -> None:
        self.stop = stop or threading.Event()
        self.window_s = window_s
        self.max_deaths = max_deaths
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.stable_s = stable_s
        self._lock = threading.Lock()
        self._states: dict[str, ThreadState] = {}
        self._watches: list[_Watch] = []
        install_excepthook()

    # -- supervised threads ------------------------------------------------------------------

    def thread(self, name: str, target: Callable[..., Any], *args: Any) -> threading.Thread:
        """A daemon thread (not started) that runs ``target(*args)`` under supervision."""
        self._state(name)
        return threading.Thread(target=self._run, args=(name, target, args), name=name, daemon=True)

    def _run(self, name: str, target: Callable[..., Any], args: tuple[Any, ...]) -> None:
        delay = self.backoff_s
        while True:
            started = time.monotonic()
            self._set_alive(name, True)
            try:
                target(*args)
                return  # finished its job (a stop was asked for)
            except Exception as exc:  # logged, counted and restarted
                if time.monotonic() - started >= self.stable_s:
                    delay = self.backoff_s  # it ran well for a while: restart quickly
                deaths = self.record_death(name, f"{type(exc).__name__}: {exc}")
                try:
                    log.exception(
                        "thread died; restarting",
                        extra={
                            "thread_name": name,
                            "deaths": deaths,
                            "restart_in_s": round(delay, 2),
                            "failing": self.failing(name),
                        },
                    )
                except Exception:  # a broken log handler must not end the supervision
                    pass
            finally:
                self._set_alive(name, False)
            if self.stop.wait(delay):
                return
            delay = min(self.backoff_max_s, delay * 2)
            with self._lock:
                self._states[name].restarts += 1

    # -- watched threads (created elsewhere) -------------------------------------------------

    def watch(self, name: str, is_alive: Callable[[], bool], restart: Callable[[], None]) -> None:
        """Check ``is_alive`` on every ``check()``; when it is dead, count it and ``restart``."""
        self._state(name)
        with self._lock:
            self._watches.append(_Watch(name, is_alive, restart))

    def check(self) -> None:
        """Restart the watched threads found dead (call it periodically; cheap)."""
        if self.stop.is_set():
            return
        with self._lock:
            watches = list(self._watches)
        for w in watches:
            try:
                alive = w.is_alive()
                self._set_alive(w.name, alive)
                if alive or self.stop.is_set():
                    continue
                deaths = self.record_death(w.name, last_error(w.name) or "thread ended")
                log.error(
                    "watched thread died; restarting",
                    extra={
                        "thread_name": w.name,
                        "deaths": deaths,
                        "failing": self.failing(w.name),
                    },
                )
                w.restart()
                with self._lock:
                    self._states[w.name].restarts += 1
                self._set_alive(w.name, w.is_alive())
            except Exception:  # a failed restart: tried again next check
                log.exception("could not restart a watched thread", extra={"thread_name": w.name})

    # -- state -------------------------------------------------------------------------------

    def _state(self, name: str) -> ThreadState:
        with self._lock:
            return self._states.setdefault(name, ThreadState(name))

    def _set_alive(self, name: str, alive: bool) -> None:
        with self._lock:
            self._states.setdefault(name, ThreadState(name)).alive = alive

    def record_death(self, name: str, error: str) -> int:
        with self._lock:
            st = self._states.setdefault(name, ThreadState(name))
            st.deaths += 1
            st.last_error = error[:500]
            st.recent.append(time.monotonic())
            return st.deaths

    def failing(self, name: str) -> bool:
        """True when ``name`` died ``max_deaths`` times within the last ``window_s``."""
        now = time.monotonic()
        with self._lock:
            st = self._states.get(name)
            if st is None:
                return False
            return sum(1 for t in st.recent if now - t <= self.window_s) >= self.max_deaths

    def states(self) -> list[ThreadState]:
        with self._lock:
            return [
                ThreadState(s.name, s.deaths, s.restarts, s.last_error, deque(s.recent), s.alive)
                for s in self._states.values()
            ]

    def collector(self) -> SupervisorCollector:
        return SupervisorCollector(self)


class SupervisorCollector(Collector):
    """Thread figures, computed when Prometheus scrapes (so they are fresh even when the
    status loop itself is the thread that keeps dying)."""

    def __init__(self, *supervisors: Supervisor) -> None:
        self.supervisors = list(supervisors)

    def add(self, supervisor: Supervisor) -> None:
        if supervisor not in self.supervisors:
            self.supervisors.append(supervisor)

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        deaths = CounterMetricFamily(
            "edgewatch_worker_thread_deaths",
            "Uncaught exceptions that ended a worker thread (it was restarted)",
            labels=["thread"],
        )
        failing = GaugeMetricFamily(
            "edgewatch_worker_thread_failing",
            "1 while the thread keeps dying (edgewatch edge health fails)",
            labels=["thread"],
        )
        total = GaugeMetricFamily(
            "edgewatch_worker_threads_failing", "Threads that keep dying (0 when healthy)"
        )
        n_failing = 0
        for sup in self.supervisors:
            for st in sup.states():
                if st.deaths == 0:
                    continue  # only threads that ever died get series (hundreds of cameras)
                is_failing = sup.failing(st.name)
                n_failing += is_failing
                deaths.add_metric([st.name], st.deaths)
                failing.add_metric([st.name], 1.0 if is_failing else 0.0)
        total.add_metric([], n_failing)
        yield deaths
        yield failing
        yield total
