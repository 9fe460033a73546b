"""Runs the selected scenarios: warm-up rounds, then N measured rounds, interleaved.

Interleaving (round 1: every scenario once, round 2: every scenario again, ...) spreads any
drift of the machine (thermal, another process) evenly over the scenarios instead of
charging it to whichever ran last; the figure reported is the median of the measured rounds.
"""

from __future__ import annotations

import statistics
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from .context import Context
from .registry import Measurement, Scenario, Skip


@dataclass(slots=True)
class Result:
    scenario: Scenario
    runs: list[Measurement] = field(default_factory=list)
    status: str = "ok"  # ok | failed | skipped
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok" and bool(self.runs)

    @property
    def seconds(self) -> list[float]:
        return [m.seconds for m in self.runs]

    @property
    def median_s(self) -> float | None:
        return statistics.median(self.seconds) if self.ok else None

    @property
    def min_s(self) -> float | None:
        return min(self.seconds) if self.ok else None

    @property
    def max_s(self) -> float | None:
        return max(self.seconds) if self.ok else None

    @property
    def rate(self) -> float | None:
        """Items per second at the median time."""
        median = self.median_s
        if median is None or not self.scenario.items or median <= 0:
            return None
        return self.scenario.items / median

    @property
    def extra(self) -> dict[str, float]:
        """Median of each extra number the scenario reported."""
        keys: dict[str, list[float]] = {}
        for m in self.runs:
            for k, v in m.extra.items():
                keys.setdefault(k, []).append(v)
        return {k: statistics.median(v) for k, v in keys.items()}


Progress = Callable[[str, Scenario, int, int, "Measurement | None", "str | None"], None]


def run(
    scenarios: list[Scenario],
    ctx: Context,
    *,
    repeats: int,
    warmup: int = 1,
    progress: Progress | None = None,
) -> dict[str, Result]:
    """Measure every scenario ``repeats`` times (after ``warmup`` unrecorded runs)."""
    results = {s.id: Result(s) for s in scenarios}
    active = list(scenarios)
    rounds = warmup + repeats
    for rnd in range(rounds):
        phase = "warm-up" if rnd < warmup else "run"
        for s in list(active):
            result = results[s.id]
            try:
                value = s.fn(ctx)
            except Skip as exc:
                result.status, result.message = "skipped", str(exc)
                active.remove(s)
                if progress:
                    progress(phase, s, rnd + 1, rounds, None, f"skipped: {exc}")
                continue
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:
                result.status = "failed"
                result.message = f"{type(exc).__name__}: {exc}".strip()
                result.runs.clear()
                active.remove(s)
                if progress:
                    progress(phase, s, rnd + 1, rounds, None, result.message)
                    detail = traceback.format_exc() + ctx.logs()
                    progress("traceback", s, rnd + 1, rounds, None, detail)
                continue
            m = value if isinstance(value, Measurement) else Measurement(float(value))
            if rnd >= warmup:
                result.runs.append(m)
            if progress:
                progress(phase, s, rnd + 1, rounds, m, None)
    return results
