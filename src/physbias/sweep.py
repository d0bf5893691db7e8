"""Sweeps: one experiment over seeds × override values, run locally or on Ray, then aggregated.

A sweep is a cross product of seeds and alternative override values (the CLI's
``--set field=v1|v2``). Each run is an ordinary :func:`physbias.experiments.execute` run with its
own results folder ``OUT/<run-id>`` (``seed0``, ``seed1-epochs=500``, ...); when all are done
the sweep writes ``OUT/results.json`` (experiment ``sweep:NAME``): one row per (override
combination, table row) with the mean and standard deviation over seeds of every numeric column,
plus ``results.md`` and a plot.

Resuming. A run's ``results.json`` is written atomically and last, so its presence means the run
finished. :func:`run_sweep` skips every run whose folder already holds the ``results.json`` of
that same run (experiment, seed, preset, overrides and resolved config), so rerunning a killed
sweep with the same ``--out`` only does the missing runs.

The output folder (decided by :func:`plan_sweep`, before any work):

* a new or existing folder without ``OUT/results.json`` is fine: an unfinished sweep resumes;
* ``OUT/results.json`` (a finished sweep's aggregate) is replaced only with ``overwrite=True``
  (e.g. to add seeds or values to a finished sweep); even then finished runs that match are
  reused, not redone (delete a run's folder to redo it);
* a run folder whose ``results.json`` was made by a *different* run (another config, preset or
  version's defaults) is an error unless ``overwrite=True``, which reruns it.

Layer: this module sits above :mod:`physbias.experiments`; only the CLI imports it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import os
import re
import shlex
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._io import atomic_write_bytes, atomic_write_text
from .experiments import RunSpec, execute, prepare
from .report import (
    Figure,
    Panel,
    Result,
    check_output_folder,
    markdown_report,
    render_figure,
    series,
    to_json,
)

EXECUTORS = ("local", "ray")
RAY_INSTALL_HINT = "pip install -e '.[ray]'  (or: pip install 'ray>=2')"
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._,+=-]")
_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


# --------------------------------------------------------------------------------------------------
# Parsing the CLI's text


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` (the CLI's ``--seeds``) to ``[0, 1, 2]``; ``"0-4"`` is ``[0, 1, 2, 3, 4]``.

    Raises:
        ValueError: for anything but non-negative integers and ranges, or a repeated seed.
    """
    seeds: list[int] = []
    for item in text.split(","):
        item = item.strip()
        low, dash, high = item.partition("-")
        try:
            if dash:
                a, b = int(low), int(high)
                if b < a:
                    raise ValueError
                seeds += range(a, b + 1)
            else:
                seeds.append(int(item))
        except ValueError:
            raise ValueError(
                f"--seeds expects non-negative integers or ranges, e.g. 0,1,2 or 0-4; got {text!r}"
            ) from None
    _check_seeds(seeds)
    return seeds


def parse_grid(items: Sequence[str]) -> dict[str, list[str]]:
    """``["field=v1|v2", ...]`` (the CLI's repeatable ``--set``) to ``{"field": ["v1", "v2"]}``.

    ``|`` separates alternatives, so tuple values keep their commas: ``levels=0,3|1,2`` is two
    runs, with ``levels`` (0, 3) and (1, 2). A single value is an override shared by every run.

    Raises:
        ValueError: an item without ``=`` or a key, a field given twice, a repeated value.
    """
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE or KEY=V1|V2|..., got {item!r}")
        if key in grid:
            raise ValueError(f"--set {key} is given twice; separate its alternatives with '|': {key}=V1|V2")
        grid[key] = [v.strip() for v in value.split("|")]
    _check_grid(grid)
    return grid


def _check_seeds(seeds: Sequence[int]) -> None:
    if not len(seeds):
        raise ValueError("--seeds needs at least one seed")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ValueError(f"--seeds must be non-negative integers, got {s!r}")
    repeated = sorted({s for s in seeds if list(seeds).count(s) > 1})
    if repeated:
        raise ValueError(f"--seeds repeats {', '.join(map(str, repeated))}")


