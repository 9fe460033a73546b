"""The scenario registry: each scenario is a function that runs one measurement.

A scenario function takes the run's :class:`~bench.context.Context` and returns the seconds
it measured, or a :class:`Measurement` when it has extra numbers to report. It raises
:class:`Skip` when an optional peer is missing, and any other exception when the measurement
failed (a tool exited non-zero, a status was not Success, ...). Register with::

    @scenario("echo.dcmtk-dcmtk", "echo: DCMTK echoscu -> DCMTK storescp", items=2000)
    def dcmtk_to_dcmtk(ctx: Context) -> float: ...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .context import Context


class Skip(Exception):
    """The scenario cannot run here (an optional peer is missing); not a failure."""


@dataclass(slots=True)
class Measurement:
    """One run of a scenario: the seconds measured and optional extra numbers."""

    seconds: float
    extra: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Figure:
    """A number from ``Measurement.extra`` that the table shows in the rate column instead of
    a rate, when time is not the point of a scenario (e.g. the MB of RSS growth)."""

    key: str  # in Measurement.extra: "rss_growth_MB"
    label: str  # after the median: "MB RSS growth"
    limit: float | None = None  # an absolute target (the median must stay below it), or None


ScenarioFn = Callable[["Context"], "Measurement | float"]


@dataclass(frozen=True, slots=True)
class Scenario:
    id: str  # short, stable, for --only and the JSON file: "echo.dcmtk-dcmtk"
    name: str  # what the table shows: "echo: DCMTK echoscu -> DCMTK storescp"
    fn: ScenarioFn
    group: str
    items: int | None = None  # operations per run, for the rate (None: no rate)
    unit: str = "op"  # what one item is: "echo" -> "echoes/s"
    baseline: str | None = None  # id of the scenario this one is compared with
    reference: bool = False  # a reference figure, not a pacsbox-vs-DCMTK comparison
    optional: bool = False  # a missing peer skips it instead of failing the run
    note: str = ""  # caveat shown under the table
    figure: Figure | None = None  # shown in the rate column instead of items/s

    @property
    def rate_unit(self) -> str:
        plural = self.unit + ("es" if self.unit.endswith(("o", "s", "x", "sh", "ch")) else "s")
        return f"{plural}/s"


REGISTRY: dict[str, Scenario] = {}


def scenario(
    id: str,
    name: str,
    *,
    group: str | None = None,
    items: int | None = None,
    unit: str = "op",
    baseline: str | None = None,
    reference: bool = False,
    optional: bool = False,
    note: str = "",
    figure: Figure | None = None,
) -> Callable[[ScenarioFn], ScenarioFn]:
    """Register the decorated function as a scenario (in definition order)."""

    def register(fn: ScenarioFn) -> ScenarioFn:
        if id in REGISTRY:
            raise ValueError(f"scenario id {id!r} is registered twice")
        REGISTRY[id] = Scenario(
            id=id,
            name=name,
            fn=fn,
            group=group or id.split(".", 1)[0],
            items=items,
            unit=unit,
            baseline=baseline,
            reference=reference,
            optional=optional,
            note=note,
            figure=figure,
        )
        return fn

    return register


def load_all() -> dict[str, Scenario]:
    """Import every scenario module (they register on import) and return the registry."""
    from . import scenarios  # noqa: F401

    for s in REGISTRY.values():
        if s.baseline is not None and s.baseline not in REGISTRY:
            raise ValueError(f"scenario {s.id!r}: unknown baseline {s.baseline!r}")
    return REGISTRY


def select(patterns: list[str] | None) -> list[Scenario]:
    """Scenarios whose id or name contains one of ``patterns`` (case-insensitive), plus the
    baselines they are compared with, in registry order. No patterns: all of them."""
    registry = load_all()
    if not patterns:
        return list(registry.values())
    wanted = {
        s.id
        for s in registry.values()
        if any(p.lower() in s.id.lower() or p.lower() in s.name.lower() for p in patterns)
    }
    if not wanted:
        raise SystemExit(
            f"bench: no scenario matches {', '.join(map(repr, patterns))}; "
            "list them with `python -m bench --list`"
        )
    # a ratio is only fair when both figures come from the same run: add the baselines
    for sid in list(wanted):
        base = registry[sid].baseline
        while base is not None and base not in wanted:
            wanted.add(base)
            base = registry[base].baseline
    return [s for s in registry.values() if s.id in wanted]
