"""--model module:function loading, shared by compare and diagnose."""

from __future__ import annotations

import pytest

from actlab.errors import ActlabError
from actlab.usercode import load_function


def test_module_in_the_current_folder_and_file_path(tmp_path, monkeypatch):
    (tmp_path / "nets_for_test.py").write_text("def make(spec):\n    return spec.upper()\n")
    monkeypatch.chdir(tmp_path)
    assert load_function("nets_for_test:make")("relu") == "RELU"
    assert load_function(f"{tmp_path / 'nets_for_test.py'}:make")("elu") == "ELU"


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("nets", "must look like module:function"),
        (":make", "must look like module:function"),
        ("missing_file_xyz.py:make", "does not exist"),
        ("no_such_module_xyz:make", "cannot import 'no_such_module_xyz'"),
        ("{broken}:make", r"cannot import .*\(ZeroDivisionError: division by zero\)"),
        ("{good}:mkae", "has no function 'mkae'; did you mean 'make'"),
    ],
)
def test_clear_errors(tmp_path, ref, message):
    (tmp_path / "broken.py").write_text("x = 1 / 0\n")
    (tmp_path / "good.py").write_text("def make(spec):\n    return spec\n")
    ref = ref.format(broken=tmp_path / "broken.py", good=tmp_path / "good.py")
    with pytest.raises(ActlabError, match=message):
        load_function(ref, option="--model")
