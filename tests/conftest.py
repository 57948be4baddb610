"""Shared fixtures for the compare tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from actlab import compare

sys.path.insert(0, str(Path(__file__).parent))
import _fake_engine as fake


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> fake.Behaviour:
    """compare.run with the fake engine (tests/_fake_engine.py) in place of the real one."""
    behaviour = fake.Behaviour()
    monkeypatch.setattr(fake, "BEHAVIOUR", behaviour)
    monkeypatch.setitem(sys.modules, "actlab.compare.engine", fake)
    monkeypatch.setattr(compare, "engine", fake, raising=False)
    return behaviour
