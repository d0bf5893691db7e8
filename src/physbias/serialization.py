"""Saving and loading any model of the library: one file, a JSON header plus Equinox's leaves.

The format follows Equinox's own recipe for serialising a model with its hyperparameters
(`Equinox: Serialisation <https://docs.kidger.site/equinox/examples/serialisation/>`_): the first
line of the file is a JSON header that says how to rebuild the model's *structure* from code, the
rest is :func:`equinox.tree_serialise_leaves` of its arrays. Nothing is pickled, and loading runs
no code from the file: the header names classes and functions that are imported (from ``physbias``,
``equinox``, ``jax``, ``numpy`` or the packages passed as ``allow``) and built from plain JSON values.

How a module is described in the header:

- a module with a ``hyperparameters()`` method (the EMLP family, whose structure is derived from
  its representations by basis solves) is stored as ``{"class", "init"}``: the keyword arguments
  that, with a ``key``, rebuild it;
- any other ``equinox.Module`` is stored field by field (``{"class", "fields"}``), arrays as
  ``{"shape", "dtype"}`` placeholders; it is rebuilt the way :mod:`jax.tree_util` unflattens it;
- plain dataclasses (e.g. a :class:`~physbias.groups.Group`) and the objects of representation
  expressions are stored by their fields; functions (activations) by an importable name.

:func:`save` rebuilds the structure from the header before it writes anything, so a model that
could not be loaded back is refused at save time, naming the part that cannot be stored (e.g. a
lambda activation).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import io
import json
import types
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._io import atomic_write_bytes
from ._version import __version__

FORMAT = "physbias.model"
FORMAT_VERSION = 1
TRUSTED = ("physbias", "equinox", "jax", "numpy")
"""Packages whose classes and functions a header may name (more with ``load(..., allow=...)``)."""

# Public namespaces searched first for a function's name, so that a header says ``jax.nn:silu``
# rather than the private module that happens to define it.
_PUBLIC = ("jax.nn", "jax.numpy", "jax.lax", "jax.scipy.special", "equinox.nn", "numpy")


class SerialisationError(ValueError):
    """A model that cannot be stored, or a file that does not describe one."""


# -- encoding -------------------------------------------------------------------------------


def _qualified(obj, where: str) -> str:
    """``"module:qualname"`` of a class or function that can be imported back as the same object."""
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    module = getattr(obj, "__module__", None)
    if name is not None and "<" in name and module is not None:
        # A lambda bound to a module-level name (equinox's default MLP output activation).
        bound = [k for k, v in vars(importlib.import_module(module)).items() if v is obj]
        name = bound[0] if bound else name
    if name is None or module is None or "<" in name:
        raise SerialisationError(
            f"{where}: {obj!r} cannot be saved: only importable classes and named functions can "
            "(a lambda or a local function cannot; define it at the top level of a module)"
        )
    # The public package that re-exports it (physbias.nn:EMLP, equinox.nn:MLP), the public
    # namespaces of activations (jax.nn:silu), then where it is defined.
    parts = module.split(".")
    public = next((i for i, p in enumerate(parts) if p.startswith("_")), len(parts))
    parents = [".".join(parts[:i]) for i in range(min(public, len(parts) - 1), 0, -1)]
    candidates = [f"{ns}:{name}" for ns in parents + list(_PUBLIC)] + [f"{module}:{name}"]
    for candidate in candidates:
        try:
            if _import(candidate, allow=None) is obj:
                return candidate
        except (ImportError, AttributeError):
            continue
    raise SerialisationError(
        f"{where}: {obj!r} cannot be saved: `{module}.{name}` does not import back as it"
    )


def _import(qualified: str, allow: tuple[str, ...] | None):
    module, _, name = qualified.partition(":")
    if allow is not None and module.split(".")[0] not in TRUSTED + allow:
        raise SerialisationError(
            f"the file names {qualified!r}, outside the trusted packages {TRUSTED + allow}; "
            "pass `allow=('package',)` to load() if you trust it"
        )
    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def _encode(value, where: str):
    """The JSON form of a value found at ``where`` (a path such as ``model.blocks[0].G``)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if np.isfinite(value) else {"float": repr(value)}
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return {"numpy_scalar": value.item(), "dtype": str(value.dtype)}
    if isinstance(value, tuple):
        return {"tuple": [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return {"list": [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise SerialisationError(f"{where}: only dicts with string keys can be saved")
        return {"dict": {k: _encode(v, f"{where}[{k!r}]") for k, v in value.items()}}
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise SerialisationError(f"{where}: an object array cannot be saved")
        return {"ndarray": value.tolist(), "dtype": str(value.dtype), "shape": list(value.shape)}
    if isinstance(value, jax.Array):
        if jnp.issubdtype(value.dtype, jax.dtypes.prng_key):
            raise SerialisationError(f"{where}: a PRNG key cannot be saved; store jax.random.key_data(key)")
        return {
            "ndarray": np.asarray(value).tolist(),
            "dtype": str(value.dtype),
            "shape": list(value.shape),
            "jax": True,
        }
    if isinstance(value, eqx.Module):
        return _encode_module(value, where)
    if isinstance(value, type):
        return {"type": _qualified(value, where)}
    if dataclasses.is_dataclass(value):
        fields = {
            f.name: _encode(getattr(value, f.name), f"{where}.{f.name}") for f in dataclasses.fields(value)
        }
        return {"dataclass": _qualified(type(value), where), "fields": fields}
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType)) or (
        callable(value) and type(value).__module__.split(".")[0] in ("jax", "jaxlib")
    ):
        return {"function": _qualified(value, where)}  # e.g. an activation: by its name
    if type(value).__module__.split(".")[0] in TRUSTED and hasattr(value, "__dict__"):
        # A plain object of the library (e.g. a representation expression): its attributes.
        state = {k: _encode(v, f"{where}.{k}") for k, v in vars(value).items()}
        return {"object": _qualified(type(value), where), "state": state}
    if callable(value):
        return {"function": _qualified(value, where)}
    raise SerialisationError(f"{where}: a {type(value).__name__} cannot be saved")


def _encode_module(module: eqx.Module, where: str):
    cls = type(module)
    if callable(getattr(cls, "hyperparameters", None)):
        init = module.hyperparameters()
        return {
            "class": _qualified(cls, where),
            "init": {k: _encode(v, f"{where}.{k}") for k, v in init.items()},
        }
    fields = {}
    for f in dataclasses.fields(module):
        value = getattr(module, f.name)
        if not f.metadata.get("static", False) and isinstance(value, (jax.Array, np.ndarray)):
            # A trained array: its values go to the binary part, the header keeps its place.
            if jnp.issubdtype(value.dtype, jax.dtypes.prng_key):
                raise SerialisationError(f"{where}.{f.name}: a PRNG key cannot be saved")
            fields[f.name] = {
                "leaf": list(value.shape),
                "dtype": str(value.dtype),
                "numpy": isinstance(value, np.ndarray),
            }
        else:
            fields[f.name] = _encode(value, f"{where}.{f.name}")
    return {"class": _qualified(cls, where), "fields": fields}


# -- decoding -------------------------------------------------------------------------------


def _decode(value, allow: tuple[str, ...]):
    if not isinstance(value, dict):
        if isinstance(value, list):
            raise SerialisationError("malformed header: untagged list")
        return value
    if "float" in value:
        return float(value["float"])
    if "numpy_scalar" in value:
        return np.dtype(value["dtype"]).type(value["numpy_scalar"])
    if "tuple" in value:
        return tuple(_decode(v, allow) for v in value["tuple"])
    if "list" in value:
        return [_decode(v, allow) for v in value["list"]]
    if "dict" in value:
        return {k: _decode(v, allow) for k, v in value["dict"].items()}
    if "ndarray" in value:
        array = np.asarray(value["ndarray"], dtype=value["dtype"]).reshape(value["shape"])
        return jnp.asarray(array) if value.get("jax") else array
    if "leaf" in value:
        shape, dtype = tuple(value["leaf"]), value["dtype"]
        return np.zeros(shape, dtype) if value.get("numpy") else jnp.zeros(shape, dtype)
    if "type" in value or "function" in value:
        return _import(value.get("type") or value["function"], allow)
    if "dataclass" in value:
        cls = _import(value["dataclass"], allow)
        fields = {k: _decode(v, allow) for k, v in value["fields"].items()}
        init = {f.name for f in dataclasses.fields(cls) if f.init}
        obj = cls(**{k: v for k, v in fields.items() if k in init})
        for k, v in fields.items():
            if k not in init:
                object.__setattr__(obj, k, v)
        return obj
    if "object" in value:
        cls = _import(value["object"], allow)
        obj = object.__new__(cls)
        obj.__dict__.update({k: _decode(v, allow) for k, v in value["state"].items()})
        return obj
    if "class" in value:
        cls = _import(value["class"], allow)
        if not (isinstance(cls, type) and issubclass(cls, eqx.Module)):
            raise SerialisationError(f"malformed header: {value['class']} is not an equinox.Module")
        if "init" in value:
            kwargs = {k: _decode(v, allow) for k, v in value["init"].items()}
            if "key" in inspect.signature(cls).parameters:
                kwargs["key"] = jax.random.key(0)  # the arrays are overwritten by the saved ones
            return cls(**kwargs)
        # Field by field, without __init__: what jax.tree_util.tree_unflatten does for a Module.
        obj = object.__new__(cls)
        for k, v in value["fields"].items():
            object.__setattr__(obj, k, _decode(v, allow))
        return obj
    raise SerialisationError(f"malformed header: unknown entry {sorted(value)}")


# -- the public functions -------------------------------------------------------------------


def _layout(tree) -> list[tuple[str, tuple, str]]:
    """Path, shape and dtype of every array leaf: what the binary part must fit.

    Static fields are not compared: some hold constants hashed by identity (an EMLP's bases), so
    two equal models built apart have different tree definitions."""
    leaves = jax.tree_util.tree_flatten_with_path(eqx.filter(tree, eqx.is_array))[0]
    return [(jax.tree_util.keystr(p), tuple(x.shape), str(x.dtype)) for p, x in leaves]


def _header_of(model, metadata) -> dict[str, Any]:
    if not isinstance(model, eqx.Module):
        raise TypeError(f"save: `model` must be an equinox.Module, got {type(model).__name__}")
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"save: `metadata` must be a dict of JSON values, got {type(metadata).__name__}")
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "physbias_version": __version__,
        "model": _encode(model, "model"),
        "metadata": metadata or {},
    }
    try:
        json.dumps(header["metadata"], allow_nan=False)
    except (TypeError, ValueError) as e:
        raise TypeError(f"save: `metadata` must hold JSON values only ({e})") from None
    return header


