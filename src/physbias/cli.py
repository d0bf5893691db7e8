"""``physbias``: the command line (thin: parses, validates, calls the library)."""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
from pathlib import Path

from ._version import __version__

EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="physbias",
        description="Physics-informed inductive biases for deep learning (JAX + Equinox).",
        epilog="Examples:\n  physbias list\n  physbias run triangle\n  physbias run spring --quick "
        "--out runs/spring\n  physbias run triangle --set epochs=500 --set levels=0,3",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"physbias {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("list", help="list every experiment with a one-line description")
    run = sub.add_parser("run", help="run a named experiment and write its results folder")
    run.add_argument("name", help="experiment name (see `physbias list`)")
    run.add_argument(
        "--out", type=Path, default=None, help="output folder (default: runs/NAME-YYYYmmdd-HHMMSS)"
    )
    run.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    size = run.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small sizes: finishes in under a minute")
    size.add_argument("--full", action="store_true", help="the seed's exact sizes (slower)")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set epochs=500 (repeatable)",
    )
    run.add_argument("--no-progress", action="store_true", help="never draw progress bars")
    rp = sub.add_parser("replot", help="re-render the plots of a results folder from results.json")
    rp.add_argument("folder", type=Path)
    return p


def _error(message: str) -> int:
    print(f"physbias: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _list() -> int:
    from .experiments import EXPERIMENTS

    width = max(map(len, EXPERIMENTS))
    for name, exp in sorted(EXPERIMENTS.items()):
        print(f"{name:<{width}}  {exp.description}")
    return 0


def _run(args) -> int:
    from .experiments import EXPERIMENTS, get_experiment
    from .experiments._config import apply_overrides

    # Everything is validated before any work and before any file is written.
    try:
        experiment = get_experiment(args.name)
    except KeyError:
        names = "\n".join(f"  {n}" for n in sorted(EXPERIMENTS))
        return _error(f"unknown experiment {args.name!r}; valid names:\n{names}")
    if args.seed < 0:
        return _error(f"--seed must be a non-negative integer, got {args.seed}")
    overrides = {}
    for item in args.overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            return _error(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key.strip()] = value.strip()
    preset = "quick" if args.quick else "full" if args.full else "default"
    try:
        config = apply_overrides(experiment.make_config(preset), overrides)
    except ValueError as exc:
        return _error(str(exc))
    out = args.out
    if out is None:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / f"{experiment.name}-{stamp}"
    if out.exists() and not out.is_dir():
        return _error(f"--out {out} exists and is not a folder")

    from .report import print_table, write_results

    result = experiment.run(config, seed=args.seed, progress=not args.no_progress)
    print_table(result.table, title=f"{experiment.name} ({preset}, seed {args.seed})")
    for note in result.notes:
        print(f"- {note}")
    folder = write_results(result, out)
    print(
        f"results: {folder}/results.json, results.md and {len(result.figures)} plot(s); "
        f"{result.seconds:.1f} s"
    )
    return 0


def _replot(args) -> int:
    from .report import replot

    try:
        paths = replot(args.folder)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        return _error(str(exc))
    print("\n".join(str(p) for p in paths))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return EXIT_USAGE
    if args.command == "list":
        return _list()
    return {"run": _run, "replot": _replot}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
