"""Datasets: plain arrays plus what they mean, validated once when they are made."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array


def check_array(value, name: str, *, min_ndim: int = 1) -> Array:
    """Return ``value`` as a floating JAX array, or raise ``ValueError`` naming ``name``.

    Rejects non-numeric data, fewer than ``min_ndim`` dimensions, an empty leading axis and
    NaN/inf entries.
    """
    try:
        arr = np.asarray(value)
    except Exception as exc:  # noqa: BLE001 - anything that is not array-like
        raise ValueError(f"`{name}` must be array-like, got {type(value).__name__}") from exc
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"`{name}` must hold numbers, got dtype {arr.dtype}")
    if arr.ndim < min_ndim:
        raise ValueError(f"`{name}` must have at least {min_ndim} dimension(s), got shape {arr.shape}")
    if arr.size == 0 or (arr.ndim >= 1 and arr.shape[0] == 0):
        raise ValueError(f"`{name}` is empty (shape {arr.shape}); at least one sample is needed")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(jnp.result_type(float))
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"`{name}` contains {bad} NaN or inf value(s); data must be finite")
    return jnp.asarray(arr)


def check_same_length(arrays: Sequence[Array], names: Sequence[str]) -> int:
    """Return the common leading length of ``arrays``; raise ``ValueError`` if they differ."""
    lengths = [a.shape[0] for a in arrays]
    if len(set(lengths)) > 1:
        desc = ", ".join(f"`{n}` has {k}" for n, k in zip(names, lengths, strict=True))
        raise ValueError(f"inputs and targets must have the same number of samples: {desc}")
    return lengths[0]


def require_same_shape(pred, target, who: str) -> None:
    """Raise ``ValueError`` naming both shapes unless ``pred`` and ``target`` have the same shape.

    Subtracting arrays of different shapes broadcasts silently (predictions ``(N, 1)`` against
    targets ``(N,)`` give an ``(N, N)`` difference and a loss ~N times too large); every loss and
    metric that compares predictions with targets calls this first (at trace time: shapes are
    static).
    """
    if tuple(pred.shape) != tuple(target.shape):
        raise ValueError(
            f"{who}: predictions have shape {tuple(pred.shape)} but targets have shape "
            f"{tuple(target.shape)}; the model's output must match one target (no broadcasting)"
        )


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Supervised data: ``inputs`` of shape ``(N, *in_shape)`` and ``targets`` of shape ``(N, *out_shape)``.

    Validated on construction (finite, non-empty, same ``N``); everything downstream trusts it.

    Example:
        >>> import numpy as np
        >>> ds = Dataset(np.zeros((4, 3)), np.ones(4))
        >>> len(ds), ds.input_shape, ds.target_shape
        (4, (3,), ())
    """

    inputs: Array
    targets: Array
    name: str = "data"

    def __post_init__(self):
        inputs = check_array(self.inputs, "inputs")
        targets = check_array(self.targets, "targets")
        check_same_length([inputs, targets], ["inputs", "targets"])
        object.__setattr__(self, "inputs", inputs)
        object.__setattr__(self, "targets", targets)

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.inputs.shape[1:])

    @property
    def target_shape(self) -> tuple[int, ...]:
        return tuple(self.targets.shape[1:])

    def as_tuple(self) -> tuple[Array, Array]:
        return (self.inputs, self.targets)

    def concatenate(self, other: Dataset) -> Dataset:
        """Samples of ``self`` followed by those of ``other`` (same per-sample shapes)."""
        if other.input_shape != self.input_shape or other.target_shape != self.target_shape:
            raise ValueError(
                f"cannot concatenate datasets with sample shapes {self.input_shape}->"
                f"{self.target_shape} and {other.input_shape}->{other.target_shape}"
            )
        return Dataset(
            jnp.concatenate([self.inputs, other.inputs]),
            jnp.concatenate([self.targets, other.targets]),
            name=self.name,
        )


