"""latest.png: the time ratios of a run as horizontal bars, one group per baseline.

A bar is a scenario's median time over its baseline's (the 1.00x line), from the same run;
left of the line is faster than the baseline. Reference scenarios (pynetdicom) are left out:
their 8-40x would flatten every other bar.
"""

from __future__ import annotations

from pathlib import Path

from .report import ratio
from .runner import Result


def write_chart(results: dict[str, Result], path: Path) -> Path | None:
    """Draw the chart of a run into ``path``; None when matplotlib is missing or nothing has
    a ratio."""
    rows = [
        (r.scenario.name, value)
        for r in results.values()
        if not r.scenario.reference and (value := ratio(r, results)) is not None
    ]
    return _draw(rows, path)


def chart_from_json(json_path: Path, path: Path) -> Path | None:
    """The chart of a saved latest.json (``python -m bench.chart``)."""
    import json

    data = json.loads(json_path.read_text())
    rows = [
        (name, entry["ratio"])
        for name, entry in data.items()
        if not entry.get("reference") and entry.get("ratio") is not None
    ]
    return _draw(rows, path)


def _ours(name: str) -> bool:
    return "pacsbox" in name.lower()


def _draw(pairs: list[tuple[str, float]], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    rows = [(name, value, _ours(name)) for name, value in pairs]
    if not rows:
        return None
    height = 0.28 * len(rows) + 1.2
    figure, axes = plt.subplots(figsize=(11, height))
    names = [name if len(name) <= 80 else name[:77] + "..." for name, _, _ in rows]
    colors = ["#1f77b4" if ours else "#b0b0b0" for _, _, ours in rows]
    positions = range(len(rows))[::-1]
    axes.barh(list(positions), [value for _, value, _ in rows], color=colors)
    axes.set_yticks(list(positions), names, fontsize=7)
    axes.axvline(1.0, color="black", linewidth=0.8)
    axes.set_xlabel("time / baseline time, same run (1.0 = baseline; lower is faster)")
    axes.set_title("pacsbox bench: time ratios (blue: pacsbox involved, grey: peers)", fontsize=9)
    for y, (_, value, _) in zip(positions, rows, strict=True):
        axes.text(value, y, f" {value:.2f}x", va="center", fontsize=6)
    figure.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    figure.savefig(tmp, dpi=110)
    plt.close(figure)
    tmp.replace(path)
    return path


if __name__ == "__main__":
    results = Path(__file__).resolve().parent / "results"
    print(chart_from_json(results / "latest.json", results / "latest.png"))