def _check_grid(grid: Mapping[str, Sequence[str]]) -> None:
    for key, values in grid.items():
        if isinstance(values, str):
            raise ValueError(f"--set {key}: expected a list of alternative values, got the text {values!r}")
        if not len(values):
            raise ValueError(f"--set {key} has no values")
        for v in values:
            if not isinstance(v, str):
                raise ValueError(f"--set {key}: values are text, as on the command line; got {v!r}")
        repeated = sorted({v for v in values if list(values).count(v) > 1})
        if repeated:
            raise ValueError(f"--set {key} repeats the value(s) {', '.join(map(repr, repeated))}")


# --------------------------------------------------------------------------------------------------
# Planning


def run_id(seed: int, overrides: Mapping[str, str] | Sequence[tuple[str, str]]) -> str:
    """The folder name of one run: ``seed0``, ``seed1-epochs=500``, ``seed0-levels=0,3-width=8``.

    Characters outside ``A-Z a-z 0-9 . _ , + = -`` become ``_``; a very long name is cut and
    suffixed with a hash of the full one.
    """
    items = overrides.items() if isinstance(overrides, Mapping) else overrides
    name = "-".join([f"seed{seed}", *(f"{k}={v}" for k, v in items)])
    safe = _ID_UNSAFE.sub("_", name)
    if len(safe) > 120:
        safe = f"{safe[:100]}-{hashlib.sha1(name.encode()).hexdigest()[:12]}"
    return safe


def sweep_command(name: str, seeds: Sequence[int], grid: Mapping[str, Sequence[str]], preset: str) -> str:
    """The ``physbias sweep`` command line of a sweep definition (without ``--out``)."""
    parts = ["physbias", "sweep", name, "--seeds", ",".join(map(str, seeds))]
    if preset != "default":
        parts.append(f"--{preset}")
    for k, values in grid.items():
        parts += ["--set", f"{k}={'|'.join(values)}"]
    return shlex.join(parts)


def _json_config(spec: RunSpec) -> Any:
    return json.loads(json.dumps(dataclasses.asdict(spec.config())))


def _read_results(folder: Path) -> dict[str, Any] | None:
    path = folder / "results.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # unreadable: treated as unfinished


def _same_run(doc: Mapping[str, Any], spec: RunSpec) -> bool:
    return (
        doc.get("experiment") == spec.experiment
        and doc.get("seed") == spec.seed
        and doc.get("preset") == spec.preset
        and doc.get("overrides") == dict(spec.overrides)
        and doc.get("config") == _json_config(spec)
    )


def plan_sweep(
    name: str,
    *,
    seeds: Sequence[int],
    grid: Mapping[str, Sequence[str]] | None = None,
    preset: str = "default",
    out: str | Path,
    overwrite: bool = False,
) -> list[RunSpec]:
    """Every run of a sweep, validated before any work and before any file is written.

    The runs are the cross product of the grid's values (fields in the grid's order, values in
    the order given) and, innermost, the seeds. Run ``i`` writes to ``out/<run-id>`` (see
    :func:`run_id`). Each run goes through :func:`physbias.experiments.prepare`, so an unknown
    field or a bad value fails here, naming it.

    Args:
        name: the experiment.
        seeds: distinct non-negative seeds.
        grid: ``{field: [text value, ...]}``: alternatives of each overridden config field, as
            text (``parse_grid`` makes it from the CLI's ``--set field=v1|v2``).
        preset: ``"default"``, ``"quick"`` or ``"full"``.
        out: the sweep's folder (see the module docstring for what may already be there).
        overwrite: replace a finished sweep's aggregate and rerun run folders holding other runs.

    Raises:
        KeyError: unknown experiment.
        ValueError: bad seeds, grid, preset, override value or output folder.
    """
    grid = dict(grid or {})
    _check_seeds(seeds)
    _check_grid(grid)
    grid = {k: list(v) for k, v in grid.items()}
    out = Path(out)
    check_output_folder(out, overwrite=overwrite)  # a file in the way, unwritable, or a finished sweep
    specs, ids = [], {}
    for values in itertools.product(*grid.values()):
        overrides = dict(zip(grid, values, strict=True))
        for seed in seeds:
            rid = run_id(seed, overrides)
            if rid in ids:
                raise ValueError(
                    f"runs {ids[rid]!r} and {(seed, overrides)!r} would share the folder {rid!r}; "
                    "make the values differ in letters, digits or . _ , + = -"
                )
            ids[rid] = (seed, overrides)
            spec = prepare(name, seed=seed, preset=preset, overrides=overrides, out=out / rid, overwrite=True)
            specs.append(spec)
    if not overwrite:
        for spec in specs:
            doc = _read_results(Path(spec.out))
            if doc is not None and not _same_run(doc, spec):
                raise ValueError(
                    f"{spec.out} already holds the results of another run ({doc.get('command')!r}, "
                    f"not {spec.command!r}, or another config); pass --overwrite to rerun it, "
                    "or use another --out"
                )
    return specs