@dataclasses.dataclass(frozen=True)
class TrajectoryDataset:
    """Trajectories sampled at a fixed time step.

    Layout: ``states`` of shape ``(n_trajectories, n_times, state_size)``, state ``i`` of
    trajectory ``k`` taken at time ``i * dt``. ``coordinates`` says what a state holds:
    ``"velocity"`` = ``(q, qdot)``, ``"canonical"`` = ``(q, p)``, or ``"any"``.
    Validated on construction: finite, at least one trajectory of at least two states,
    ``dt > 0``.
    """

    states: Array
    dt: float
    coordinates: str = "any"
    name: str = "trajectories"

    def __post_init__(self):
        states = check_array(self.states, "states", min_ndim=3)
        if states.ndim != 3:
            raise ValueError(
                f"`states` must have shape (n_trajectories, n_times, state_size), got {states.shape}"
            )
        if states.shape[1] < 2:
            raise ValueError(f"`states` needs at least 2 times per trajectory, got {states.shape[1]}")
        if not (isinstance(self.dt, (int, float)) and np.isfinite(self.dt) and self.dt > 0):
            raise ValueError(f"`dt` must be a positive number, got {self.dt!r}")
        if self.coordinates not in ("any", "velocity", "canonical"):
            raise ValueError(
                f"`coordinates` must be 'any', 'velocity' or 'canonical', got {self.coordinates!r}"
            )
        object.__setattr__(self, "states", states)
        object.__setattr__(self, "dt", float(self.dt))

    @property
    def state_size(self) -> int:
        return int(self.states.shape[-1])

    @property
    def n_times(self) -> int:
        return int(self.states.shape[1])

    def __len__(self) -> int:
        return int(self.states.shape[0])

    def chunks(self, length: int) -> Dataset:
        """Every window of ``length + 1`` consecutive states: inputs ``(N, d)`` = the first state,
        targets ``(N, length, d)`` = the next ``length`` states."""
        if not isinstance(length, int) or not 1 <= length < self.n_times:
            raise ValueError(f"`length` must be an integer in [1, {self.n_times - 1}], got {length!r}")
        starts = np.arange(self.n_times - length)
        idx = starts[:, None] + np.arange(length + 1)[None, :]
        windows = self.states[:, idx].reshape(-1, length + 1, self.state_size)
        return Dataset(windows[:, 0], windows[:, 1:], name=f"{self.name}-chunks{length}")

    def finite_difference_derivatives(self) -> Dataset:
        """``(z_i, dz/dt_i)`` pairs with second-order central differences at interior times."""
        s = self.states
        deriv = (s[:, 2:] - s[:, :-2]) / (2 * self.dt)
        return Dataset(s[:, 1:-1].reshape(-1, self.state_size), deriv.reshape(-1, self.state_size))


def _uniform_dt(times: np.ndarray, where: str) -> float:
    diffs = np.diff(times)
    if np.any(diffs <= 0):
        raise ValueError(f"time stamps in {where} must be strictly increasing")
    dt = float(np.mean(diffs))
    if np.max(np.abs(diffs - dt)) > 1e-6 * max(dt, 1e-12) + 1e-9:
        raise ValueError(f"time stamps in {where} must be uniformly spaced (fixed-step integrators)")
    return dt


def _read_csv_numbers(path, header: list[str]) -> np.ndarray:
    """The rows under a CSV header as a 2-D float array; ``ValueError`` naming the file otherwise."""
    try:
        return np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    except ValueError as exc:
        raise ValueError(
            f"{path}: every row must have the header's {len(header)} comma-separated numbers "
            f"({', '.join(header)}); NumPy says: {exc}"
        ) from None


