"""The package's metadata: one version everywhere, a citation file that says it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import actlab
from actlab.cli import main

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
ROOT = Path(__file__).resolve().parents[1]


def test_version_is_declared_once_and_cited(capsys):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" in project["dynamic"] and "version" not in project
    cff = (ROOT / "CITATION.cff").read_text()
    assert re.search(r"^version: (\S+)$", cff, re.M).group(1) == actlab.__version__
    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert capsys.readouterr().out.strip() == f"actlab {actlab.__version__}"