# --------------------------------------------------------------------------------------------------
# Running


@dataclasses.dataclass
class SweepResult:
    """What :func:`run_sweep` returns.

    Attributes:
        result: the aggregate (experiment ``"sweep:NAME"``), as written to ``out``.
        runs: run-id -> that run's table, as read back from its ``results.json`` (non-finite
            numbers are the strings ``"nan"``, ``"inf"``, ``"-inf"`` there).
        executed: run-ids run by this call; ``reused``: run-ids already finished before it.
        out: the sweep's folder.
    """

    result: Result
    runs: dict[str, list[dict[str, Any]]]
    executed: list[str]
    reused: list[str]
    out: Path

    @property
    def table(self) -> list[dict[str, Any]]:
        """The aggregated table: one row per (override combination, row of the runs' tables)."""
        return self.result.table


def _finished(spec: RunSpec) -> bool:
    doc = _read_results(Path(spec.out))
    return doc is not None and _same_run(doc, spec)


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, file=sys.stderr, flush=True)


def _run_local(pending: Sequence[RunSpec], progress: bool, done: Callable[[RunSpec, float], None]):
    failures = []
    for spec in pending:
        start = time.perf_counter()
        try:
            execute(spec, progress=progress, verbose=False)
        except Exception as exc:  # noqa: BLE001 - the other runs go on; reported at the end
            failures.append((spec, f"{type(exc).__name__}: {exc}"))
            continue
        done(spec, time.perf_counter() - start)
    return failures


def _execute_to_files(spec: RunSpec) -> dict[str, bytes]:
    """Run ``spec`` into a temporary folder and return its files (name -> bytes).

    What a Ray task does: the results travel back to the driver, which writes the run's folder,
    so the workers need not share a file system with it.
    """
    with tempfile.TemporaryDirectory(prefix="physbias-sweep-") as tmp:
        execute(dataclasses.replace(spec, out=tmp), progress=False, verbose=False)
        return {p.name: p.read_bytes() for p in sorted(Path(tmp).iterdir()) if p.is_file()}


def _write_run_files(folder: Path, files: Mapping[str, bytes]) -> None:
    """Write a run's files atomically, ``results.json`` last (its presence means: finished)."""
    for fname, data in files.items():
        if fname != "results.json":
            atomic_write_bytes(folder / fname, data)
    atomic_write_bytes(folder / "results.json", files["results.json"])


