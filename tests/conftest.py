import jax
import pytest

# Strictness in the style of equinox's own test-suite: implicit rank promotion and implicit dtype
# promotion (e.g. int32 * float32 arrays) are bugs. Optax's own update is run under standard
# promotion inside `physbias.fit` (its Adam mixes a Python float with an int32 step count).
jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")


def pytest_configure(config):
    """The command line's persistent XLA cache (the user's folder) stays off in tests unless the
    variable is set. The session shares a throwaway cache of its own instead, made by the
    controlling process and inherited by the xdist workers: many tests compile the same programs
    (the same quick experiment run again, the same model in two tests), and compiling is most of
    the suite's time."""
    import os
    import tempfile

    os.environ.setdefault("PHYSBIAS_XLA_CACHE_DIR", "off")
    if not hasattr(config, "workerinput") and "PHYSBIAS_TEST_XLA_CACHE" not in os.environ:
        config._physbias_xla_cache = tempfile.mkdtemp(prefix="physbias-test-xla-")
        os.environ["PHYSBIAS_TEST_XLA_CACHE"] = config._physbias_xla_cache
    jax.config.update("jax_compilation_cache_dir", os.environ["PHYSBIAS_TEST_XLA_CACHE"])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def pytest_unconfigure(config):
    import shutil

    folder = getattr(config, "_physbias_xla_cache", None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


class _GetKey:
    """Fresh PRNG keys from a seed that shows in the test's repr."""

    def __init__(self, seed: int):
        self.seed = seed
        self.key = jax.random.key(seed)

    def __call__(self):
        self.key, sub = jax.random.split(self.key)
        return sub

    def __repr__(self):
        return f"getkey(seed={self.seed})"


@pytest.fixture
def getkey():
    return _GetKey(0)


@pytest.fixture(autouse=True, scope="session")
def _basis_cache(tmp_path_factory):
    """Solved bases go to a fresh folder per test session, never into the user's cache."""
    import os

    old = os.environ.get("PHYSBIAS_CACHE_DIR")
    os.environ["PHYSBIAS_CACHE_DIR"] = str(tmp_path_factory.mktemp("basis-cache"))
    yield
    if old is None:
        os.environ.pop("PHYSBIAS_CACHE_DIR", None)
    else:
        os.environ["PHYSBIAS_CACHE_DIR"] = old