def load_trajectories(path, dt: float | None = None, coordinates: str = "any") -> TrajectoryDataset:
    """Read trajectories from ``.npz`` or ``.csv`` (see the README for the layouts).

    * ``.npz``: ``states`` of shape ``(n_trajectories, n_times, state_size)``; the time step from
      ``dt`` (a scalar) or ``times`` (shape ``(n_times,)``), unless given as an argument.
    * ``.csv``: a header ``trajectory,t,z0,z1,...``; one row per state, rows of a trajectory in
      time order, every trajectory with the same number of rows. ``t`` may be omitted when ``dt``
      is given.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError``, naming the file and what
    was expected, for anything malformed (ragged trajectories, short rows, NaN/inf, non-increasing
    or non-uniform time stamps, no time step, a ``dt`` that disagrees with the file's).
    """
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such data file: {path}")
    file_dt = None
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as f:
                if "states" not in f:
                    raise ValueError(
                        f"{path}: an .npz file needs an array named 'states', found {sorted(f.files)}"
                    )
                states = f["states"]
                if "dt" in f:
                    file_dt = float(f["dt"])
                elif "times" in f:
                    file_dt = _uniform_dt(np.asarray(f["times"], dtype=float), str(path))
        except ValueError as exc:
            if str(exc).startswith(str(path)):
                raise
            # NumPy's own words ("Object arrays cannot be loaded when allow_pickle=False") hide the cause.
            raise ValueError(
                f"{path}: could not read the .npz file ({exc}); `states` must be one numeric array of shape "
                "(n_trajectories, n_times, state_size): trajectories of different lengths (ragged) cannot "
                "be stored in one array"
            ) from None
        if states.dtype == object or not np.issubdtype(states.dtype, np.number):
            raise ValueError(f"{path}: `states` must be numeric, got dtype {states.dtype}")
    elif path.suffix == ".csv":
        header = path.read_text().splitlines()[0].split(",") if path.stat().st_size else []
        header = [h.strip() for h in header]
        if not header or header[0] != "trajectory":
            raise ValueError(
                f"{path}: the CSV header must start with 'trajectory' (then 't', then state columns)"
            )
        table = _read_csv_numbers(path, header)
        if table.size == 0:
            raise ValueError(f"{path}: no data rows")
        has_t = len(header) > 1 and header[1] == "t"
        ids = table[:, 0]
        first = 2 if has_t else 1
        if table.shape[1] <= first:
            raise ValueError(f"{path}: no state columns after {'trajectory,t' if has_t else 'trajectory'}")
        groups = [np.flatnonzero(ids == k) for k in np.unique(ids)]
        lengths = {len(g) for g in groups}
        if len(lengths) != 1:
            raise ValueError(
                f"{path}: ragged trajectories (lengths {sorted(lengths)}); every trajectory needs "
                "the same number of rows"
            )
        states = np.stack([table[g, first:] for g in groups])
        if has_t:
            dts = [_uniform_dt(table[g, 1], f"{path} (trajectory {int(ids[g[0]])})") for g in groups]
            file_dt = float(np.mean(dts))
    else:
        raise ValueError(f"{path}: expected a .npz or .csv file, got '{path.suffix}'")
    if dt is not None and file_dt is not None and abs(dt - file_dt) > 1e-6 * file_dt:
        raise ValueError(
            f"{path}: the given time step dt = {dt:g} (--dt) disagrees with the file's, {file_dt:g}; "
            "leave --dt out to use the file's"
        )
    dt = file_dt if dt is None else dt
    if dt is None:
        raise ValueError(f"{path}: no time step: give `dt` (--dt) or time stamps in the file")
    return TrajectoryDataset(np.asarray(states, dtype=np.float32), dt, coordinates, name=path.stem)


