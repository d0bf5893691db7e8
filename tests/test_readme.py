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

    block = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[1]
    namespace: dict = {}
    exec(compile(block, str(README), "exec"), namespace)
    trajectory = namespace["trajectory"]
    assert trajectory.shape == (1, 101, 12)
    assert np.all(np.isfinite(trajectory))
    # Any CLNN moves along the constraints: the rod lengths stay fixed up to RK4 and float32 error.
    assert float(np.max(constraint_violation(namespace["chain"].constraints, trajectory))) < 1e-3


def test_readme_symmetry_example_runs_and_the_emlp_is_equivariant(capsys):
    block = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[2]
    namespace: dict = {}
    exec(compile(block, str(README), "exec"), namespace)
    assert namespace["Q"].shape == (27, 1)
    assert float(capsys.readouterr().out.strip()) < 1e-6


def test_readme_experiment_example_runs_and_the_odd_variant_is_odd(capsys):
    block = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[3]
    namespace: dict = {}
    exec(compile(block, str(README), "exec"), namespace)
    assert capsys.readouterr().out.strip() == "0.0"
    rows = namespace["comparison"].rows
    assert [r["bias"] for r in rows] == ["none", "inductive"]
    assert rows[0]["oddness"] > 1e-3  # trained on x > 0 only, the plain MLP is not odd
    import pytest

    with pytest.raises(ValueError, match="epochs"):
        namespace["OddConfig"](epochs=0)
