"""The package installs on every Python it claims, and claims the ones CI and people use."""

import tomllib
from pathlib import Path

from packaging.specifiers import SpecifierSet

PYPROJECT = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())


def test_current_pythons_may_install_it():
    supported = SpecifierSet(PYPROJECT["project"]["requires-python"])
    for version in ("3.11.7", "3.12.1", "3.13.0", "3.14.0"):
        assert version in supported, version
    assert "3.10.13" not in supported


def test_the_classifiers_name_the_tested_pythons():
    named = {
        c.rsplit(" :: ", 1)[1]
        for c in PYPROJECT["project"]["classifiers"]
        if c.startswith("Programming Language :: Python :: 3.")
    }
    assert {"3.11", "3.13"} <= named
