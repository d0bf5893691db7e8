"""Results folder: ``results.json`` (data first), ``results.md`` and PNG plots.

Figures are stored as data (:class:`Figure` of :class:`Panel` of :class:`Series`) inside
``results.json`` and rendered from it, so every plot can be rebuilt offline
(``physbias replot DIR``). Nothing else in physbias writes files.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ._io import atomic_write_bytes, atomic_write_text


@dataclasses.dataclass
class Series:
    """One curve or point cloud: ``style`` is ``"line"``, ``"reference"`` (black dashed, for the
    truth) or ``"scatter"``."""

    label: str
    x: list[float]
    y: list[float]
    style: str = "line"


@dataclasses.dataclass
class Panel:
    """One set of axes. ``diagonal`` draws ``y = x``; ``logx``/``logy`` use log axes."""

    title: str
    xlabel: str
    ylabel: str
    series: list[Series]
    diagonal: bool = False
    logx: bool = False
    logy: bool = False


@dataclasses.dataclass
class Figure:
    """A PNG file ``{name}.png`` made of ``panels`` laid out in ``columns`` columns."""

    name: str
    title: str
    panels: list[Panel]
    columns: int = 3


@dataclasses.dataclass
class Result:
    """What an experiment returns: a flat table plus its config, timing and figures."""

    experiment: str
    config: dict[str, Any]
    table: list[dict[str, Any]]
    seconds: float = 0.0
    figures: list[Figure] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)


def series(label: str, x, y, style: str = "line", max_points: int = 1000) -> Series:
    """A :class:`Series` from arrays, evenly thinned to at most ``max_points`` points."""
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if len(x) > max_points:
        idx = np.linspace(0, len(x) - 1, max_points).astype(int)
        x, y = x[idx], y[idx]
    return Series(label, [float(v) for v in x], [float(v) for v in y], style)


def environment() -> dict[str, str]:
    """Versions and device this run used."""
    import equinox
    import jax
    import optax

    from ._version import __version__

    dev = jax.devices()[0]
    return {
        "physbias": __version__,
        "python": sys.version.split()[0],
        "jax": jax.__version__,
        "equinox": equinox.__version__,
        "optax": optax.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "processor": platform.machine(),
        "device": f"{dev.platform}:{getattr(dev, 'device_kind', '')}",
    }


def _clean(value):
    """JSON-safe scalars: NumPy/JAX numbers to Python, non-finite floats to strings."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and np.ndim(value) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _format(value) -> str:
    if isinstance(value, float):
        if value == 0 or (1e-3 <= abs(value) < 1e4):
            return f"{value:.4g}"
        return f"{value:.3e}"
    return str(value)