def save(model, path, *, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``model`` to the file ``path`` (atomically): a JSON header line, then its arrays.

    Args:
        model: any ``equinox.Module`` of the library (or built from ``equinox``/``jax`` pieces and
            named functions).
        path: the file to write (conventionally ``*.eqx``); parent folders are created.
        metadata: JSON values stored alongside (e.g. the time step a dynamics model was trained
            for); read them back with :func:`load_metadata`.

    Raises:
        SerialisationError: if the model holds something that cannot be stored (a lambda, a local
            function, a PRNG key), naming where, or if the structure rebuilt from the header is
            not the model's; nothing is written then.
    """
    header = _header_of(model, metadata)
    skeleton = _decode(header["model"], allow=())
    if _layout(skeleton) != _layout(model):
        raise SerialisationError(
            f"save: the {type(model).__name__} rebuilt from its description has another structure or "
            "array shapes (a hyperparameters() method that misses an argument?)"
        )
    buf = io.BytesIO()
    buf.write((json.dumps(header) + "\n").encode("utf-8"))
    eqx.tree_serialise_leaves(buf, model)
    return atomic_write_bytes(path, buf.getvalue())


def _read(path) -> tuple[dict[str, Any], io.BytesIO]:
    path = Path(path)
    if path.is_dir():
        path = path / "model.eqx"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is not a saved model (no such file)")
    data = path.read_bytes()
    line, _, rest = data.partition(b"\n")
    try:
        header = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise SerialisationError(
            f"{path} is not a physbias model file (its first line is not a {FORMAT} header)"
        )
    if header.get("format_version", 0) > FORMAT_VERSION:
        raise SerialisationError(
            f"{path} has format version {header['format_version']}; this physbias "
            f"({__version__}) reads up to {FORMAT_VERSION}: upgrade physbias"
        )
    return header, io.BytesIO(rest)


def load(path, *, allow: tuple[str, ...] = ()):
    """The model stored in ``path`` by :func:`save` (a file, or a folder holding ``model.eqx``).

    Args:
        allow: further top-level packages whose classes or functions the file may name (your own
            activation functions or modules); ``physbias``, ``equinox``, ``jax`` and ``numpy``
            always may.
    """
    header, rest = _read(path)
    skeleton = _decode(header["model"], tuple(allow))
    try:
        return eqx.tree_deserialise_leaves(rest, skeleton)
    except Exception as e:  # truncated file, or arrays that do not fit the header
        raise SerialisationError(f"{path}: the stored arrays do not match the model's header ({e})") from e


def load_metadata(path) -> dict[str, Any]:
    """The ``metadata`` dict stored with a model by :func:`save` (without building the model)."""
    return _read(path)[0]["metadata"]
