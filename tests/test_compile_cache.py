"""The command line's persistent XLA compilation cache: where it goes, how it is turned off, and
that compiled programs land in it (checked in fresh interpreters, since JAX reads it at import)."""

import os
import subprocess
import sys
from pathlib import Path

from physbias._compile_cache import ENV_VAR, compilation_cache_dir


def test_cache_folder_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "xla"))
    assert compilation_cache_dir() == tmp_path / "xla"
    for off in ("off", "0", "", "None", "FALSE"):
        monkeypatch.setenv(ENV_VAR, off)
        assert compilation_cache_dir() is None
    monkeypatch.delenv(ENV_VAR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert compilation_cache_dir() == tmp_path / "cache" / "physbias" / "xla"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert compilation_cache_dir() == Path.home() / ".cache" / "physbias" / "xla"


def test_the_test_suite_runs_with_the_cache_off_unless_asked():
    if os.environ.get(ENV_VAR, "off") == "off":
        assert compilation_cache_dir() is None


def _python(code: str, env: dict) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION")}
    result = subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_enabling_imports_nothing_and_compiled_programs_are_written(tmp_path):
    cache = tmp_path / "xla"
    code = (
        "import sys\n"
        "from physbias._compile_cache import enable_compilation_cache\n"
        "print(enable_compilation_cache())\n"
        "print('jax' in sys.modules)\n"
        "import jax, jax.numpy as jnp\n"
        "jax.jit(lambda x: jnp.sin(x) * 3.0)(jnp.ones(7)).block_until_ready()\n"
    )
    out = _python(code, {ENV_VAR: str(cache)}).split()
    assert out == [str(cache), "False"]  # folder named, JAX not imported by the enabling itself
    assert any(cache.rglob("*")), "no compiled program was written to the cache"


def test_turned_off_nothing_is_written(tmp_path):
    code = (
        "from physbias._compile_cache import enable_compilation_cache\n"
        "print(enable_compilation_cache())\n"
        "import jax, jax.numpy as jnp\n"
        "jax.jit(lambda x: x + 1.0)(jnp.ones(3)).block_until_ready()\n"
        "print(jax.config.jax_compilation_cache_dir)\n"
    )
    assert _python(code, {ENV_VAR: "off", "HOME": str(tmp_path)}).split() == ["None", "None"]
    assert not (tmp_path / ".cache").exists()


def test_a_second_seed_compiles_nothing_with_the_cache(tmp_path):
    # A sweep runs the same experiment for several seeds: with the cache the second seed's training
    # loop comes from disk (no cache miss: nothing is compiled anew). Without it `fit` lowers it again.
    code = (
        "import jax, jax.numpy as jnp, equinox as eqx\n"
        "from physbias._compile_cache import enable_compilation_cache\n"
        "enable_compilation_cache()\n"
        "from physbias import Dataset, fit, supervised_loss\n"
        "events = []\n"
        "jax.monitoring.register_event_listener(lambda e, **k: events.append(e))\n"
        "jax.monitoring.register_event_duration_secs_listener(lambda e, d, **k: events.append(e))\n"
        "x = jnp.linspace(-1.0, 1.0, 32)[:, None]\n"
        "for seed in (0, 1):\n"
        "    model = eqx.nn.MLP(1, 1, 8, 1, key=jax.random.key(seed))\n"
        "    start = len(events)\n"
        "    data = Dataset(x, x**2)\n"
        "    fit(model, supervised_loss(), data, key=jax.random.key(seed), epochs=5, progress=False)\n"
        "    mine = events[start:]\n"
        "    count = lambda name: sum(e.endswith(name) for e in mine)\n"
        "    print(count('cache_misses'), count('cache_hits'), count('backend_compile_duration'))\n"
    )
    first, second = (
        list(map(int, line.split())) for line in _python(code, {ENV_VAR: str(tmp_path / "xla")}).splitlines()
    )
    assert first[0] > 0 and first[1] == 0  # an empty cache: every program compiled and stored
    assert second[0] == 0 and second[1] == second[2] > 0  # every program of seed 1 came from disk
    _, off = (list(map(int, line.split())) for line in _python(code, {ENV_VAR: "off"}).splitlines())
    assert off[1] == 0 and off[2] > 0  # no cache: the new training loop is compiled again
