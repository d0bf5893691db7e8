"""A persistent XLA compilation cache for command-line runs.

Most of a short run is XLA compilation, paid again by every invocation. JAX can keep compiled
executables on disk and reuse them when the same program (same shapes, dtypes, flags and JAX
version) is compiled again; the command line turns that on, so a second ``physbias run`` of the
same experiment skips most of its compiling.

Where: ``$PHYSBIAS_XLA_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/physbias/xla`` (by default
``~/.cache/physbias/xla``). ``PHYSBIAS_XLA_CACHE_DIR=off`` (or ``0``, ``none``, ``false``, empty)
turns it off; the test suite does so unless the variable is set. Library code never enables it
on import: a program that imports physbias keeps JAX's own settings.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ENV_VAR = "PHYSBIAS_XLA_CACHE_DIR"
_OFF = {"", "0", "off", "none", "false", "no"}


def compilation_cache_dir() -> Path | None:
    """The cache folder the command line would use, or ``None`` when turned off."""
    value = os.environ.get(ENV_VAR)
    if value is not None:
        return None if value.strip().lower() in _OFF else Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "physbias" / "xla"


_SETTINGS = {
    # Cache every program: a short run is many small compilations, each under JAX's 1 s default.
    "jax_persistent_cache_min_compile_time_secs": 0.0,
    "jax_persistent_cache_min_entry_size_bytes": 0,
}


def enable_compilation_cache() -> Path | None:
    """Point JAX's persistent compilation cache at :func:`compilation_cache_dir` (every program,
    however fast it compiles) and return the folder, or ``None`` when turned off.

    Before JAX is imported this only sets JAX's environment variables, so nothing is imported or
    written until the run compiles (JAX creates the folder on its first write, and a folder it
    cannot write only costs the caching, with JAX's warning). Settings the user made through
    JAX's own ``JAX_COMPILATION_CACHE_DIR`` etc. win.
    """
    path = compilation_cache_dir()
    if path is None:
        return None
    settings = {"jax_compilation_cache_dir": str(path), **_SETTINGS}
    if "jax" not in sys.modules:
        for name, value in settings.items():
            os.environ.setdefault(name.upper(), str(value))
        return Path(os.environ["JAX_COMPILATION_CACHE_DIR"])
    import jax

    if jax.config.jax_compilation_cache_dir is None:
        for name, value in settings.items():
            jax.config.update(name, value)
    return Path(jax.config.jax_compilation_cache_dir)