def _run_ray(
    pending: Sequence[RunSpec], address: str | None, progress: bool, done: Callable[[RunSpec, float], None]
):
    try:
        import ray
    except ImportError:
        raise ImportError(f"the ray executor needs Ray, which is not installed: {RAY_INSTALL_HINT}") from None

    started_here = not ray.is_initialized()
    if started_here:
        kwargs: dict[str, Any] = {"logging_level": "WARNING", "log_to_driver": progress}
        if address is None and not os.environ.get("RAY_ADDRESS"):
            kwargs["include_dashboard"] = False  # a throwaway local cluster: one CPU slot per core
        with warnings.catch_warnings():
            # JAX warns on every fork; Ray's fork is subprocess's fork-and-exec, which is safe.
            warnings.filterwarnings("ignore", r"os\.fork\(\) was called", RuntimeWarning)
            ray.init(address=address, **kwargs)
    failures = []
    try:
        # One CPU per task: on a laptop, as many runs at once as cores; no GPU is requested, so
        # JAX in a task runs on the CPU.
        task = ray.remote(num_cpus=1)(_execute_to_files)
        refs = {task.remote(spec): spec for spec in pending}
        remaining = list(refs)
        while remaining:
            ready, remaining = ray.wait(remaining, num_returns=1)
            for ref in ready:
                spec = refs[ref]
                try:
                    files = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a failed task; the others go on
                    failures.append((spec, f"{type(exc).__name__}: {exc}"))
                    continue
                _write_run_files(Path(spec.out), files)
                done(spec, float(json.loads(files["results.json"]).get("seconds", math.nan)))
    finally:
        if started_here:
            ray.shutdown()
    return failures


def run_sweep(
    specs: Sequence[RunSpec],
    *,
    out: str | Path,
    executor: str = "local",
    address: str | None = None,
    progress: bool = False,
) -> SweepResult:
    """Run the unfinished runs of a sweep planned by :func:`plan_sweep`, then aggregate them all.

    Runs whose folder already holds their finished ``results.json`` are reused (resume). The
    others run in this process (``executor="local"``, one after another) or as Ray tasks
    (``"ray"``: one CPU each, on the cluster at ``address`` or, when ``None``, on an existing
    ``ray.init`` or a local cluster started and stopped here). A Ray task sends its run's files
    back and this process writes them, so no shared file system is needed. A run that fails
    does not stop the others; the sweep then raises ``RuntimeError`` naming the failures,
    without writing the aggregate (rerun to resume). An aggregate already in ``out`` (allowed
    by ``plan_sweep(..., overwrite=True)``) is derived data: it is deleted before any run
    starts and written anew at the end.

    The aggregate, ``out/results.json`` (+ ``results.md``, ``sweep_errors.png``), has one row
    per (override combination, row of the run tables), identified by the ``set:<field>``
    override columns, the row's index ``row`` and its non-numeric columns (names, labels); then
    ``n_seeds``; each numeric column ``c`` becomes ``c_mean`` and ``c_std`` (the sample standard
    deviation over seeds, ``ddof=1``; NaN for one seed) and each boolean column ``c`` becomes
    ``c_count`` (the seeds where it is true). ``runs`` lists every run's id, seed, overrides and
    command.

    Raises:
        ValueError: specs not of one experiment and preset, or not in folders directly under out.
        ImportError: ``executor="ray"`` without Ray installed.
        RuntimeError: some runs failed.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; expected one of {', '.join(EXECUTORS)}")
    out = Path(out)
    specs = list(specs)
    if not specs:
        raise ValueError("a sweep needs at least one run")
    names = {(s.experiment, s.preset) for s in specs}
    if len(names) != 1:
        raise ValueError(f"a sweep runs one experiment with one preset, got {sorted(names)}")
    ids = []
    for s in specs:
        if s.out is None or Path(s.out).parent.resolve() != out.resolve():
            raise ValueError(f"run {s.command!r} must write to a folder directly under {out}, not {s.out}")
        ids.append(Path(s.out).name)
    if len(set(ids)) != len(ids):
        raise ValueError("two runs of the sweep share a folder")

    start = time.perf_counter()
    pending = [s for s in specs if not _finished(s)]
    reused = [Path(s.out).name for s in specs if s not in pending]
    executed: list[str] = []
    _say(progress, f"sweep: {len(specs)} runs, {len(reused)} already finished, {len(pending)} to run")

    def done(spec: RunSpec, seconds: float) -> None:
        executed.append(Path(spec.out).name)
        _say(progress, f"  [{len(executed)}/{len(pending)}] {Path(spec.out).name}: {seconds:.1f} s")

    if pending:
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").unlink(missing_ok=True)  # stale: the runs are about to change
        if executor == "local":
            failures = _run_local(pending, progress, done)
        else:
            failures = _run_ray(pending, address, progress, done)
        if failures:
            lines = "\n".join(f"  {Path(s.out).name}: {msg}" for s, msg in failures)
            raise RuntimeError(
                f"{len(failures)} of {len(pending)} runs failed (the others are saved; rerun the "
                f"sweep to resume):\n{lines}"
            )

    docs = {}
    for s in specs:
        doc = _read_results(Path(s.out))
        if doc is None or not _same_run(doc, s):
            raise RuntimeError(f"run {Path(s.out).name} did not leave its results.json in {s.out}")
        docs[Path(s.out).name] = doc
    result, runs = _aggregate(specs, docs, executed, time.perf_counter() - start)
    _write_sweep(result, runs, out)
    _say(progress, f"sweep results: {out}/results.json, results.md and {len(result.figures)} plot(s)")
    return SweepResult(result, {rid: doc["table"] for rid, doc in docs.items()}, executed, reused, out)


# --------------------------------------------------------------------------------------------------
# Aggregating


def _number(value: Any) -> float | None:
    """A table cell as a number, or ``None`` when it is not one (bools are not numbers here)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value in _NONFINITE:
        return _NONFINITE[value]
    return None


