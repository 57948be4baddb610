"""Property tests (Hypothesis): whatever a person types, actlab answers with a result or one line.

Random spec strings, random values for every numeric option of ``actlab compare`` (and eval,
softmax, plot), random CSV bytes: the CLI ends with exit 0 or 2 and never a traceback. The compare
cases stop before training (``compare.run`` is replaced by the checks it makes before any folder:
settings, sizes, loading the data), so each example takes milliseconds."""

from __future__ import annotations

import importlib.util
import string

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from _cli import cli
from actlab import catalog
from actlab.errors import ActlabError

# derandomize: CI runs the same examples every time (a red CI must mean a change broke something);
# 1,500 random examples per property were run by hand when these tests were last changed.
FAST = settings(
    max_examples=40, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)  # fmt: skip


def assert_clean(code, err):
    assert code in (0, 2), err
    assert "Traceback" not in err


# --------------------------------------------------------------------------------- spec strings

NAMES = catalog.names(include_aliases=True)
KEYS = sorted({p.name for s in catalog.specs() for p in s.params} | {"alpha", "beta", "x", ""})
VALUE = st.one_of(
    st.text(alphabet=string.digits + "+-.eE_ infa", max_size=8),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers().map(str),
    st.sampled_from(["true", "no", "tanh", "none", "1_0", "٥", "²", "1e999", "-0"]),
)
PART = st.one_of(st.builds("{}={}".format, st.sampled_from(KEYS), VALUE), st.text(max_size=6))
SPEC = st.one_of(
    st.builds(lambda n, ps: ":".join([n, *ps]), st.sampled_from(NAMES), st.lists(PART, max_size=3)),
    st.text(alphabet=string.ascii_letters + string.digits + ":=_-., ", max_size=20),
)


def _names_no_code(spec: str) -> bool:
    """True unless the spec's head could import a real module (random text must run no code)."""
    head = spec.split(":")[0].strip()
    if "/" in head or head.endswith(".py"):
        return False
    try:
        return not head or importlib.util.find_spec(head.split(".")[0]) is None
    except (ImportError, ValueError):
        return True


@FAST
@given(spec=SPEC)
def test_any_spec_string_parses_or_says_why(spec):
    assume(_names_no_code(spec))
    try:
        act = catalog.parse(spec)
    except ActlabError as err:
        assert str(err) and "\n" not in str(err)
    else:
        assert catalog.parse(str(act)).params == act.params  # its canonical form reads back


@FAST
@given(spec=SPEC, x=st.lists(VALUE, min_size=1, max_size=3))
def test_eval_of_any_spec_and_numbers_exits_0_or_2(capsys, spec, x):
    assume(_names_no_code(spec) and spec.strip() and not spec.startswith("-"))
    assume(all(v.strip() and not v.strip().startswith("--") for v in x))
    code, _, err = cli(capsys, "eval", spec, *x)
    assert_clean(code, err)


# ------------------------------------------------------------------------ numeric CLI options


def _numeric_options():
    from actlab.compare import config

    out = []
    for typ in (*config.SECTIONS.values(), config.ComputeConfig):
        for f in config.fields(typ):
            s = f.metadata["setting"]
            if s.kind in ("int", "float") and s.cli:
                out.append(config._flag(f.name, s))
    return out


NUMBER_TEXT = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(alphabet=string.digits + "+-.,eE_ ٥²", min_size=1, max_size=12),
)


@pytest.fixture
def stop_before_training(monkeypatch):
    """``compare.run`` replaced by the checks it makes before anything is made."""
    from actlab import compare
    from actlab.compare import limits

    def checks_only(dataset=None, *, out=None, resume=False, max_models=None, max_memory=None,
                    **settings):  # fmt: skip
        run_only = ("time_budget", "progress", "on_start", "device", "backend")
        settings = {k: v for k, v in settings.items() if k not in run_only}
        if dataset is not None:
            settings["dataset"] = dataset
        c, _, _ = compare.resolve(settings, out, resume)
        limits.check_models(c, max_models)
        ds = compare._dataset(c)
        limits.check_memory(c, *compare._shape(ds), max_memory)
        raise ActlabError("stopped before training (test)")

    monkeypatch.setattr(compare, "run", checks_only)


@FAST
@given(option=st.sampled_from(_numeric_options()), value=NUMBER_TEXT)
def test_any_value_of_a_numeric_compare_option_exits_2_in_one_line(
    capsys, tmp_path, stop_before_training, option, value
):
    assume(not value.startswith("-") or value[1:2].isdigit() or value[1:2] == ".")
    code, _, err = cli(
        capsys, "compare", "--dataset", "moons", option, value, "--out", tmp_path / "r"
    )
    assert_clean(code, err)
    assert code == 2  # the stand-in always stops; a refused value stops earlier
    assert not (tmp_path / "r").exists()


@FAST
@given(t=NUMBER_TEXT, z=st.lists(NUMBER_TEXT, min_size=1, max_size=4))
def test_softmax_of_any_numbers_exits_0_or_2(capsys, t, z):
    assume(all(not v.startswith("--") for v in [t, *z]))
    code, _, err = cli(capsys, "softmax", *z, "--temperature", t)
    assert_clean(code, err)


# ---------------------------------------------------------------------------------- CSV bytes

CSV_BYTES = st.one_of(
    st.binary(max_size=300),
    st.lists(
        st.lists(st.sampled_from(["a", "b", "1", "2.5", "", "x y", '"q,"', "nan", "NA", "-", "1e9",
                                  "\x00", "é", "inf"]), min_size=1, max_size=4),
        min_size=1, max_size=12,
    ).map(lambda rows: "\n".join(",".join(r) for r in rows).encode()),
)  # fmt: skip


@FAST
@given(content=CSV_BYTES, prefix=st.sampled_from([b"", b"a,b\n", b"\xef\xbb\xbfa,b\n"]))
def test_any_csv_bytes_load_or_exit_2(capsys, tmp_path, stop_before_training, content, prefix):
    path = tmp_path / "data.csv"
    path.write_bytes(prefix + content)
    code, _, err = cli(
        capsys, "compare", "--csv", path, "--target", "a", "--out", tmp_path / "r"
    )
    assert_clean(code, err)
    assert not (tmp_path / "r").exists()