def load_regression(path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read a regression table, inputs -> outputs, from ``.npz`` or ``.csv``.

    * ``.npz``: arrays ``x`` of shape ``(N, d)`` and ``y`` of shape ``(N,)`` or ``(N, k)``.
    * ``.csv``: a header naming every column; the columns named ``y`` or ``y<something>`` (``y0``,
      ``y_force``) are the outputs, all the others the inputs, in file order; one row per example.

    Returns ``(x (N, d), y (N, k), input names)`` in float64. Raises ``FileNotFoundError`` for a
    missing file and ``ValueError``, naming the file and what was expected, for anything malformed
    (no outputs or no inputs, short rows, fewer than 2 examples, NaN/inf, mismatched lengths).
    """
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such data file: {path}")
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as f:
                missing = [k for k in ("x", "y") if k not in f]
                if missing:
                    raise ValueError(
                        f"{path}: a regression .npz needs arrays named 'x' (N, d) and 'y' (N,) or (N, k); "
                        f"missing {missing}, found {sorted(f.files)}"
                    )
                x, y = np.asarray(f["x"]), np.asarray(f["y"])
        except ValueError as exc:
            if str(exc).startswith(str(path)):
                raise
            raise ValueError(f"{path}: could not read the .npz file ({exc})") from None
        for name, a in (("x", x), ("y", y)):
            if a.dtype == object or not np.issubdtype(a.dtype, np.number):
                raise ValueError(f"{path}: `{name}` must be numeric, got dtype {a.dtype}")
        if x.ndim == 1:
            x = x[:, None]
        if y.ndim == 1:
            y = y[:, None]
        if x.ndim != 2 or y.ndim != 2:
            raise ValueError(
                f"{path}: `x` must be (N, d) and `y` (N,) or (N, k); got {x.shape} and {y.shape}"
            )
        names = [f"x{i}" for i in range(x.shape[1])]
    elif path.suffix == ".csv":
        lines = path.read_text().splitlines() if path.stat().st_size else []
        header = [h.strip() for h in lines[0].split(",")] if lines else []
        outputs = [i for i, h in enumerate(header) if h == "y" or (h.startswith("y") and len(h) > 1)]
        inputs = [i for i in range(len(header)) if i not in outputs]
        if not header or not outputs or not inputs:
            raise ValueError(
                f"{path}: the CSV header must name input columns and at least one output column 'y' or "
                f"'y<name>' (e.g. 'x0,x1,y'); got {','.join(header) or 'no header'}"
            )
        table = _read_csv_numbers(path, header)
        if table.size and table.shape[1] != len(header):
            raise ValueError(f"{path}: rows have {table.shape[1]} numbers but the header names {len(header)}")
        x, y = table[:, inputs], table[:, outputs]
        names = [header[i] for i in inputs]
    else:
        raise ValueError(f"{path}: expected a .npz or .csv file, got '{path.suffix}'")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{path}: `x` has {x.shape[0]} rows but `y` has {y.shape[0]}")
    if x.shape[0] < 2:
        raise ValueError(f"{path}: at least 2 examples are needed, got {x.shape[0]}")
    if x.shape[1] == 0 or y.shape[1] == 0:
        raise ValueError(f"{path}: no input or no output columns (x {x.shape}, y {y.shape})")
    for name, a in (("x", x), ("y", y)):
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{path}: `{name}` contains NaN or inf")
    return np.asarray(x, np.float64), np.asarray(y, np.float64), names


def save_regression(path, x, y) -> Path:
    """Write a regression table as ``.npz`` (``x``, ``y``) or ``.csv`` (header ``x0,...,y0,...``),
    atomically, in full precision (the layout :func:`load_regression` reads)."""
    from pathlib import Path

    from ._io import atomic_write_bytes, atomic_write_text

    path = Path(path)
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    x = x[:, None] if x.ndim == 1 else x
    y = y[:, None] if y.ndim == 1 else y
    if path.suffix == ".npz":
        import io

        buffer = io.BytesIO()
        np.savez(buffer, x=x, y=y)
        atomic_write_bytes(path, buffer.getvalue())
    elif path.suffix == ".csv":
        header = ",".join([f"x{i}" for i in range(x.shape[1])] + [f"y{i}" for i in range(y.shape[1])])
        rows = "\n".join(",".join(repr(float(v)) for v in row) for row in np.concatenate([x, y], axis=1))
        atomic_write_text(path, header + "\n" + rows + "\n")
    else:
        raise ValueError(f"{path}: expected a .npz or .csv file, got '{path.suffix}'")
    return path


def trajectories_to_csv(data: TrajectoryDataset) -> str:
    """The CSV text of ``data`` in the layout :func:`load_trajectories` reads."""
    return _csv_text(np.asarray(data.states), data.dt)


def _csv_text(states: np.ndarray, dt: float) -> str:
    n, T, d = states.shape
    lines = [",".join(["trajectory", "t"] + [f"z{i}" for i in range(d)])]
    for k in range(n):
        for i in range(T):
            row = [str(k), f"{i * dt:.12g}"] + [repr(float(v)) for v in states[k, i]]
            lines.append(",".join(row))
    return "\n".join(lines) + "\n"


def save_trajectories(path, states: np.ndarray, dt: float) -> Path:
    """Write trajectories ``(n, T, d)`` to ``path`` (``.csv`` or ``.npz``) atomically, in the layout
    :func:`load_trajectories` reads, at the precision of ``states`` (float64 stays float64).

    Raises:
        ValueError: for another suffix, a wrong shape or a non-positive ``dt``.
    """
    import io

    from ._io import atomic_write_bytes, atomic_write_text

    path = Path(path)
    states = np.asarray(states)
    if states.ndim != 3 or 0 in states.shape:
        raise ValueError(
            f"`states` must have shape (n_trajectories, n_times, state_size), got {states.shape}"
        )
    if not dt > 0:
        raise ValueError(f"`dt` must be positive, got {dt}")
    if path.suffix == ".csv":
        return atomic_write_text(path, _csv_text(states, float(dt)))
    if path.suffix == ".npz":
        buf = io.BytesIO()
        np.savez(buf, states=states, dt=np.float64(dt))
        return atomic_write_bytes(path, buf.getvalue())
    raise ValueError(f"{path}: expected a .csv or .npz file name, got '{path.suffix}'")


def load_digit_images() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits (no download): images ``(1797, 1, 8, 8)`` float32 in
    ``[0, 1]`` and labels ``(1797,)`` int32."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError("the digits data set needs scikit-learn: pip install scikit-learn") from exc
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]
    return images, digits.target.astype(np.int32)
