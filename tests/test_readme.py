"""The README's Python example runs as written and its claim (exact oddness) holds."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs(capsys):
    block = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[0]
    namespace: dict = {}
    exec(compile(block, str(README), "exec"), namespace)
    assert capsys.readouterr().out.strip() == "0.0"
    for name in ("r1", "r2", "r3", "r4"):
        assert namespace[name].final_loss < 1e-3
        assert not namespace[name].diverged


def test_readme_opens_with_the_two_commands():
    lines = [ln for ln in README.read_text().splitlines() if ln.startswith("pip install")]
    assert lines[0].startswith("pip install -e . && physbias run triangle")
    assert lines[1].startswith("pip install -e '.[test]' && pytest")


def test_readme_constrained_example_runs_and_keeps_the_chain_together():
    import numpy as np

    from physbias.systems import constraint_violation

    block = _block("ConstrainedLagrangianNN")
    namespace: dict = {}
    exec(compile(block, str(README), "exec"), namespace)
    trajectory = namespace["trajectory"]
    assert trajectory.shape == (1, 101, 12)
    assert np.all(np.isfinite(trajectory))
    # Any CLNN moves along the constraints: the rod lengths stay fixed up to RK4 and float32 error.
    assert float(np.max(constraint_violation(namespace["chain"].constraints, trajectory))) < 1e-3


def test_readme_symmetry_example_runs_and_the_emlp_is_equivariant(capsys):
    block = _block("equivariant_basis")
    namespace: dict = {}
    exec(compile(block, str(README), "exec"), namespace)
    assert namespace["Q"].shape == (27, 1)
    assert float(capsys.readouterr().out.strip()) < 1e-6


def test_readme_experiment_example_runs_and_the_odd_variant_is_odd(capsys):
    block = _block("OddConfig")
    namespace: dict = {}
    exec(compile(block, str(README), "exec"), namespace)
    assert capsys.readouterr().out.strip() == "0.0"
    rows = namespace["comparison"].rows
    assert [r["bias"] for r in rows] == ["none", "inductive"]
    assert rows[0]["oddness"] > 1e-3  # trained on x > 0 only, the plain MLP is not odd
    import pytest

    with pytest.raises(ValueError, match="epochs"):
        namespace["OddConfig"](epochs=0)


def _block(containing: str) -> str:
    """The README's Python example that mentions ``containing`` (exactly one must)."""
    blocks = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(), re.S) if containing in b]
    assert len(blocks) == 1, f"{len(blocks)} README examples mention {containing!r}"
    return blocks[0]


def test_readme_save_and_load_example_gives_back_the_same_model(tmp_path, monkeypatch):
    import jax.numpy as jnp

    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(_block("physbias.save"), str(README), "exec"), namespace)
    import physbias

    x = jnp.arange(6.0)
    assert (namespace["model"](x) == physbias.load("cross.eqx")(x)).all()
    assert physbias.load_metadata("cross.eqx") == {"trained_on": "cross product"}


def test_readme_evidence_example_learns_the_even_symmetry(capsys):
    namespace: dict = {}
    exec(compile(_block("evidence_loss"), str(README), "exec"), namespace)
    strength = float(capsys.readouterr().out.split()[-1])
    assert 0.9 <= strength <= 1.1


def test_readme_event_sampling_example_lands_in_the_event(capsys):
    block = _block("EventConditionedScore")
    exec(compile(block, str(README), "exec"), {})
    fraction, estimate = capsys.readouterr().out.strip().splitlines()
    assert float(fraction) >= 0.9
    log_p, error_bar = (float(v) for v in estimate.split(" ± "))
    # The exact log P(E) = log Phi(-4 / sqrt(3)) = -4.56; the 1000-step sampler's is within 0.04.
    assert abs(log_p + 4.56) < 3 * error_bar + 0.05 and error_bar < 0.1
