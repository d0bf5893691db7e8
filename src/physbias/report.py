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
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ._io import atomic_write_bytes, atomic_write_text
from ._progress import progress_bar  # noqa: F401  (public: experiments draw their bars with it)


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
    """What an experiment returns: a flat table plus its config, timing and figures.

    The runner stamps how the run was made (``seed``, ``preset``, ``overrides``, ``command``) so
    that its folder alone says how to repeat it.
    """

    experiment: str
    config: dict[str, Any]
    table: list[dict[str, Any]]
    seconds: float = 0.0
    figures: list[Figure] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    seed: int | None = None
    preset: str | None = None
    overrides: dict[str, str] = dataclasses.field(default_factory=dict)
    command: str | None = None


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


def git_commit() -> str | None:
    """The commit of the physbias source tree (``+dirty`` when it has local changes), or ``None``
    when physbias is not run from a git checkout."""
    import subprocess

    src = Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no", "--", "."],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def check_output_folder(out_dir: str | Path, *, overwrite: bool = False) -> Path:
    """Check, before any work, that a results folder can be written at ``out_dir``.

    It must not be an existing file or lie under one, must be creatable and writable, and must not
    already hold results (a ``results.json``) unless ``overwrite``. Nothing is created.

    Raises:
        ValueError: naming the path and what is wrong with it.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder")
    if out.is_dir():
        if (out / "results.json").exists() and not overwrite:
            raise ValueError(
                f"--out {out} already holds results (results.json); pass --overwrite to replace them"
            )
        if not os.access(out, os.W_OK | os.X_OK):
            raise ValueError(f"--out {out} is not writable")
        return out
    _check_creatable(out)
    return out


def check_output_file(path: str | Path) -> Path:
    """Check, before any work, that a file can be written at ``path`` (not a folder; its folder
    creatable and writable). Nothing is created.

    Raises:
        ValueError: naming the path and what is wrong with it.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"--out {path} is a folder; expected a file name")
    _check_creatable(path)
    return path


def _check_creatable(path: Path) -> None:
    """The nearest existing ancestor of ``path`` must be a writable folder (so mkdir -p works)."""
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"--out {path} cannot be created: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"--out {path} cannot be created: {parent} is not writable")
    # os.access says yes to root everywhere, also on read-only and pseudo file systems (/proc):
    # an unnamed temporary file there is the real test, and leaves nothing behind.
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as error:
        raise ValueError(
            f"--out {path} cannot be created: {parent} is not writable ({error.strerror})"
        ) from None


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
    from ._version import __version__

    return _clean(
        {
            "experiment": result.experiment,
            "command": result.command,
            "seed": result.seed,
            "preset": result.preset,
            "overrides": result.overrides,
            "config": result.config,
            "version": __version__,
            "git_commit": git_commit(),
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
    if doc.get("command"):
        parts.append(
            f"\nReproduce: `{doc['command']}` (physbias {doc.get('version')}, "
            f"commit {doc.get('git_commit') or 'unknown'})\n"
        )
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
