"""The README's self-contained Python example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    example = next(b for b in blocks if "actlab.parse(" in b)
    scope: dict = {}
    exec(compile(example, "README.md", "exec"), scope)
    assert abs(scope["y"].sum() - 1.0) < 1e-12
    assert type(scope["model"][1]).__name__ == "GELU"
