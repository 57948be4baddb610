"""Advice: the rules table, the recommend() engine and `actlab recommend`."""

from __future__ import annotations

import json
import shlex
from importlib import resources
from pathlib import Path

import pytest

from actlab import catalog
from actlab.advice import (
    INITS,
    SCHEMA_VERSION,
    TASKS,
    Recommendation,
    load_rules,
    recommend,
)
from actlab.errors import ActlabError

SEED_ARTICLE = Path("/work/shared/seed/000_9bcf058c0b9fec89.txt")


def _raw_table() -> dict:
    return json.loads(resources.files("actlab").joinpath("advice_rules.json").read_text("utf-8"))


def _article_keys(rec: Recommendation) -> dict[str, str]:
    return {a.key: a.verdict for a in rec.article_notes}


# ---------------------------------------------------------------- each task's answer


@pytest.mark.parametrize(
    ("task", "activation", "loss", "init"),
    [
        ("binary", "sigmoid", "BCEWithLogitsLoss", "glorot"),
        ("multiclass", "softmax", "CrossEntropyLoss", "glorot"),
        ("multilabel", "sigmoid", "BCEWithLogitsLoss", "glorot"),
        ("regression", "identity", "MSELoss", "glorot"),
        ("regression-positive", "softplus", "MSELoss", "glorot"),
        ("regression-bounded", "sigmoid", "MSELoss", "glorot"),
    ],
)
def test_output_layer_top_candidate_loss_and_init(task, activation, loss, init):
    rec = recommend(task)
    assert rec.query.layer == "output"
    top = rec.top
    assert top.rank == 1 and top.activation == activation
    assert top.pairings.loss is not None and loss in top.pairings.loss.name
    assert top.pairings.init == init
    assert top.reason and top.sources
    assert all(c.score > 0 for c in rec.candidates)
    assert [c.score for c in rec.candidates] == sorted((c.score for c in rec.candidates),
                                                       reverse=True)


def test_losses_are_on_logits_not_on_probabilities():
    binary = recommend("binary").top
    assert "logit" in binary.pairings.loss.detail and "logit" in binary.usage
    multi = recommend("multiclass").top
    assert "logits" in multi.pairings.loss.detail
    assert any("applied twice" in c for c in multi.caveats)  # no softmax before CrossEntropyLoss


def test_positive_regression_offers_softplus_and_the_log_link():
    rec = recommend("regression-positive")
    assert [c.activation for c in rec.candidates[:2]] == ["softplus", "identity"]
    log_link = rec.candidates[1]
    assert "PoissonNLLLoss" in log_link.pairings.loss.name and "log_input=True" in log_link.usage
    assert "relu" in [a.activation for a in rec.avoid]


def test_bounded_regression_says_how_to_scale():
    rec = recommend("regression-bounded")
    assert "lo + (hi - lo) * torch.sigmoid(z)" in rec.top.usage
    assert [c.activation for c in rec.candidates] == ["sigmoid", "tanh", "identity"]
    clamp = rec.candidates[2]
    assert "clamp" in clamp.usage and any("gradient is 0" in c for c in clamp.caveats)


def test_hidden_default_is_relu_with_he_and_dead_unit_caveat():
    rec = recommend("hidden")
    assert rec.query.layer == "hidden"
    assert rec.top.activation == "relu"
    assert rec.top.pairings.init == "he" and rec.top.pairings.loss is None
    assert any("die" in c for c in rec.top.caveats)
    assert "sigmoid" in [a.activation for a in rec.avoid]


def test_hidden_inits_follow_the_catalog():
    for c in recommend("hidden").candidates:
        assert c.pairings.init == catalog.get(c.activation).recommended_init, c.activation
        assert c.pairings.init in INITS


def test_deep_mlp_without_normalisation_gets_selu_with_lecun_and_alphadropout():
    rec = recommend("hidden", depth=20, architecture="mlp", normalization="none")
    assert rec.top.activation == "selu"
    assert rec.top.pairings.init == "lecun"
    assert any("AlphaDropout" in o for o in rec.top.pairings.other)
    assert "tanh" in [a.activation for a in rec.avoid]  # saturating through 20 plain layers
    relu = next(c for c in rec.candidates if c.activation == "relu")
    assert any("residual" in c for c in relu.caveats)
    assert any("residual" in n.text for n in rec.notes)


