"""The scenario registry: every timed scenario is a function registered with `@scenario`.

Adding a scenario (e.g. when goals, health lights or forecasting land) means
adding a module to this package; every module here is imported by `discover()`,
so nothing else needs to change. A scenario function takes the run's `Context`
and returns the operation to time (a no-argument callable that raises
`BenchError` when the response is wrong, so a broken page never counts as a
fast one). `roles` runs the same scenario as several users (rep, manager, ...).

Targets are the figures the issue asks for at scale M; the report compares
against them but nothing fails on them (speed is measured, never asserted).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class BenchError(Exception):
    """A scenario's operation returned a wrong result (status, shape, count)."""


class Skip(Exception):  # noqa: N818 (a signal, not an error)
    """The scenario does not apply to this run (e.g. no scheduler jobs registered yet)."""


@dataclass
class Scenario:
    name: str
    title: str
    setup: Callable[..., Callable[[], Any]]
    roles: tuple[str, ...] = ("",)
    target_ms: float | None = None
    target_queries: int | None = None
    heavy: bool = False  # whole-dataset work: fewer repeats, no warm-up
    group: str = "pages"
    extra: dict = field(default_factory=dict)


SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str, *, title: str, roles=("",), target_ms=None, target_queries=None, heavy=False,
             group="pages"):
    def register(fn):
        if name in SCENARIOS:
            raise ValueError(f"scenario {name} registered twice")
        SCENARIOS[name] = Scenario(name=name, title=title, setup=fn, roles=tuple(roles), target_ms=target_ms,
                                   target_queries=target_queries, heavy=heavy, group=group)
        return fn

    return register


def discover() -> dict[str, Scenario]:
    """Import every module of this package (each registers its scenarios)."""
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    return SCENARIOS


def check(resp, status: int = 200):
    """The response of a timed request must be the right one."""
    if resp.status_code != status:
        body = getattr(resp, "content", b"")[:300]
        raise BenchError(f"{resp.request.get('PATH_INFO')} → {resp.status_code} (expected {status}): {body!r}")
    return resp
