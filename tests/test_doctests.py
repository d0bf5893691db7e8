"""Every example in a physbias docstring runs and prints what it says (doctest)."""

import doctest
import importlib
import pkgutil

import pytest

import physbias

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(physbias.__path__, "physbias.")
    if not m.name.startswith("physbias.experiments.") and m.name != "physbias.cli"
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples failed in {name}"


def test_the_docstrings_hold_examples():
    # The test above must have something to run: count the examples across the package.
    finder = doctest.DocTestFinder()
    n = sum(len(t.examples) for name in MODULES for t in finder.find(importlib.import_module(name)))
    assert n >= 15