def test_depth_refines_only_when_given_and_normalisation_rules_out_selu():
    assert "selu" not in [c.activation for c in recommend("hidden").candidates]
    batch = recommend("hidden", depth=20, normalization="batch")
    assert batch.top.activation == "relu" and "selu" not in [c.activation for c in batch.candidates]
    shallow = {c.activation: c.score for c in recommend("hidden", depth=1).candidates}
    default = {c.activation: c.score for c in recommend("hidden").candidates}
    assert shallow["tanh"] > default["tanh"]


def test_transformer_gets_gelu_then_silu_with_layernorm():
    rec = recommend("hidden", architecture="transformer")
    assert [c.activation for c in rec.candidates[:2]] == ["gelu", "silu"]
    assert "SwiGLU" in rec.candidates[1].reason
    assert any("LayerNorm" in n.text for n in rec.notes)


def test_cnn_candidates():
    rec = recommend("hidden", architecture="cnn", normalization="batch")
    assert [c.activation for c in rec.candidates[:2]] == ["relu", "silu"]
    assert "hard_swish" in [c.activation for c in rec.candidates]


def test_rnn_gates_and_cell_are_fixed_and_lstm_confusion_is_explained():
    rec = recommend("hidden", architecture="lstm")  # 'lstm' is read as the rnn architecture
    assert rec.query.architecture == "rnn"
    assert rec.top.activation == "tanh"
    text = " ".join(n.text for n in rec.notes)
    assert "sigmoid" in text and "not a choice" in text
    assert "not an activation function" in text and "Keras" in text
    assert _article_keys(rec)["rnn-tanh-lstm"] == "partly right"


def test_hidden_layer_of_an_output_task_links_to_the_output_answer():
    rec = recommend("binary", layer="hidden")
    assert rec.top.activation == "relu"
    assert any("--task binary --layer output" in n.text for n in rec.notes)


# ---------------------------------------------------------------- the article's rules


def test_article_regression_relu_is_wrong_for_the_output_but_right_for_hidden_layers():
    out = recommend("regression")
    assert _article_keys(out)["regression-relu"] == "wrong"
    assert "relu" in [a.activation for a in out.avoid]
    hidden = recommend("regression", layer="hidden")
    assert _article_keys(hidden)["regression-relu"] == "right"


def test_article_tanh_for_binary_output_is_flagged():
    rec = recommend("binary")
    note = next(a for a in rec.article_notes if a.key == "binary-sigmoid-tanh")
    assert note.verdict == "partly right" and "not probabilities" in note.comment
    assert note.quote_ru.startswith("Используйте Sigmoid или Tanh")
    assert "tanh" in [a.activation for a in rec.avoid]


def test_article_softmax_rule_depends_on_the_task():
    assert _article_keys(recommend("multiclass"))["classification-softmax"] == "right"
    assert _article_keys(recommend("multilabel"))["classification-softmax"] == "wrong"


def test_article_relu_and_elu_claims_are_corrected():
    verdicts = _article_keys(recommend("hidden"))
    assert verdicts["relu-solves-vanishing"] == "partly right"
    assert verdicts["elu-exploding"] == "wrong"
    assert verdicts["silu-monotonic"] == "wrong"
    assert verdicts["try-several"] == "right"


def test_article_notes_carry_quote_translation_and_comment():
    table = _raw_table()
    for key, note in table["article"].items():
        assert note["quote_ru"] and note["translation_en"] and note["comment"], key
        assert any("\u0400" <= ch <= "\u04ff" for ch in note["quote_ru"]), key  # Russian text
    if SEED_ARTICLE.exists():  # the quotes are verbatim
        article = SEED_ARTICLE.read_text(encoding="utf-8")
        for key, note in table["article"].items():
            assert note["quote_ru"] in article, key
            assert note["section"] in article, key


# ---------------------------------------------------------------- the compare command


