"""Advice: which activation should this layer use, and why.

The knowledge lives in a rules table (``advice_rules.json`` next to this module), not in code. Each
rule says *when* it applies (task, layer, architecture, normalization, depth range) and what it
contributes: an activation with a score, its reason, caveats and pairings (loss, initialisation,
other), or a general note; every rule names its sources, and may quote one of the seed article's
rules with a verdict for that context. :func:`recommend` is a small engine over that table: keep the
rules that match the question, add up the scores per activation, rank, and end with the
``actlab compare`` command that tests the top hidden-layer candidates on the user's data.

JSON schema (``Recommendation.to_dict()``, ``actlab recommend --json``), ``schema_version`` 1::

    {
      "schema_version": 1,
      "query": {"task": str, "layer": "hidden"|"output", "depth": int|null,
                "architecture": str|null, "normalization": str|null},
      "candidates": [{"rank": int, "activation": str (canonical spec string), "label": str,
                      "score": int, "reason": str, "usage": str|null, "caveats": [str],
                      "pairings": {"loss": {"name": str, "detail": str}|null, "init": str,
                                   "init_detail": str, "other": [str]},
                      "sources": [SOURCE], "rules": [str]}],
      "avoid": [{"activation": str, "label": str, "score": int, "reason": str,
                 "sources": [SOURCE], "rules": [str]}],
      "notes": [{"rule": str, "text": str, "sources": [SOURCE]}],
      "article_notes": [{"key": str, "section": str, "quote_ru": str, "translation_en": str,
                         "verdict": "right"|"partly right"|"dated"|"wrong", "comment": str}],
      "compare_activations": [str], "compare_command": str, "compare_note": str
    }
    SOURCE = {"key": str, "citation": str, "kind": "article"|"paper"|"book"|"docs",
              "year": int|null, "url": str|null}

``init`` is one of ``he``, ``glorot``, ``lecun``, ``torch`` (values of ``actlab compare --init``).
New keys may be added without a version bump; renaming or removing one bumps ``schema_version``.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from actlab import catalog
from actlab.errors import ActlabError, suggest
from actlab.spec import ADVICE_INITS

SCHEMA_VERSION = 1

TASKS = (
    "binary",
    "multiclass",
    "multilabel",
    "regression",
    "regression-positive",
    "regression-bounded",
    "hidden",
)
LAYERS = ("hidden", "output")
ARCHITECTURES = ("mlp", "cnn", "rnn", "transformer")
NORMALIZATIONS = ("none", "batch", "layer")
VERDICTS = ("right", "partly right", "dated", "wrong")
INITS = ADVICE_INITS  # the one list (actlab.spec), with "torch"
SOURCE_KINDS = ("article", "paper", "book", "docs")
UNSPECIFIED = "unspecified"  # condition value matching a question that left the field out
MAX_DEPTH = 10_000
COMPARE_TOP = 4  # hidden candidates put into the compare command
COMPARE_SEEDS = 5

# Common spellings users type, mapped to the canonical token (kindly: 'lstm' is an RNN).
_ALIASES: dict[str, dict[str, str]] = {
    "task": {
        "binary-classification": "binary",
        "multi-class": "multiclass",
        "multi-label": "multilabel",
        "positive-regression": "regression-positive",
        "bounded-regression": "regression-bounded",
    },
    "architecture": {
        "dense": "mlp",
        "feedforward": "mlp",
        "fcn": "mlp",
        "convnet": "cnn",
        "conv": "cnn",
        "lstm": "rnn",
        "gru": "rnn",
    },
    "normalization": {
        "batchnorm": "batch",
        "bn": "batch",
        "layernorm": "layer",
        "ln": "layer",
        "rmsnorm": "layer",
    },
}
_HINTS = {
    ("task", "classification"): "; say which kind: binary (two classes), multiclass (exactly one "
    "of K classes) or multilabel (several labels at once)",
}
_ALLOWED = {
    "task": TASKS,
    "layer": LAYERS,
    "architecture": ARCHITECTURES,
    "normalization": NORMALIZATIONS,
}
_CONDITION_KEYS = ("task", "layer", "architecture", "normalization", "depth")
_RULE_KEYS = {
    "id", "kind", "when", "activation", "label", "score", "reason", "usage", "loss", "init",
    "init_detail", "other", "caveats", "sources", "article", "text",
}


# ----------------------------------------------------------------------------------------------
# Result types
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Source:
    key: str
    citation: str
    kind: str
    year: int | None
    url: str | None


@dataclass(frozen=True)
class Loss:
    name: str
    detail: str


@dataclass(frozen=True)
class Pairings:
    loss: Loss | None  # None for hidden layers: the loss belongs to the output layer
    init: str  # he | glorot | lecun | torch
    init_detail: str
    other: tuple[str, ...]


@dataclass(frozen=True)
class Candidate:
    rank: int
    activation: str  # canonical spec string, usable with catalog.parse and actlab compare
    label: str
    score: int
    reason: str
    usage: str | None
    caveats: tuple[str, ...]
    pairings: Pairings
    sources: tuple[Source, ...]
    rules: tuple[str, ...]


@dataclass(frozen=True)
class Avoid:
    activation: str
    label: str
    score: int
    reason: str
    sources: tuple[Source, ...]
    rules: tuple[str, ...]


@dataclass(frozen=True)
class Note:
    rule: str
    text: str
    sources: tuple[Source, ...]


@dataclass(frozen=True)
class ArticleNote:
    key: str
    section: str
    quote_ru: str
    translation_en: str
    verdict: str
    comment: str


@dataclass(frozen=True)
class Query:
    task: str
    layer: str
    depth: int | None
    architecture: str | None
    normalization: str | None


@dataclass(frozen=True)
class Recommendation:
    query: Query
    candidates: tuple[Candidate, ...]
    avoid: tuple[Avoid, ...]
    notes: tuple[Note, ...]
    article_notes: tuple[ArticleNote, ...]
    compare_activations: tuple[str, ...]
    compare_command: str
    compare_note: str

    @property
    def top(self) -> Candidate:
        return self.candidates[0]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict following the schema in the module docstring."""
        return {"schema_version": SCHEMA_VERSION, **_lists(asdict(self))}