def _definition(specs: Sequence[RunSpec]) -> dict[str, Any]:
    seeds, grid = [], {}
    for s in specs:
        if s.seed not in seeds:
            seeds.append(s.seed)
        for k, v in s.overrides:
            if v not in grid.setdefault(k, []):
                grid[k].append(v)
    return {"experiment": specs[0].experiment, "preset": specs[0].preset, "seeds": seeds, "grid": grid}


def aggregate_tables(
    tables: Sequence[tuple[Mapping[str, str], list[dict[str, Any]]]],
) -> list[dict[str, Any]]:
    """Mean and std over seeds: ``tables`` is ``[(overrides, run table), ...]``, one per run.

    See :func:`run_sweep` for the columns. Rows are grouped by (overrides, row index, non-numeric
    cells), in first-seen order.
    """
    groups: dict[tuple, dict[str, Any]] = {}
    for overrides, table in tables:
        for index, row in enumerate(table):
            ident = tuple((k, v) for k, v in row.items() if _number(v) is None and not isinstance(v, bool))
            key = (tuple(overrides.items()), index, ident)
            g = groups.setdefault(key, {"overrides": overrides, "index": index, "rows": []})
            g["rows"].append(row)
    records = []
    for g in groups.values():
        rec: dict[str, Any] = {f"set:{k}": v for k, v in g["overrides"].items()}
        rec["row"] = g["index"]
        columns: list[str] = []
        for r in g["rows"]:
            columns += [c for c in r if c not in columns]
        first = g["rows"][0]
        stats: dict[str, Any] = {}
        for c in columns:
            values = [r[c] for r in g["rows"] if c in r]
            if all(isinstance(v, bool) for v in values):
                stats[f"{c}_count"] = sum(values)
            elif all(_number(v) is not None for v in values):
                x = np.array([_number(v) for v in values], dtype=float)
                stats[f"{c}_mean"] = float(np.mean(x))
                stats[f"{c}_std"] = float(np.std(x, ddof=1)) if len(x) > 1 else math.nan
            elif c in first:
                rec[c] = first[c]
        rec["n_seeds"] = len(g["rows"])
        records.append(rec | stats)
    return records


def _error_columns(records: list[dict[str, Any]]) -> list[str]:
    means = []
    for r in records:
        means += [c[: -len("_mean")] for c in r if c.endswith("_mean") and c[: -len("_mean")] not in means]
    errors = [c for c in means if any(w in c.lower() for w in ("rmse", "mse", "error", "loss", "mae"))]
    return (errors or means)[:4]