@pytest.mark.parametrize("task", TASKS)
def test_every_answer_ends_with_a_compare_command_for_hidden_activations(task):
    rec = recommend(task)
    words = shlex.split(rec.compare_command)
    assert words[:2] == ["actlab", "compare"]
    assert words[words.index("--csv") + 1] == "PATH"
    assert words[words.index("--target") + 1] == "COLUMN"
    assert words[words.index("--seeds") + 1] == "5"
    acts = words[words.index("--activations") + 1]
    assert [str(a) for a in catalog.parse_many(acts)] == list(rec.compare_activations)
    assert 2 <= len(rec.compare_activations) <= 4
    # Output activations are never "compared": the hidden ones that go with them are.
    assert not {"softmax", "log_softmax", "identity", "softplus"} & set(rec.compare_activations)
    expected_task = {"hidden": None}.get(task, "regression" if "regression" in task
                                         else "classification")
    if expected_task is None:
        assert "--task" not in words
    else:
        assert words[words.index("--task") + 1] == expected_task
    if rec.query.layer == "output":
        assert "fixed by the target" in rec.compare_note


def test_compare_command_follows_depth_and_architecture():
    deep = recommend("hidden", depth=12)
    words = shlex.split(deep.compare_command)
    assert words[words.index("--depth") + 1] == "12"
    assert words[words.index("--activations") + 1].split(",")[0] == "selu"
    cnn = shlex.split(recommend("multiclass", architecture="cnn").compare_command)
    assert "MODULE:FUNCTION" in cnn and "--depth" not in cnn
    assert cnn[cnn.index("--activations") + 1] == "relu,silu,leaky_relu,gelu"


def test_compare_command_parses_with_the_compare_cli():
    compare_cli = pytest.importorskip("actlab.cli.compare")
    import argparse

    parser = argparse.ArgumentParser(prog="actlab")
    compare_cli.register(parser.add_subparsers(dest="command"))
    for kwargs in ({"task": "binary"}, {"task": "regression", "depth": 3},
                   {"task": "hidden", "architecture": "cnn"}):
        args = parser.parse_args(shlex.split(recommend(**kwargs).compare_command)[1:])
        assert args.command == "compare"


# ---------------------------------------------------------------- the rules table is data


def test_rules_table_names_only_catalog_activations_and_known_sources():
    table = _raw_table()
    named = [r["activation"] for r in table["rules"] if "activation" in r]
    assert len(named) >= 30
    for name in named:
        catalog.get(name)  # raises UnknownActivationError for a name the catalog lacks
    for r in table["rules"]:
        for key in r.get("sources", []):
            assert key in table["sources"], (r["id"], key)
        if r.get("kind", "candidate") == "candidate":
            assert r["sources"], r["id"]  # every activation rule says where it comes from
    years = [s["year"] for s in table["sources"].values() if s["kind"] == "paper"]
    assert all(isinstance(y, int) and 1960 < y < 2100 for y in years)


def test_loaded_table_size_and_every_rule_reachable():
    table = load_rules()
    assert len(table.rules) >= 40
    fired: set[str] = set()
    for task in TASKS:
        layers = ["hidden"] if task == "hidden" else ["hidden", "output"]
        for layer in layers:
            for arch in (None, "mlp", "cnn", "rnn", "transformer"):
                for norm in (None, "none", "batch", "layer"):
                    for depth in (None, 1, 20):
                        rec = recommend(task, layer, depth, arch, norm)
                        fired.update(r for c in rec.candidates for r in c.rules)
                        fired.update(r for a in rec.avoid for r in a.rules)
                        fired.update(n.rule for n in rec.notes)
    assert fired >= {r.id for r in table.rules if r.score != 0 or r.kind == "note"}


def test_custom_rules_table_changes_the_answer(tmp_path):
    raw = _raw_table()
    raw["rules"].append({
        "id": "house-mish", "activation": "mish", "score": 500,
        "when": {"layer": ["hidden"]}, "reason": "Our team's house rule.", "sources": ["misra2020"],
    })
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    rec = recommend("hidden", rules=path)
    assert rec.top.activation == "mish" and rec.top.reason == "Our team's house rule."
    assert recommend("hidden").top.activation == "relu"  # the shipped table is untouched


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"activation": "rleu"}, "did you mean 'relu'"),
        ({"when": {"task": ["multclass"]}}, "did you mean 'multiclass'"),
        ({"when": {"archtecture": ["cnn"]}}, "did you mean 'architecture'"),
        ({"sources": ["he2051"]}, "unknown source 'he2051'"),
        ({"init": "kaiming"}, "init must be one of"),
    ],
)
def test_broken_rules_table_is_a_clear_error(tmp_path, patch, message):
    raw = _raw_table()
    rule = {"id": "bad", "activation": "relu", "score": 1, "sources": ["he2015"]}
    rule.update(patch)
    raw["rules"].append(rule)
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(ActlabError, match=message) as info:
        load_rules(path)
    assert "rule 'bad'" in str(info.value)