def _lists(obj: Any) -> Any:
    """Tuples become lists so that to_dict() equals its own JSON round trip."""
    if isinstance(obj, dict):
        return {k: _lists(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_lists(v) for v in obj]
    return obj


# ----------------------------------------------------------------------------------------------
# The rules table
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    id: str
    kind: str  # "candidate" | "note"
    when: Mapping[str, Any]
    activation: str | None  # canonical spec string
    label: str | None
    score: int
    reason: str | None
    usage: str | None
    loss: Loss | None
    init: str | None
    init_detail: str | None
    other: tuple[str, ...]
    caveats: tuple[str, ...]
    sources: tuple[str, ...]
    article: tuple[Mapping[str, str], ...]
    text: str | None

    def matches(self, q: Query) -> bool:
        for key in ("task", "layer", "architecture", "normalization"):
            allowed = self.when.get(key)
            if allowed is not None and (getattr(q, key) or UNSPECIFIED) not in allowed:
                return False
        depth = self.when.get("depth")
        if depth is not None:  # a depth rule refines: it needs a depth to refine
            if q.depth is None:
                return False
            if q.depth < depth.get("min", 1) or q.depth > depth.get("max", MAX_DEPTH):
                return False
        return True


@dataclass(frozen=True)
class RuleTable:
    rules: tuple[Rule, ...]
    sources: Mapping[str, Source]
    article: Mapping[str, ArticleNote]
    inits: Mapping[str, str]


def _bad(where: str, message: str) -> ActlabError:
    return ActlabError(f"advice rules table, {where}: {message}")


def _strs(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(where, "must be a list of strings")
    return tuple(value)


def _check_when(when: Any, where: str) -> dict[str, Any]:
    if not isinstance(when, dict):
        raise _bad(where, "'when' must be an object")
    out: dict[str, Any] = {}
    for key, value in when.items():
        if key not in _CONDITION_KEYS:
            raise _bad(where, f"unknown condition '{key}'; allowed: {', '.join(_CONDITION_KEYS)}"
                       + suggest(key, _CONDITION_KEYS))
        if key == "depth":
            if not isinstance(value, dict) or not set(value) <= {"min", "max"} or not value:
                raise _bad(where, "'depth' must be an object with 'min' and/or 'max'")
            for bound in value.values():
                if isinstance(bound, bool) or not isinstance(bound, int) or bound < 1:
                    raise _bad(where, "depth bounds must be positive integers")
            out[key] = dict(value)
            continue
        values = _strs(value, f"{where}, condition '{key}'")
        # task and layer are always known by the time rules match; the others may be left out.
        allowed = _ALLOWED[key] if key in ("task", "layer") else (*_ALLOWED[key], UNSPECIFIED)
        for v in values:
            if v not in allowed:
                raise _bad(where, f"condition '{key}' has unknown value '{v}'; allowed: "
                           + ", ".join(allowed) + suggest(v, allowed))
        out[key] = frozenset(values)
    return out


def _parse_table(raw: Any) -> RuleTable:
    if not isinstance(raw, dict):
        raise _bad("top level", "must be a JSON object")
    for key in ("sources", "article", "rules", "inits"):
        if key not in raw:
            raise _bad("top level", f"missing '{key}'")

    sources: dict[str, Source] = {}
    for key, s in raw["sources"].items():
        if not isinstance(s, dict) or not isinstance(s.get("citation"), str):
            raise _bad(f"source '{key}'", "needs a 'citation' string")
        if s.get("kind") not in SOURCE_KINDS:
            raise _bad(f"source '{key}'", f"kind must be one of {', '.join(SOURCE_KINDS)}")
        sources[key] = Source(key, s["citation"], s["kind"], s.get("year"), s.get("url"))

    article: dict[str, ArticleNote] = {}
    for key, a in raw["article"].items():
        where = f"article rule '{key}'"
        fields = ("section", "quote_ru", "translation_en", "verdict", "comment")
        if not isinstance(a, dict) or any(not isinstance(a.get(f), str) for f in fields):
            raise _bad(where, f"needs string fields {', '.join(fields)}")
        if a["verdict"] not in VERDICTS:
            raise _bad(where, f"verdict must be one of {', '.join(VERDICTS)}")
        article[key] = ArticleNote(key, *(a[f] for f in fields))

    inits = raw["inits"]
    if set(inits) != set(INITS):
        raise _bad("inits", f"must describe exactly {', '.join(INITS)}")

    rules: list[Rule] = []
    seen: set[str] = set()
    for i, r in enumerate(raw["rules"]):
        rid = r.get("id") if isinstance(r, dict) else None
        where = f"rule '{rid}'" if rid else f"rule #{i}"
        if not isinstance(rid, str) or rid in seen:
            raise _bad(where, "needs a unique string 'id'")
        seen.add(rid)
        unknown = set(r) - _RULE_KEYS
        if unknown:
            raise _bad(where, f"unknown field(s) {', '.join(sorted(unknown))}")
        kind = r.get("kind", "candidate")
        when = _check_when(r.get("when", {}), where)
        refs = r.get("article", [])
        for ref in refs:
            if not isinstance(ref, dict) or ref.get("ref") not in article:
                raise _bad(where, f"article reference {ref!r} is not a key of 'article'")
            if ref.get("verdict", "right") not in VERDICTS:
                raise _bad(where, f"verdict must be one of {', '.join(VERDICTS)}")
        src = _strs(r.get("sources", []), f"{where}, sources")
        for key in src:
            if key not in sources:
                raise _bad(where, f"unknown source '{key}'" + suggest(key, sources))
        activation = None
        if kind == "candidate":
            if not isinstance(r.get("activation"), str):
                raise _bad(where, "a candidate rule needs an 'activation'")
            try:  # every activation a rule names must exist in the catalog
                activation = str(catalog.parse(r["activation"]))
            except ActlabError as exc:
                raise _bad(where, str(exc)) from None
            if isinstance(r.get("score"), bool) or not isinstance(r.get("score"), int):
                raise _bad(where, "a candidate rule needs an integer 'score'")
        elif kind == "note":
            if not isinstance(r.get("text"), str):
                raise _bad(where, "a note rule needs a 'text'")
        else:
            raise _bad(where, f"kind must be 'candidate' or 'note', got {kind!r}")
        init = r.get("init")
        if init is not None and init not in INITS:
            raise _bad(where, f"init must be one of {', '.join(INITS)}" + suggest(init, INITS))
        loss = r.get("loss")
        if loss is not None and not (isinstance(loss, dict) and set(loss) == {"name", "detail"}):
            raise _bad(where, "'loss' must be an object with 'name' and 'detail'")
        rules.append(Rule(
            id=rid, kind=kind, when=when, activation=activation, label=r.get("label"),
            score=r.get("score", 0), reason=r.get("reason"), usage=r.get("usage"),
            loss=Loss(**loss) if loss else None, init=init, init_detail=r.get("init_detail"),
            other=_strs(r.get("other", []), f"{where}, other"),
            caveats=_strs(r.get("caveats", []), f"{where}, caveats"),
            sources=src, article=tuple(refs), text=r.get("text"),
        ))
    return RuleTable(tuple(rules), sources, article, dict(inits))


def load_rules(path: str | Path | None = None) -> RuleTable:
    """Load and validate a rules table: the shipped one by default, or a JSON file like it."""
    if path is None:
        return _default_rules()
    p = Path(path).expanduser()
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ActlabError(f"rules file '{p}' does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ActlabError(f"cannot read rules file '{p}': {exc}") from None
    except json.JSONDecodeError as exc:
        raise ActlabError(f"rules file '{p}' is not valid JSON: {exc}") from None
    return _parse_table(raw)


@lru_cache(maxsize=1)
def _default_rules() -> RuleTable:
    text = resources.files("actlab").joinpath("advice_rules.json").read_text(encoding="utf-8")
    return _parse_table(json.loads(text))


# ----------------------------------------------------------------------------------------------
# Validation of the question
# ----------------------------------------------------------------------------------------------

def _choice(field: str, value: Any, *, optional: bool) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ActlabError(f"{field} must be a string, one of: {', '.join(_ALLOWED[field])}; "
                          f"got {value!r}")
    token = value.strip().lower().replace("_", "-").replace(" ", "-")
    token = _ALIASES.get(field, {}).get(token, token)
    if token in _ALLOWED[field]:
        return token
    hint = _HINTS.get((field, token)) or suggest(token, _ALLOWED[field])
    valid = ", ".join(_ALLOWED[field])
    raise ActlabError(f"unknown {field} '{value}'; valid values: {valid}{hint}")


def _depth(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DEPTH:
        raise ActlabError(f"depth must be the number of hidden layers, an integer from 1 to "
                          f"{MAX_DEPTH}; got {value!r}")
    return value


def _query(task: Any, layer: Any, depth: Any, architecture: Any, normalization: Any) -> Query:
    t = _choice("task", task, optional=False)
    lay = _choice("layer", layer, optional=True)
    if lay is None:
        lay = "hidden" if t == "hidden" else "output"
    if t == "hidden" and lay == "output":
        raise ActlabError(
            "task 'hidden' is about hidden layers, so layer 'output' does not apply; for an output "
            "layer give the target's task: " + ", ".join(x for x in TASKS if x != "hidden")
        )
    return Query(
        task=str(t), layer=lay, depth=_depth(depth),
        architecture=_choice("architecture", architecture, optional=True),
        normalization=_choice("normalization", normalization, optional=True),
    )


# ----------------------------------------------------------------------------------------------
# The engine
# ----------------------------------------------------------------------------------------------

def _unique(items: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(dict.fromkeys(items))


def _label(activation: str, rules: Sequence[Rule]) -> str:
    for r in rules:
        if r.label:
            return r.label
    return catalog.parse(activation).label


def _rank(table: RuleTable, matched: Sequence[Rule]) -> tuple[list[Candidate], list[Avoid]]:
    groups: dict[str, list[Rule]] = {}
    for r in matched:
        if r.kind == "candidate" and r.activation is not None:
            groups.setdefault(r.activation, []).append(r)

    scored: list[tuple[int, int, str, list[Rule]]] = []
    for order, (act, rules) in enumerate(groups.items()):
        # Within an activation, the strongest rule speaks first (stable for equal scores).
        rules = sorted(rules, key=lambda r: -r.score)
        scored.append((sum(r.score for r in rules), order, act, rules))
    scored.sort(key=lambda t: (-t[0], t[1]))

    candidates: list[Candidate] = []
    avoid: list[Avoid] = []
    for total, _, act, rules in scored:
        src = _unique([table.sources[k] for r in rules for k in r.sources])
        ids = tuple(r.id for r in rules)
        against = [r.reason for r in rules if r.score < 0 and r.reason]
        if total <= 0:
            if against:
                avoid.append(Avoid(act, _label(act, rules), total, " ".join(against), src, ids))
            continue
        spec = catalog.parse(act).spec
        init = next((r.init for r in rules if r.init), None) or spec.recommended_init
        if init not in INITS:  # catalog's "none": identity-like outputs use the Linear default
            init = "torch"
        detail = next((r.init_detail for r in rules if r.init_detail), None) or table.inits[init]
        candidates.append(Candidate(
            rank=len(candidates) + 1,
            activation=act,
            label=_label(act, rules),
            score=total,
            reason=" ".join(r.reason for r in rules if r.score >= 0 and r.reason),
            usage=next((r.usage for r in rules if r.usage), None),
            # Rules that count against a candidate that still ranks become its caveats.
            caveats=_unique([c for r in rules for c in r.caveats] + against),
            pairings=Pairings(
                loss=next((r.loss for r in rules if r.loss), None),
                init=init,
                init_detail=detail,
                other=_unique([o for r in rules for o in r.other]),
            ),
            sources=src,
            rules=ids,
        ))
    return candidates, avoid


def _article_notes(table: RuleTable, matched: Sequence[Rule]) -> tuple[ArticleNote, ...]:
    chosen: dict[str, ArticleNote] = {}
    for r in matched:  # table order: the first rule to quote a passage sets its verdict here
        for ref in r.article:
            key = ref["ref"]
            if key in chosen:
                continue
            base = table.article[key]
            chosen[key] = ArticleNote(
                key, base.section, base.quote_ru, base.translation_en,
                ref.get("verdict", base.verdict), ref.get("comment", base.comment),
            )
    order = list(table.article)  # show them in the article's own order
    return tuple(sorted(chosen.values(), key=lambda n: order.index(n.key)))


_COMPARE_TASK = {
    "binary": "classification",
    "multiclass": "classification",
    "multilabel": "classification",
    "regression": "regression",
    "regression-positive": "regression",
    "regression-bounded": "regression",
}


def _compare(q: Query, hidden: Sequence[Candidate]) -> tuple[tuple[str, ...], str, str]:
    acts = tuple(c.activation for c in hidden[:COMPARE_TOP])
    own_model = q.architecture not in (None, "mlp") or q.normalization in ("batch", "layer")
    parts = ["actlab", "compare", "--csv", "PATH", "--target", "COLUMN"]
    if q.task in _COMPARE_TASK:
        parts += ["--task", _COMPARE_TASK[q.task]]
    parts += ["--activations", ",".join(acts), "--seeds", str(COMPARE_SEEDS)]
    if q.depth is not None and not own_model:
        parts += ["--depth", str(q.depth)]
    if own_model:
        parts += ["--model", "MODULE:FUNCTION"]
    command = " ".join(shlex.quote(p) if p not in ("PATH", "COLUMN", "MODULE:FUNCTION") else p
                       for p in parts)

    what = "the top hidden-layer candidates"
    if q.layer == "output":
        what = ("the hidden-layer activations that go with this output (the output activation "
                "itself is fixed by the target and the loss, so it is not compared)")
    lines = [f"Compares {what} on your data: {len(acts)} activations x {COMPARE_SEEDS} seeds, "
             "same network, same split; PATH and COLUMN are your CSV file and its target column."]
    if q.task == "hidden":
        lines.append("The task (classification or regression) is inferred from the target "
                     "column; add --task to override.")
    if q.task == "multilabel":
        lines.append("actlab compare fits one target column; for a multilabel problem run it on "
                     "your most important label (or each label) as a proxy for the hidden layers.")
    if q.task in ("regression-positive", "regression-bounded"):
        lines.append("actlab compare fits an identity output with MSE; the ranking of hidden "
                     "activations it gives carries over to a softplus or scaled-sigmoid output.")
    if own_model:
        lines.append("MODULE:FUNCTION names your own network builder, function(activation_spec) "
                     "-> nn.Module, since the built-in network is a plain MLP (no convolution, "
                     "recurrence, attention or normalisation layers).")
    if q.architecture == "rnn":
        lines.append("For a plain RNN your builder can pass the spec as nn.RNN's nonlinearity "
                     "('tanh' or 'relu'); inside LSTM/GRU the activations are fixed, so vary the "
                     "feed-forward head's activation instead.")
    if q.architecture == "transformer":
        lines.append("Your builder decides where the spec goes, e.g. the feed-forward block's "
                     "activation (silu inside SwiGLU).")
    return acts, command, " ".join(lines)


def recommend(
    task: str,
    layer: str | None = None,
    depth: int | None = None,
    architecture: str | None = None,
    normalization: str | None = None,
    *,
    rules: str | Path | RuleTable | None = None,
) -> Recommendation:
    """Recommend activations for one layer, ranked, with reasons, caveats and pairings.

    ``task``: binary, multiclass, multilabel, regression, regression-positive, regression-bounded
    or hidden. ``layer`` defaults to "hidden" for task "hidden" and "output" otherwise. ``depth`` is
    the number of hidden layers; ``architecture`` mlp|cnn|rnn|transformer and ``normalization``
    none|batch|layer refine the answer. ``rules`` swaps in another rules table (a path or a
    loaded :class:`RuleTable`). Unknown values raise :class:`ActlabError` naming the valid ones.
    """
    q = _query(task, layer, depth, architecture, normalization)
    table = rules if isinstance(rules, RuleTable) else load_rules(rules)
    matched = [r for r in table.rules if r.matches(q)]
    candidates, avoid = _rank(table, matched)
    if not candidates:
        raise ActlabError(f"the rules table has no candidate for {_describe(q)}; add a rule for it")

    hidden = candidates
    if q.layer == "output":  # the compare command tests the hidden layers that go with it
        hq = Query(q.task, "hidden", q.depth, q.architecture, q.normalization)
        hidden, _ = _rank(table, [r for r in table.rules if r.matches(hq)])
    compare_acts, command, note = _compare(q, hidden)

    notes = tuple(
        Note(r.id, r.text.replace("{task}", q.task), tuple(table.sources[k] for k in r.sources))
        for r in matched if r.kind == "note" and r.text
    )
    return Recommendation(
        query=q,
        candidates=tuple(candidates),
        avoid=tuple(avoid),
        notes=notes,
        article_notes=_article_notes(table, matched),
        compare_activations=compare_acts,
        compare_command=command,
        compare_note=note,
    )


def _describe(q: Query) -> str:
    parts = [f"task={q.task}", f"layer={q.layer}"]
    parts += [f"{k}={getattr(q, k)}" for k in ("depth", "architecture", "normalization")
              if getattr(q, k) is not None]
    return ", ".join(parts)


__all__ = [
    "ARCHITECTURES",
    "LAYERS",
    "NORMALIZATIONS",
    "SCHEMA_VERSION",
    "TASKS",
    "ArticleNote",
    "Avoid",
    "Candidate",
    "Loss",
    "Note",
    "Pairings",
    "Query",
    "Recommendation",
    "Rule",
    "RuleTable",
    "Source",
    "load_rules",
    "recommend",
]
