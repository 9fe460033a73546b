"""Printing and saving results: a table on the terminal, latest.json and latest.md."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .runner import Result


def ratio(result: Result, results: dict[str, Result]) -> float | None:
    """This scenario's median time over its baseline's (>1: slower than the baseline)."""
    base_id = result.scenario.baseline
    if base_id is None:
        return 1.0 if result.ok and _is_baseline(result, results) else None
    base = results.get(base_id)
    if base is None or not base.ok or not result.ok:
        return None
    return result.median_s / base.median_s  # type: ignore[operator]


def _is_baseline(result: Result, results: dict[str, Result]) -> bool:
    return any(r.scenario.baseline == result.scenario.id for r in results.values())


def _baselines(results: dict[str, Result]) -> str:
    """The baseline scenario(s) of this run, by name."""
    ids = {r.scenario.baseline for r in results.values() if r.scenario.baseline}
    names = [r.scenario.name for r in results.values() if r.scenario.id in ids]
    return " / ".join(f"'{n}'" for n in names) or "its baseline"


def _fmt(value: float | None, spec: str, missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def _rate(result: Result) -> str:
    figure = result.scenario.figure
    if figure is not None:  # a scenario whose point is not its time (e.g. memory)
        value = result.extra.get(figure.key)
        return "-" if value is None else f"{value:,.1f} {figure.label}"
    rate = result.rate
    return "-" if rate is None else f"{rate:,.0f} {result.scenario.rate_unit}"


def _status(result: Result) -> str:
    if result.status == "ok":
        return ""
    return f"{result.status}: {result.message.splitlines()[0] if result.message else ''}"


def _notes(results: dict[str, Result]) -> list[str]:
    notes = []
    for r in results.values():
        s = r.scenario
        if s.note:
            notes.append(f"{s.name}: {'(reference) ' if s.reference else ''}{s.note}")
        if r.status != "ok":
            notes.append(f"{s.name}: {r.status}: {r.message}")
        elif s.figure is not None and s.figure.limit is not None:
            values = [m.extra[s.figure.key] for m in r.runs if s.figure.key in m.extra]
            if values:  # judged on the worst run: a target is a bound, not an average
                verdict = "met in every run" if max(values) < s.figure.limit else "NOT met"
                notes.append(
                    f"{s.name}: target {s.figure.key} < {s.figure.limit:g} {verdict} "
                    f"(max {max(values):,.1f}, median {r.extra[s.figure.key]:,.1f})"
                )
    return notes


# -- terminal -------------------------------------------------------------------------------


def print_table(results: dict[str, Result], meta: dict[str, Any]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # rich is a pacsbox dependency; plain text just in case
        print(markdown(results, meta))
        return
    table = Table(
        title=f"pacsbox bench - median of {meta['repeats']} runs "
        f"(+{meta['warmup']} warm-up), {meta['cpus']} CPUs, DCMTK {meta['dcmtk']}",
        title_justify="left",
        caption=f"time ratio: median time / median time of {_baselines(results)} "
        f"(the 1.00x row), same run; above 1 is slower. CPU pinning: {meta['pinning']}",
        caption_justify="left",
    )
    table.add_column("scenario")
    table.add_column("median s", justify="right")
    table.add_column("min..max s", justify="right")
    table.add_column("rate", justify="right")
    table.add_column("time ratio", justify="right")
    table.add_column("runs", justify="right")
    for r in results.values():
        name = r.scenario.name + (" [dim](reference)[/dim]" if r.scenario.reference else "")
        if not r.ok:
            table.add_row(name, "-", "-", "-", "-", "0", style="red")
            continue
        rat = ratio(r, results)
        table.add_row(
            name,
            f"{r.median_s:.3f}",
            f"{r.min_s:.3f}..{r.max_s:.3f}",
            _rate(r),
            _fmt(rat, ".2f") + ("x" if rat is not None else ""),
            str(len(r.runs)),
        )
    console = Console()
    if not console.is_terminal:  # piped or under make: do not wrap at 80 columns
        console = Console(width=140)
    console.print(table)
    for line in _notes(results):
        console.print(f"  note: {line}", highlight=False, markup=False)


# -- files ----------------------------------------------------------------------------------


def to_json(results: dict[str, Result]) -> dict[str, Any]:
    """scenario name -> {median_s, runs, rate, ...}; failed/skipped ones say why."""
    out: dict[str, Any] = {}
    for r in results.values():
        s = r.scenario
        entry: dict[str, Any] = {
            "id": s.id,
            "status": r.status,
            "median_s": r.median_s,
            "runs": r.seconds,
            "rate": r.rate,
            "rate_unit": s.rate_unit if s.items else None,
            "items": s.items,
            "min_s": r.min_s,
            "max_s": r.max_s,
            "baseline": results[s.baseline].scenario.name
            if s.baseline in results
            else (s.name if _is_baseline(r, results) else None),
            "ratio": ratio(r, results),
            "reference": s.reference,
        }
        if r.extra:
            entry["extra"] = r.extra
        if r.status != "ok":
            entry["message"] = r.message
        out[s.name] = entry
    return out


def markdown(results: dict[str, Result], meta: dict[str, Any]) -> str:
    lines = [
        "# pacsbox bench - latest run",
        "",
        f"- date: {meta['date']}",
        f"- machine: {meta['machine']}, {meta['cpus']} CPUs; Python {meta['python']}",
        f"- pacsbox {meta['pacsbox']} (commit {meta['commit']}); DCMTK {meta['dcmtk']}; "
        f"pynetdicom {meta['pynetdicom']}",
        f"- median of {meta['repeats']} runs after {meta['warmup']} warm-up run(s), "
        "all scenarios interleaved in one process run; loopback (127.0.0.1); "
        f"DCMTK tools with TCP_NODELAY=1; CPU pinning: {meta['pinning']}",
        f"- files (stores, archives, data sets) under {meta.get('tmp', '?')}",
        "",
        "| scenario | median s | min..max s | rate | time ratio | runs |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results.values():
        name = r.scenario.name + (" *(reference)*" if r.scenario.reference else "")
        if not r.ok:
            lines.append(f"| {name} | - | - | - | - | {_status(r)} |")
            continue
        rat = ratio(r, results)
        lines.append(
            f"| {name} | {r.median_s:.3f} | {r.min_s:.3f}..{r.max_s:.3f} | {_rate(r)} | "
            f"{_fmt(rat, '.2f')}{'x' if rat is not None else ''} | {len(r.runs)} |"
        )
    lines += [
        "",
        f"Time ratio: median time / median time of {_baselines(results)} (the 1.00x row), "
        "measured in the same run; above 1 is slower (pacsbox time / DCMTK time).",
    ]
    notes = _notes(results)
    if notes:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def save(results: dict[str, Result], meta: dict[str, Any], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "latest.json", out_dir / "latest.md"
    _write(json_path, json.dumps(to_json(results), indent=2) + "\n")
    _write(md_path, markdown(results, meta))
    from .chart import write_chart

    chart = write_chart(results, out_dir / "latest.png")
    return [json_path, md_path, *([chart] if chart else [])]