# ---------------------------------------------------------------- bad questions


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task": "multclass"}, "unknown task 'multclass'; valid values: binary, multiclass.*"
                                "did you mean 'multiclass'"),
        ({"task": "classification"}, "binary .*multiclass .*multilabel"),
        ({"task": "hidden", "architecture": "transfomer"}, "did you mean 'transformer'"),
        ({"task": "hidden", "normalization": "group"}, "valid values: none, batch, layer"),
        ({"task": "binary", "layer": "input"}, "valid values: hidden, output"),
        ({"task": "hidden", "layer": "output"}, "layer 'output' does not apply"),
        ({"task": "hidden", "depth": 0}, "depth must be .* from 1"),
        ({"task": "hidden", "depth": True}, "depth must be"),
        ({"task": "hidden", "depth": "3"}, "depth must be"),
        ({"task": 3}, "task must be a string"),
    ],
)
def test_bad_questions_raise_actlab_error(kwargs, message):
    with pytest.raises(ActlabError, match=message):
        recommend(**kwargs)


def test_spelling_variants_are_accepted():
    rec = recommend("Regression_Positive", layer="OUTPUT", architecture="ConvNet",
                    normalization="BatchNorm")
    assert (rec.query.task, rec.query.layer, rec.query.architecture, rec.query.normalization) == (
        "regression-positive", "output", "cnn", "batch")


# ---------------------------------------------------------------- JSON and the CLI

TOP_KEYS = {"schema_version", "query", "candidates", "avoid", "notes", "article_notes",
            "compare_activations", "compare_command", "compare_note"}
CANDIDATE_KEYS = {"rank", "activation", "label", "score", "reason", "usage", "caveats",
                  "pairings", "sources", "rules"}


def test_to_dict_has_the_documented_schema_and_round_trips():
    data = recommend("regression-positive", depth=3).to_dict()
    assert set(data) == TOP_KEYS and data["schema_version"] == SCHEMA_VERSION == 1
    assert json.loads(json.dumps(data)) == data
    assert set(data["query"]) == {"task", "layer", "depth", "architecture", "normalization"}
    cand = data["candidates"][0]
    assert set(cand) == CANDIDATE_KEYS
    assert set(cand["pairings"]) == {"loss", "init", "init_detail", "other"}
    assert set(cand["pairings"]["loss"]) == {"name", "detail"}
    assert set(cand["sources"][0]) == {"key", "citation", "kind", "year", "url"}
    assert set(data["avoid"][0]) == {"activation", "label", "score", "reason", "sources", "rules"}
    assert set(data["notes"][0]) == {"rule", "text", "sources"}
    assert set(data["article_notes"][0]) == {"key", "section", "quote_ru", "translation_en",
                                             "verdict", "comment"}


def _main():
    return pytest.importorskip("actlab.cli").main


def test_cli_json(capsys):
    assert _main()(["recommend", "--task", "multiclass", "--depth", "3", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == TOP_KEYS and data["schema_version"] == 1
    assert data["candidates"][0]["activation"] == "softmax"
    assert data["candidates"][0]["pairings"]["loss"]["name"] == "CrossEntropyLoss"
    assert data["query"] == {"task": "multiclass", "layer": "output", "depth": 3,
                             "architecture": None, "normalization": None}


def test_cli_text_ends_with_the_compare_command(capsys):
    assert _main()(["recommend", "--task", "regression", "--depth", "2"]) == 0
    out = capsys.readouterr().out
    assert "Identity" in out and "MSELoss" in out
    assert "Для задач регрессии, используйте ReLU" in out  # the article's rule, quoted
    last = out.rstrip("\n").splitlines()[-1]
    assert last == recommend("regression", depth=2).compare_command


def test_cli_errors_exit_2(capsys):
    main = _main()
    assert main(["recommend", "--task", "multclass"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("actlab: error: unknown task 'multclass'") and "did you mean" in err
    assert main(["recommend", "--task", "hidden", "--layer", "output"]) == 2
    assert main(["recommend", "--task", "hidden", "--rules", "/nonexistent/rules.json"]) == 2
    for argv in (["recommend"], ["recommend", "--task", "hidden", "--depth", "deep"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