def _figure(name: str, records, tables, specs) -> list[Figure]:
    columns = _error_columns(records)
    if not columns:
        return []
    combos = list(dict.fromkeys(tuple(s.overrides) for s in specs))
    panels = []
    for c in columns:
        curves, values = [], []
        for combo in combos:
            label = ", ".join(f"{k}={v}" for k, v in combo) or name
            rows = [r for r in records if tuple((k, r.get(f"set:{k}")) for k, _ in combo) == combo]
            pts = [
                (r["row"], r[f"{c}_mean"]) for r in rows if f"{c}_mean" in r and math.isfinite(r[f"{c}_mean"])
            ]
            seeds = [
                (i, _number(row.get(c)))
                for overrides, table in tables
                if tuple(overrides.items()) == combo
                for i, row in enumerate(table)
                if _number(row.get(c)) is not None and math.isfinite(_number(row.get(c)))
            ]
            if pts:
                curves.append(series(f"{label}: mean", *zip(*pts, strict=True)))
                values += [v for _, v in pts]
            if seeds:
                curves.append(series(f"{label}: seeds", *zip(*seeds, strict=True), style="scatter"))
                values += [v for _, v in seeds]
        if curves:
            logy = bool(values) and min(values) > 0 and max(values) / min(values) > 20
            panels.append(Panel(c, "row (see the notes)", c, curves, logy=logy))
    if not panels:
        return []
    title = f"{name}: mean over seeds (line) and each seed (dots), by table row"
    return [Figure("sweep_errors", title, panels, 2)]


def _aggregate(specs, docs, executed, seconds):
    definition = _definition(specs)
    name, preset = definition["experiment"], definition["preset"]
    tables = [(dict(s.overrides), docs[Path(s.out).name]["table"]) for s in specs]
    records = aggregate_tables(tables)
    runs = [
        {
            "id": rid,
            "seed": doc["seed"],
            "overrides": doc["overrides"],
            "command": doc["command"],
            "seconds": doc["seconds"],
            "status": "executed" if rid in executed else "reused",
        }
        for rid, doc in docs.items()
    ]
    run_seconds = sum(float(d["seconds"]) for d in docs.values())
    notes = [
        f"{len(specs)} runs of {name} ({preset}): seeds {definition['seeds']}"
        + (f" x {definition['grid']}" if definition["grid"] else "")
        + f"; {len(executed)} run now, {len(specs) - len(executed)} reused; {run_seconds:.1f} s of runs.",
        "One row per (set:* overrides, row of the run tables); c_mean and c_std are the mean and "
        "the sample standard deviation (ddof=1) of column c over seeds, c_count the seeds where "
        "a true/false column is true. Each run's own results are in its folder (see Runs).",
    ]
    first = records[0] if records else {}
    labels = [k for k, v in first.items() if isinstance(v, str) and v and not k.startswith("set:")]
    if labels:
        names = dict.fromkeys((r["row"], r.get(labels[0], "")) for r in records)
        notes.append(f"Plots: x is `row`, by {labels[0]}: " + ", ".join(f"{i} = {v}" for i, v in names) + ".")
    result = Result(
        f"sweep:{name}",
        definition,
        records,
        seconds=seconds,
        figures=_figure(name, records, tables, specs),
        notes=notes,
        preset=preset,
        overrides={k: "|".join(v) for k, v in definition["grid"].items()},
        command=sweep_command(name, definition["seeds"], definition["grid"], preset),
    )
    return result, runs


def _write_sweep(result: Result, runs: list[dict[str, Any]], out: Path) -> None:
    """Like :func:`physbias.report.write_results`, plus the ``runs`` list; results.json last."""
    doc = to_json(result) | {"runs": runs}
    pngs = {f.name: render_figure(f) for f in result.figures}
    out.mkdir(parents=True, exist_ok=True)
    for fname, png in pngs.items():
        atomic_write_bytes(out / f"{fname}.png", png)
    md = (
        markdown_report(doc)
        + "\n## Runs\n\n"
        + "".join(
            f"- [`{r['id']}`]({r['id']}/results.md): `{r['command']}` ({r['status']}, {r['seconds']:.1f} s)\n"
            for r in runs
        )
    )
    atomic_write_text(out / "results.md", md)
    atomic_write_text(out / "results.json", json.dumps(doc, indent=1))


__all__ = [
    "EXECUTORS",
    "SweepResult",
    "aggregate_tables",
    "parse_grid",
    "parse_seeds",
    "plan_sweep",
    "run_id",
    "run_sweep",
    "sweep_command",
]
