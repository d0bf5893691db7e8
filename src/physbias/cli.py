"""``physbias``: the command line (thin: parses, validates, calls the library)."""

from __future__ import annotations

import argparse
import datetime as _dt
import math
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
    _add_overrides(run, "KEY=VALUE", "override a config field, e.g. --set epochs=500 (repeatable)")
    run.add_argument("--no-progress", action="store_true", help="never draw progress bars")
    run.add_argument(
        "--overwrite", action="store_true", help="replace the results already in --out (default: refuse)"
    )
    sw = sub.add_parser(
        "sweep",
        help="run an experiment over seeds x override values and aggregate (mean +- std over seeds)",
        description="Each run is an ordinary results folder OUT/<run-id>; OUT/results.json aggregates them. "
        "A killed sweep resumes: rerun with the same --out and only the missing runs execute.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    sw.add_argument("name", help="experiment name (see `physbias list`)")
    sw.add_argument("--seeds", default="0,1,2", help="seeds: 0,1,2 or 0-4")
    _add_overrides(
        sw,
        "KEY=V1|V2",
        "a config field and its alternative values separated by | (quote it in the shell), repeatable",
    )
    sw_size = sw.add_mutually_exclusive_group()
    sw_size.add_argument("--quick", action="store_true", help="small sizes for every run")
    sw_size.add_argument("--full", action="store_true", help="the seed's exact sizes for every run")
    sw.add_argument("--executor", default="local", choices=["local", "ray"], help="in-process or Ray tasks")
    sw.add_argument("--address", default=None, help="Ray cluster address; none: start a local cluster")
    sw.add_argument("--out", type=Path, default=None, help="sweep folder; none: runs/NAME-sweep-STAMP")
    sw.add_argument("--overwrite", action="store_true", help="replace a finished sweep's aggregate")
    sw.add_argument("--no-progress", action="store_true", help="no progress messages")
    rp = sub.add_parser("replot", help="re-render the plots of a results folder from results.json")
    rp.add_argument("folder", type=Path)

    ft = sub.add_parser(
        "fit",
        help="learn dynamics from your own trajectories (.npz or .csv)",
        description="Train a dynamics model on trajectories; see the README for the file layout.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ft.add_argument("--data", type=Path, required=True, help="trajectories: FILE.npz or FILE.csv")
    ft.add_argument(
        "--model",
        default="node2",
        choices=["node", "node2", "hnn", "lnn", "delan"],
        help="node: Neural ODE; node2: second-order NODE; hnn: Hamiltonian NN; lnn: Lagrangian NN; "
        "delan: Lagrangian with a learned positive mass matrix",
    )
    ft.add_argument("--dt", type=float, default=None, help="time step (if the file has no time stamps)")
    ft.add_argument("--coordinates", default="any", choices=["any", "velocity", "canonical"])
    ft.add_argument("--epochs", type=int, default=1000)
    ft.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate")
    ft.add_argument("--width", type=int, default=128)
    ft.add_argument("--depth", type=int, default=2)
    ft.add_argument(
        "--loss",
        default="rollout",
        choices=["rollout", "derivative"],
        help="rollout: L1 error of CHUNK-step RK4 rollouts; derivative: finite differences",
    )
    ft.add_argument("--chunk", type=int, default=4, help="rollout length in steps for --loss rollout")
    ft.add_argument("--holdout", type=float, default=0.2, help="fraction of trajectories held out")
    ft.add_argument(
        "--regularization",
        type=float,
        default=0.0,
        help="lnn only: eps added to the learned L's Hessian in qdot (guards against a singular solve)",
    )
    ft.add_argument(
        "--learn-symmetry",
        action="store_true",
        help="Noether's razor: a Hamiltonian network symmetrised over learned quadratic conserved "
        "quantities, trained by the variational evidence; prints the conserved quantities (states "
        "read as canonical (q, p))",
    )
    ft.add_argument("--quantities", type=int, default=4, help="--learn-symmetry: conserved quantities K")
    ft.add_argument(
        "--noise-std", type=float, default=0.03, help="--learn-symmetry: likelihood noise of the next state"
    )
    ft.add_argument("--seed", type=int, default=0)
    ft.add_argument("--out", type=Path, default=None, help="output folder (default runs/fit-MODEL-STAMP)")
    ft.add_argument("--no-progress", action="store_true")
    ft.add_argument("--overwrite", action="store_true", help="replace the results already in --out")

    ro = sub.add_parser("rollout", help="roll out a model saved by `physbias fit`")
    ro.add_argument("--model", type=Path, required=True, help="the folder `physbias fit` wrote")
    ro.add_argument("--x0", required=True, help="initial state, comma-separated")
    ro.add_argument("--steps", type=int, default=100)
    ro.add_argument("--dt", type=float, default=None, help="time step (default: the training dt)")
    ro.add_argument("--out", type=Path, default=None, help="write the trajectory as CSV here")

    se = sub.add_parser(
        "select",
        help="rank candidate biases on your own data by their evidence (no validation data)",
        description="Train every candidate by marginal likelihood from several seeds and rank them by "
        "the Laplace evidence; see the README for the file layouts and the candidate names.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    se.add_argument("--data", type=Path, required=True, help="FILE.npz or FILE.csv")
    se.add_argument(
        "--task",
        default="regression",
        choices=["regression", "dynamics"],
        help="regression: a table x -> y; dynamics: trajectories as `physbias fit` reads them",
    )
    se.add_argument(
        "--candidates",
        default=None,
        help="comma-separated names (regression: none, parity-even, parity-odd, permutation, rotation, "
        "scaling:DEGREE, each with :soft for the soft version; dynamics: node, node2, hnn, noether, lnn); "
        "default: the proposals for the data",
    )
    se.add_argument(
        "--layout", default=None, help="regression: NxM = N groups of M inputs (3x2: three 2-D vectors)"
    )
    se.add_argument("--soft", action="store_true", help="regression: propose the soft versions too")
    se.add_argument("--dt", type=float, default=None, help="dynamics: time step (if the file has none)")
    se.add_argument("--coordinates", default="any", choices=["any", "velocity", "canonical"])
    se.add_argument("--holdout", type=float, default=None, help="fraction held out for information only")
    se.add_argument("--seeds", type=int, default=3, help="initialisations per candidate")
    se.add_argument("--width", type=int, default=32)
    se.add_argument("--depth", type=int, default=2)
    se.add_argument("--rounds", type=int, default=8, help="marginal-likelihood rounds")
    se.add_argument("--epochs-per-round", type=int, default=500)
    se.add_argument("--lr", type=float, default=1e-2, help="Adam learning rate")
    se.add_argument(
        "--symmetry-epochs",
        type=int,
        default=1000,
        help="noether: steps of Noether's razor's search for the conserved quantity",
    )
    se.add_argument("--seed", type=int, default=0)
    se.add_argument("--out", type=Path, default=None, help="output folder (default runs/select-STAMP)")
    se.add_argument("--no-progress", action="store_true")
    se.add_argument("--overwrite", action="store_true", help="replace the results already in --out")

    sm = sub.add_parser("simulate", help="simulate a library system and save its trajectories")
    sm.add_argument(
        "--system",
        required=True,
        help="one of: pendulum, damped-pendulum, spring, nonlinear-spring, double-pendulum, "
        "chain-pendulum-3, chain-pendulum-5, coupled-oscillators, 2-body, 3-body, kepler",
    )
    sm.add_argument("--n", type=int, default=20, help="number of trajectories")
    sm.add_argument("--steps", type=int, default=50)
    sm.add_argument("--dt", type=float, default=0.1)
    sm.add_argument("--seed", type=int, default=0)
    sm.add_argument("--out", type=Path, required=True, help="FILE.csv or FILE.npz")
    return p


def _add_overrides(parser: argparse.ArgumentParser, metavar: str, help: str) -> None:
    """The repeatable ``--set`` option of ``run`` and ``sweep``."""
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar=metavar, help=help)


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
    from .report import check_output_folder

    # Everything is validated before any work and before any file is written; the output folder
    # first, before the (slow) import of JAX and the experiments.
    out = args.out if args.out is not None else _default_out(args.name)
    try:
        check_output_folder(out, overwrite=args.overwrite)
    except ValueError as exc:
        return _error(str(exc))
    from .experiments import EXPERIMENTS, execute, parse_overrides, prepare

    preset = "quick" if args.quick else "full" if args.full else "default"
    try:
        overrides = parse_overrides(args.overrides)
        spec = prepare(
            args.name, seed=args.seed, preset=preset, overrides=overrides, out=out, overwrite=args.overwrite
        )
    except KeyError:
        names = "\n".join(f"  {n}" for n in sorted(EXPERIMENTS))
        return _error(f"unknown experiment {args.name!r}; valid names:\n{names}")
    except ValueError as exc:
        return _error(str(exc))
    execute(spec, progress=not args.no_progress)
    return 0


def _default_out(name: str) -> Path:
    return Path("runs") / f"{name}-{_stamp()}"


def _sweep(args) -> int:
    from .sweep import parse_grid, parse_seeds, plan_sweep, run_sweep

    preset = "quick" if args.quick else "full" if args.full else "default"
    out = args.out if args.out is not None else Path("runs") / f"{args.name}-sweep-{_stamp()}"
    try:
        specs = plan_sweep(
            args.name,
            seeds=parse_seeds(args.seeds),
            grid=parse_grid(args.overrides),
            preset=preset,
            out=out,
            overwrite=args.overwrite,
        )
    except KeyError as exc:
        return _error(str(exc.args[0]) if exc.args else str(exc))
    except ValueError as exc:
        return _error(str(exc))
    try:
        result = run_sweep(
            specs, out=out, executor=args.executor, address=args.address, progress=not args.no_progress
        )
    except ImportError as exc:
        return _error(str(exc))
    except RuntimeError as exc:
        print(f"physbias: {exc}", file=sys.stderr)
        return 1
    from .report import print_table

    print_table(result.table, title=f"sweep {args.name} ({preset}, seeds {args.seeds})")
    print(
        f"{len(result.executed)} run(s) executed, {len(result.reused)} reused; "
        f"aggregate: {out}/results.json, results.md"
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


def _stamp() -> str:
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def _fit(args) -> int:
    from .report import check_output_folder

    if args.learn_symmetry:
        return _fit_symmetry(args)
    out = args.out or Path("runs") / f"fit-{args.model}-{_stamp()}"
    try:  # before the (slow) imports and before reading the data
        check_output_folder(out, overwrite=args.overwrite)
    except ValueError as exc:
        return _error(str(exc))
    import shlex

    from .data import load_trajectories
    from .experiments.user_fit import FitConfig, check_fit_settings, fit_trajectories
    from .report import print_table, write_results
    from .serialization import save

    try:
        if args.dt is not None and not args.dt > 0:
            raise ValueError(f"--dt must be positive, got {args.dt}")
        config = FitConfig.from_cli(
            model=args.model,
            width=args.width,
            depth=args.depth,
            epochs=args.epochs,
            learning_rate=args.lr,
            loss=args.loss,
            chunk=args.chunk,
            holdout=args.holdout,
            regularization=args.regularization,
        )
        data = load_trajectories(args.data, dt=args.dt, coordinates=args.coordinates)
        check_fit_settings(data, config)
    except (FileNotFoundError, ValueError) as exc:
        return _error(str(exc))
    model, spec, result = fit_trajectories(data, config, seed=args.seed, progress=not args.no_progress)
    # The command that repeats this fit, every setting spelled out.
    flags = {
        "data": args.data,
        "model": args.model,
        "coordinates": args.coordinates,
        "epochs": args.epochs,
        "lr": args.lr,
        "width": args.width,
        "depth": args.depth,
        "loss": args.loss,
        "chunk": args.chunk,
        "holdout": args.holdout,
        "regularization": args.regularization,
        "seed": args.seed,
    }
    if args.dt is not None:
        flags["dt"] = args.dt
    result.command = shlex.join(
        ["physbias", "fit", *(f for k, v in flags.items() for f in (f"--{k}", str(v)))]
    )
    print_table(result.table, title=f"physbias fit {args.model} on {data.name}")
    for note in result.notes:
        print(f"- {note}")
    write_results(result, out)
    if result.table[0]["diverged"]:
        # A blown-up model is not presented as a result: no model files, a non-zero exit.
        print(
            f"physbias: training diverged; no model was saved (the run's record is in {out}/results.json). "
            "Try a smaller --lr.",
            file=sys.stderr,
        )
        return 1
    save(model, Path(out) / "model.eqx", metadata=spec)
    print(f"model: {out}/model.eqx; results: {out}/results.json, rollout.png")
    return 0


def _fit_symmetry(args) -> int:
    """``physbias fit --learn-symmetry``: Noether's razor on the user's trajectories."""
    from .report import check_output_folder

    out = args.out or Path("runs") / f"fit-symmetry-{_stamp()}"
    try:
        check_output_folder(out, overwrite=args.overwrite)
        if args.quantities < 1:
            raise ValueError(f"--quantities must be a positive integer, got {args.quantities}")
        if not (args.noise_std > 0 and math.isfinite(args.noise_std)):
            raise ValueError(f"--noise-std must be positive, got {args.noise_std}")
        if args.dt is not None and not args.dt > 0:
            raise ValueError(f"--dt must be positive, got {args.dt}")
    except ValueError as exc:
        return _error(str(exc))
    import shlex

    from .data import load_trajectories
    from .experiments.user_fit import FitConfig, learn_symmetry_trajectories
    from .report import print_table, write_results
    from .serialization import save

    try:
        config = FitConfig.from_cli(
            model="hnn",
            width=args.width,
            depth=args.depth,
            epochs=args.epochs,
            learning_rate=args.lr,
            holdout=args.holdout,
        )
        data = load_trajectories(args.data, dt=args.dt, coordinates=args.coordinates)
        posterior, spec, result = learn_symmetry_trajectories(
            data,
            config,
            quantities=args.quantities,
            noise_std=args.noise_std,
            seed=args.seed,
            progress=not args.no_progress,
        )
    except (FileNotFoundError, ValueError) as exc:
        return _error(str(exc))
    flags = {
        "data": args.data,
        "coordinates": args.coordinates,
        "quantities": args.quantities,
        "noise-std": args.noise_std,
        "epochs": args.epochs,
        "lr": args.lr,
        "width": args.width,
        "depth": args.depth,
        "holdout": args.holdout,
        "seed": args.seed,
    }
    if args.dt is not None:
        flags["dt"] = args.dt
    result.command = shlex.join(
        ["physbias", "fit", "--learn-symmetry", *(f for k, v in flags.items() for f in (f"--{k}", str(v)))]
    )
    print_table(result.table, title=f"conserved quantities learned from {data.name}")
    for note in result.notes:
        print(f"- {note}")
    write_results(result, out)
    save(posterior, Path(out) / "posterior.eqx", metadata=spec)
    print(f"posterior: {out}/posterior.eqx; results: {out}/results.json, symmetry.png")
    return 0


def _select(args) -> int:
    """``physbias select``: everything checked before any training and before any file is written."""
    from .report import check_output_folder

    out = args.out or Path("runs") / f"select-{_stamp()}"
    try:
        check_output_folder(out, overwrite=args.overwrite)
        if args.dt is not None and not (math.isfinite(args.dt) and args.dt > 0):
            raise ValueError(f"--dt must be positive, got {args.dt}")
        if args.holdout is not None and not 0 < args.holdout < 1:
            raise ValueError(f"--holdout must be a fraction in (0, 1), got {args.holdout}")
    except ValueError as exc:
        return _error(str(exc))
    import shlex

    from .experiments.user_select import select_file
    from .report import print_table, write_results
    from .selection import SelectionSettings

    candidates = None if args.candidates is None else [c for c in args.candidates.split(",") if c.strip()]
    try:
        settings = SelectionSettings(
            seeds=args.seeds,
            width=args.width,
            depth=args.depth,
            rounds=args.rounds,
            epochs_per_round=args.epochs_per_round,
            learning_rate=args.lr,
            symmetry_epochs=args.symmetry_epochs,
        )
    except ValueError as exc:
        flag = str(exc).split("`")[1] if "`" in str(exc) else ""
        names = {
            "learning_rate": "--lr",
            "epochs_per_round": "--epochs-per-round",
            "symmetry_epochs": "--symmetry-epochs",
        }
        return _error(str(exc).replace(f"`{flag}`", names.get(flag, "--" + flag)))
    try:
        selection, result = select_file(
            args.data,
            task=args.task,
            candidates=candidates,
            layout=args.layout,
            soft=args.soft,
            dt=args.dt,
            coordinates=args.coordinates,
            holdout=args.holdout,
            settings=settings,
            seed=args.seed,
            progress=None if args.no_progress else print,
        )
    except (FileNotFoundError, ValueError, TypeError) as exc:
        return _error(str(exc))
    flags = [
        "--data", str(args.data), "--task", args.task, "--seeds", str(args.seeds), "--width", str(args.width),
        "--depth", str(args.depth), "--rounds", str(args.rounds), "--epochs-per-round",
        str(args.epochs_per_round), "--lr", str(args.lr), "--symmetry-epochs", str(args.symmetry_epochs),
        "--seed", str(args.seed),
    ]  # fmt: skip
    for flag, value in (("--candidates", args.candidates), ("--layout", args.layout), ("--dt", args.dt),
                        ("--holdout", args.holdout)):  # fmt: skip
        if value is not None:
            flags += [flag, str(value)]
    if args.coordinates != "any":
        flags += ["--coordinates", args.coordinates]
    if args.soft:
        flags.append("--soft")
    result.command = shlex.join(["physbias", "select", *flags])
    print_table(result.table, title=f"physbias select on {args.data} ({args.task}), best first")
    for note in result.notes:
        print(f"- {note}")
    write_results(result, out)
    print(f"results: {out}/results.json, results.md, evidence.png")
    return 0


def _rollout(args) -> int:
    import numpy as np

    from ._io import atomic_write_text
    from .data import TrajectoryDataset, trajectories_to_csv
    from .dynamics import AbstractDynamics
    from .dynamics.integrators import RK4, rollout
    from .serialization import load, load_metadata

    try:
        model, spec = load(args.model), load_metadata(args.model)
        if not isinstance(model, AbstractDynamics) or "dt" not in spec:
            raise ValueError(
                f"--model: {args.model} holds a {type(model).__name__}, "
                "not a dynamics model saved by `physbias fit`"
            )
        x0 = np.array([float(v) for v in args.x0.split(",")], dtype=np.float32)
    except (FileNotFoundError, ValueError) as exc:
        return _error(str(exc))
    if x0.shape[0] != spec["state_size"]:
        return _error(f"--x0 has {x0.shape[0]} entries but the model's state size is {spec['state_size']}")
    if not np.all(np.isfinite(x0)):
        return _error("--x0 must be finite")
    dt = spec["dt"] if args.dt is None else args.dt
    if not dt > 0 or args.steps <= 0:
        return _error("--dt and --steps must be positive")
    if args.out is not None:
        from .report import check_output_file

        try:
            check_output_file(args.out)
        except ValueError as exc:
            return _error(str(exc))
    traj = np.asarray(rollout(model, x0, dt, args.steps, RK4()))
    text = trajectories_to_csv(TrajectoryDataset(traj[None], dt))
    if args.out is None:
        print(text, end="")
    else:
        atomic_write_text(args.out, text)
        print(f"trajectory ({args.steps + 1} states) written to {args.out}")
    return 0


def _simulate(args) -> int:
    from .systems import get_system

    try:
        system = get_system(args.system)
    except ValueError as exc:
        return _error(str(exc))
    if args.n <= 0 or args.steps <= 0 or not args.dt > 0:
        return _error("--n, --steps and --dt must be positive")
    if args.out.suffix not in (".csv", ".npz"):
        return _error(f"--out must end in .csv or .npz, got {args.out}")
    from .report import check_output_file

    try:
        check_output_file(args.out)
    except ValueError as exc:
        return _error(str(exc))
    import jax

    from .data import save_trajectories
    from .systems import sample_trajectories

    states = sample_trajectories(system, jax.random.key(args.seed), args.n, args.dt, args.steps)
    save_trajectories(args.out, states, args.dt)  # float64, full precision
    print(f"{args.n} trajectories x {args.steps + 1} states of {args.system} (q, qdot) -> {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return EXIT_USAGE
    if args.command == "list":
        return _list()
    from ._compile_cache import enable_compilation_cache

    # Compiled programs are kept on disk ($PHYSBIAS_XLA_CACHE_DIR, default ~/.cache/physbias/xla):
    # a second run of the same command compiles little.
    enable_compilation_cache()
    handlers = {
        "run": _run,
        "sweep": _sweep,
        "replot": _replot,
        "fit": _fit,
        "rollout": _rollout,
        "select": _select,
        "simulate": _simulate,
    }
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
