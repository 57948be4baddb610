"""The registry: names, aliases, spec strings, parameter validation, table consistency."""

from __future__ import annotations

import math

import pytest

from actlab import catalog
from actlab.catalog import get, names, parse, parse_many, split_specs
from actlab.errors import ActlabError, UnknownActivationError

REQUIRED = {
    "identity",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "prelu",
    "elu",
    "selu",
    "celu",
    "gelu",
    "silu",
    "mish",
    "softplus",
    "softsign",
    "relu6",
    "hard_sigmoid",
    "hard_swish",
    "softmax",
    "log_softmax",
    "log_sigmoid",
}


def test_catalog_has_every_required_activation():
    assert set(names()) >= REQUIRED


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("logistic", "sigmoid"),
        ("logsigmoid", "log_sigmoid"),
        ("Swish", "silu"),
        ("LINEAR", "identity"),
        ("Leaky-ReLU", "leaky_relu"),
        ("hardswish", "hard_swish"),
        ("logsoftmax", "log_softmax"),
    ],
)
def test_lookup_is_case_insensitive_and_accepts_aliases(alias, canonical):
    assert get(alias).name == canonical


def test_unknown_name_suggests_the_closest():
    with pytest.raises(
        UnknownActivationError, match=r"unknown activation 'rleu'; did you mean 'relu'"
    ):
        get("rleu")
    with pytest.raises(UnknownActivationError, match="actlab list"):
        get("qwertyuiop")


def test_leaky_relu_alpha_and_negative_slope_are_synonyms_default_001():
    assert parse("leaky_relu").params["negative_slope"] == 0.01
    a = parse("leaky_relu:alpha=0.1")
    b = parse("leaky_relu:negative_slope=0.1")
    assert a == b and a.params == {"negative_slope": 0.1}
    assert str(a) == "leaky_relu:negative_slope=0.1"


def test_defaults_from_the_brief():
    assert parse("elu").params["alpha"] == 1.0
    assert parse("prelu").params["init"] == 0.25
    assert parse("gelu").params["approximate"] == "none"
    assert parse("softplus").params == {"beta": 1.0, "threshold": 20.0}
    assert parse("swish:beta=1.5").params["beta"] == 1.5


def test_spec_string_round_trips():
    for text in [
        "relu",
        "gelu:approximate=tanh",
        "elu:alpha=0.5",
        "silu:beta=2:learnable=true",
        "softmax:axis=0",
        "softplus:beta=2:threshold=10",
    ]:
        act = parse(text)
        assert parse(str(act)) == act
    assert str(parse("elu:alpha=1")) == "elu"  # defaults are not repeated


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("elu:alpha=-1", r"'alpha' of elu must be a finite number in \(0, inf\)"),
        ("elu:alpha=nan", "finite number"),
        ("elu:alpha=abc", "got 'abc'"),
        ("elu:beta=2", "unknown parameter 'beta' for elu; allowed: alpha"),
        ("relu:alpha=2", "relu takes no parameters"),
        ("gelu:approximate=fast", "one of 'none', 'tanh'"),
        ("elu:alpha", "expected key=value"),
        ("elu:alpha=1:alpha=2", "given twice"),
        ("", "empty activation spec"),
        ("prelu:num_parameters=2.5", "an integer"),
        ("prelu:num_parameters=0", r"an integer in \[1, inf\)"),
        ("silu:learnable=maybe", "true or false"),
    ],
)
def test_bad_specs_are_clear_errors(text, message):
    with pytest.raises(ActlabError, match=message):
        parse(text)


def test_python_overrides_are_validated_too():
    assert parse("elu", alpha=0.5).params["alpha"] == 0.5
    with pytest.raises(ActlabError, match="alpha"):
        parse("elu", alpha=0)


def test_several_specs_by_commas_or_spaces():
    assert split_specs(["relu,elu", "gelu:approximate=tanh"]) == [
        "relu",
        "elu",
        "gelu:approximate=tanh",
    ]
    assert [a.name for a in parse_many("relu, elu ,gelu")] == ["relu", "elu", "gelu"]
    assert parse_many(["relu", "elu"]) == parse_many("relu,elu")
    with pytest.raises(ActlabError, match="listed twice"):
        parse_many("relu,ReLU")
    with pytest.raises(ActlabError, match="no activation given"):
        parse_many(" , ")


@pytest.mark.parametrize("spec", catalog.SPECS, ids=lambda s: s.name)
def test_every_spec_is_complete_and_consistent(spec):
    assert spec.display_name and spec.formula and spec.formula_latex
    assert spec.derivative_formula and spec.derivative_latex
    assert spec.reference and spec.pros and spec.cons and spec.use
    assert spec.recommended_init in {"he", "glorot", "lecun", "none"}
    lo, hi = spec.output_range
    assert lo < hi
    props = spec.properties
    assert props.bounded_below == (not math.isinf(lo))
    assert props.bounded_above == (not math.isinf(hi))
    assert props.smoothness in {"C0", "C1", "Cinf"}
    assert props.saturating in {"none", "left", "right", "both"}
    assert spec.plot.title.get("en") and spec.plot.title.get("ru")
    assert spec.plot.xlim[0] < spec.plot.xlim[1] and spec.plot.ylim[0] < spec.plot.ylim[1]
    for p in spec.params:  # every default passes its own validation
        assert p.coerce(p.default, spec.name) == p.default


def test_article_figures_are_recorded():
    sig = get("sigmoid").plot
    assert sig.in_article and sig.x == (-100.0, 100.0, 1000) and sig.xlim == (-10.0, 10.0)
    assert sig.title["ru"] == "График сигмоиды"
    leaky = get("leaky_relu").plot
    assert leaky.params == {"negative_slope": 0.01} and leaky.ylim == (-0.5, 5.0)
    # one default slope: the figure's (gallery, plot, explorer) is the catalog's, PyTorch's
    assert leaky.params["negative_slope"] == get("leaky_relu").params[0].default == 0.01
    assert get("silu").plot.linewidth == 2.0 and get("silu").plot.ylim == (-1.5, 1.5)
    assert get("elu").plot.ylim == (-2.0, 5.0)
    assert {s.name for s in catalog.SPECS if s.plot.in_article} == {
        "sigmoid",
        "relu",
        "leaky_relu",
        "elu",
        "silu",
        "tanh",
        "softmax",
    }


def test_library_disagreements_are_documented():
    assert any("Keras" in d for d in get("leaky_relu").disagreements)
    assert any("approximate" in d or "tanh" in d for d in get("gelu").disagreements)


def test_kernel_params_drop_torch_only_flags():
    assert parse("silu:learnable=true").kernel_params == {"beta": 1.0}
    assert parse("prelu").kernel_params == {"init": 0.25}