def markdown_table(records: list[dict[str, Any]]) -> str:
    """GitHub-flavoured Markdown table of flat records (columns in first-seen order)."""
    if not records:
        return "_(empty table)_\n"
    columns: list[str] = []
    for r in records:
        columns += [k for k in r if k not in columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in records:
        lines.append("| " + " | ".join(_format(r.get(c, "")) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def print_table(records: list[dict[str, Any]], title: str = "") -> None:
    """Print the table to the terminal (Rich)."""
    from rich.console import Console
    from rich.table import Table

    columns: list[str] = []
    for r in records:
        columns += [k for k in r if k not in columns]
    table = Table(title=title or None)
    for c in columns:
        table.add_column(c, overflow="fold")
    for r in records:
        table.add_row(*(_format(r.get(c, "")) for c in columns))
    widths = [max([len(c)] + [len(_format(r.get(c, ""))) for r in records]) + 3 for c in columns]
    Console(width=max(80, min(320, sum(widths) + 4))).print(table)


def render_figure(fig: Figure) -> bytes:
    """PNG bytes of ``fig`` (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = max(1, min(fig.columns, len(fig.panels)))
    rows = math.ceil(len(fig.panels) / cols)
    w, h = (8.0, 5.2) if len(fig.panels) == 1 else (4.2, 3.6)
    mfig, axes = plt.subplots(rows, cols, figsize=(w * cols, h * rows), squeeze=False)
    for ax, panel in zip(axes.ravel(), fig.panels, strict=False):
        for s in panel.series:
            if s.style == "scatter":
                ax.scatter(s.x, s.y, s=4, alpha=0.5, label=s.label)
            elif s.style == "reference":
                ax.plot(s.x, s.y, "k--", label=s.label, lw=1.6, zorder=5)
            else:
                ax.plot(s.x, s.y, label=s.label, lw=1.3)
        if panel.diagonal:
            lim = [min(min(s.x + s.y) for s in panel.series), max(max(s.x + s.y) for s in panel.series)]
            ax.plot(lim, lim, "k--", lw=0.8)
        if panel.logx:
            ax.set_xscale("log")
        if panel.logy:
            ax.set_yscale("log")
        ax.set_title(panel.title, fontsize=9)
        ax.set_xlabel(panel.xlabel)
        ax.set_ylabel(panel.ylabel)
        if len(panel.series) > 1:
            ax.legend(fontsize=7, framealpha=0.7)
    for ax in axes.ravel()[len(fig.panels) :]:
        ax.set_visible(False)
    mfig.suptitle(fig.title)
    mfig.tight_layout()
    buf = io.BytesIO()
    mfig.savefig(buf, format="png", dpi=110)
    plt.close(mfig)
    return buf.getvalue()


def to_json(result: Result) -> dict[str, Any]:
    """The ``results.json`` document."""
    return _clean(
        {
            "experiment": result.experiment,
            "config": result.config,
            "environment": environment(),
            "seconds": result.seconds,
            "table": result.table,
            "notes": result.notes,
            "figures": [dataclasses.asdict(f) for f in result.figures],
        }
    )


def figures_from_json(doc: dict[str, Any]) -> list[Figure]:
    """Rebuild :class:`Figure` objects from a ``results.json`` document."""
    figs = []
    for f in doc.get("figures", []):
        panels = [Panel(**{**p, "series": [Series(**s) for s in p["series"]]}) for p in f["panels"]]
        figs.append(Figure(name=f["name"], title=f["title"], panels=panels, columns=f["columns"]))
    return figs


def markdown_report(doc: dict[str, Any]) -> str:
    """``results.md``: title, table, notes, figure links and the environment."""
    parts = [f"# {doc['experiment']}\n", markdown_table(doc["table"])]
    if doc.get("notes"):
        parts.append("\n" + "\n".join(f"- {n}" for n in doc["notes"]) + "\n")
    for f in doc.get("figures", []):
        parts.append(f"\n![{f['title']}]({f['name']}.png)\n")
    parts.append(f"\nTotal time: {doc['seconds']:.1f} s\n")
    parts.append("\nConfig: `" + json.dumps(doc["config"]) + "`\n")
    parts.append("\nEnvironment: `" + json.dumps(doc["environment"]) + "`\n")
    return "".join(parts)


def write_results(result: Result, out_dir: str | Path) -> Path:
    """Write ``results.json``, ``results.md`` and one PNG per figure into ``out_dir``.

    Each file is written atomically. Returns the folder.
    """
    out = Path(out_dir)
    doc = to_json(result)
    text = json.dumps(doc, indent=1)
    pngs = {f.name: render_figure(f) for f in result.figures}  # render before writing anything
    out.mkdir(parents=True, exist_ok=True)
    for name, png in pngs.items():
        atomic_write_bytes(out / f"{name}.png", png)
    atomic_write_text(out / "results.md", markdown_report(doc))
    atomic_write_text(out / "results.json", text)
    return out


def replot(out_dir: str | Path) -> list[Path]:
    """Re-render every figure of a results folder from its ``results.json``."""
    out = Path(out_dir)
    path = out / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"no results.json in {out}")
    doc = json.loads(path.read_text())
    return [atomic_write_bytes(out / f"{f.name}.png", render_figure(f)) for f in figures_from_json(doc)]
