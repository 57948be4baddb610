"""The activation registry: every part of actlab looks activations up here.

It is built from the built-in definitions (:mod:`actlab.activations`, one
:class:`ActivationSpec` each) plus the user's own: :func:`register` in Python, or a spec naming
code, ``path/to/file.py:function[:k=v]`` or ``module:function[:k=v]``, wherever a spec is
accepted. :func:`parse` turns a spec string ``name[:key=value...]`` into a bound
:class:`Activation`; kernels, layers, the torch adapter, plots and the CLI all go through it.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from actlab import usercode
from actlab.activations import BUILTINS
from actlab.errors import NUMBER_RE, ActlabError, UnknownActivationError, suggest
from actlab.spec import Activation, ActivationSpec, Param, Properties, format_value

__all__ = [
    "SPECS",
    "Activation",
    "ActivationSpec",
    "Param",
    "Properties",
    "derivative",
    "format_value",
    "forward",
    "get",
    "names",
    "parse",
    "parse_many",
    "parse_registered",
    "register",
    "specs",
    "split_specs",
    "unregister",
]

SPECS: tuple[ActivationSpec, ...] = BUILTINS  # the built-ins, in catalog order
_LOOKUP: dict[str, ActivationSpec] = {}
for _s in SPECS:
    for _key in (_s.name, *_s.aliases):
        if _key in _LOOKUP:  # pragma: no cover - guards the table itself
            raise RuntimeError(f"duplicate activation name {_key!r}")
        _LOOKUP[_key] = _s
_USER: dict[str, ActivationSpec] = {}  # register()ed, by name: listed beside the built-ins
_LOADED: dict[str, ActivationSpec] = {}  # code references (file.py:function), once loaded


def specs() -> list[ActivationSpec]:
    """Every activation: the built-ins in catalog order, then the user's, in registration order."""
    return [*SPECS, *_USER.values()]


def names(include_aliases: bool = False) -> list[str]:
    """Canonical names in catalog order, then user activations (plus aliases when asked)."""
    if include_aliases:
        return [*_LOOKUP, *_USER]
    return [s.name for s in specs()]


def get(name: str) -> ActivationSpec:
    """Look an activation up by name or alias, case-insensitively ('-' and '_' are the same).

    A code reference (``file.py:function``, ``module:function``) is loaded on first use.
    """
    if not isinstance(name, str):
        raise ActlabError(f"activation name must be a string, got {type(name).__name__}")
    key = name.strip().lower().replace("-", "_")
    found = _USER.get(key) or _LOOKUP.get(key)  # a user name hides a built-in by shadow=True
    if found is not None:
        return found
    if usercode.is_reference(name) and usercode.may_exist(name):
        return _load(name.strip())
    hint = suggest(key, [*_LOOKUP, *_USER]) or (
        "; run 'actlab list' to see them all, or name your own function as "
        "path/to/file.py:function or module:function"
    )
    raise UnknownActivationError(f"unknown activation '{name}'{hint}") from None


def _load(ref: str) -> ActivationSpec:
    key = usercode.reference_key(ref)  # a file by its absolute path: the folder may change
    if key not in _LOADED:
        _LOADED[key] = usercode.load_activation(ref)
    return _LOADED[key]


def register(
    name: str,
    torch_fn: Callable[..., Any],
    *,
    numpy_fn: Callable[..., Any] | None = None,
    derivative: Callable[..., Any] | None = None,
    params: Mapping[str, Any] | Iterable[Param] = (),
    display_name: str | None = None,
    formula: str | None = None,
    replace: bool = False,
    shadow: bool = False,
) -> ActivationSpec:
    """Add your own activation under ``name``; then every spec string may use it.

    ``torch_fn(x, **params)`` computes it on a tensor (PyTorch modules, compare and diagnose use
    it; its derivative comes from autograd). ``numpy_fn(x, **params)`` and
    ``derivative(x, **params)`` (f'(x), elementwise), when given, are what ``eval`` and the plots
    use; otherwise they go through ``torch_fn`` and autograd. ``params`` maps each parameter name
    to its default (a float, int or bool), or gives :class:`Param` objects with ranges.
    The functions are checked on a grid first: a wrong signature, a result of another shape, a
    NaN or a non-elementwise function is an :class:`ActlabError`. ``name`` is a spec name
    (lower-case letters, digits and ``_``, starting with a letter, not a Python keyword);
    ``shadow=True`` lets it hide a built-in of that name until :func:`unregister`.

    >>> import torch
    >>> spec = register("scaled_tanh", lambda x, a=1.7159: a * torch.tanh(2 * x / 3),
    ...                 params={"a": 1.7159})
    >>> round(float(parse("scaled_tanh:a=1").forward(3.0)), 6)  # tanh(2)
    0.964028
    >>> unregister("scaled_tanh")
    """
    key = _register_name(name)
    if key in _LOOKUP and not shadow:
        raise ActlabError(
            f"register: '{name}' is a built-in activation ({_LOOKUP[key].name}); "
            "choose another name, or pass shadow=True to hide the built-in"
        )
    if key in _USER and not replace:
        raise ActlabError(
            f"register: '{name}' is already registered; pass replace=True to redefine it"
        )
    spec = usercode.define_activation(
        key,
        torch_fn,
        numpy_fn=numpy_fn,
        derivative=derivative,
        params=params,
        display_name=display_name,
        formula=formula,
        source="actlab.register",
    )
    _USER[key] = spec
    return spec


_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


def _register_name(name: Any) -> str:
    """``name`` as a registry key, if it is a valid spec name (what ``parse`` can find again)."""
    key = name.strip().lower().replace("-", "_") if isinstance(name, str) else None
    if key is None or not _NAME.fullmatch(key) or keyword.iskeyword(key):
        raise ActlabError(
            "register: the name must be a spec name (an identifier: a letter, then letters, "
            f"digits or '_', at most 64, not a Python keyword), such as 'my_act'; got {name!r}"
        )
    return key


def unregister(name: str) -> None:
    """Remove a user activation added by :func:`register`."""
    key = name.strip().lower()
    if key not in _USER:
        raise ActlabError(f"unregister: '{name}' is not a user activation")
    del _USER[key]


def _split_reference(text: str) -> tuple[str, list[str]]:
    """'file.py:fn:k=v' -> ('file.py:fn', ['k=v']); 'elu:alpha=1' -> ('elu', ['alpha=1'])."""
    head, *parts = text.split(":")
    known = head.strip().lower().replace("-", "_") in _LOOKUP
    ref = f"{head}:{parts[0]}" if parts else ""
    if not known and ref and usercode.is_reference(ref) and usercode.may_exist(ref):
        return ref, parts[1:]
    return head, parts


def parse(spec: str | Activation | ActivationSpec, **overrides: Any) -> Activation:
    """Parse ``name[:key=value[:key=value...]]`` into an :class:`Activation`.

    Keyword ``overrides`` are applied after the string's own parameters (Python callers may write
    ``parse("elu", alpha=0.5)``).
    """
    if isinstance(spec, Activation):
        base, given = spec.spec, dict(spec.params)
    elif isinstance(spec, ActivationSpec):
        base, given = spec, {}
    elif isinstance(spec, str):
        text = spec.strip()
        if not text:
            raise ActlabError("empty activation spec; expected name[:key=value...], e.g. 'relu'")
        head, parts = _split_reference(text)
        base = get(head)
        given = _given(base, parts, repr(spec))
    else:
        raise ActlabError(
            f"activation spec must be a string like 'relu' or 'elu:alpha=0.5', "
            f"got {type(spec).__name__}"
        )
    for key, value in overrides.items():
        p = base.param(key)
        given[p.name] = p.coerce(value, base.name)
    params = {p.name: given.get(p.name, p.default) for p in base.params}
    problem = base.check(params) if base.check is not None else None
    if problem:
        raise ActlabError(f"{base.name}: {problem}")
    return Activation(base, params)


def _given(
    base: ActivationSpec, parts: Iterable[str], shown: str, *, untrusted: bool = False
) -> dict[str, Any]:
    """A spec's ``key=value`` parts, coerced, by canonical parameter name. ``untrusted`` (the
    explorer's requests): echoes are cut to ``ECHO`` characters and a value must be a plain
    ASCII number or word of at most 40 characters."""
    cut = ECHO if untrusted else None
    given: dict[str, Any] = {}
    for part in parts:
        if "=" not in part:
            raise ActlabError(
                f"bad parameter {part[:cut]!r} in {shown}: expected key=value, "
                "e.g. 'leaky_relu:alpha=0.1'"
            )
        key, value = (s.strip() for s in part.split("=", 1))
        p = base.param(key[:cut])
        numeric = p.kind in (int, float) and not p.choices
        if untrusted and numeric and not PLAIN_NUMBER.fullmatch(value):
            raise ActlabError(
                f"parameter '{p.name}' in {shown}: {value[:ECHO]!r} is not a plain number; "
                "write it like 0.5, -2 or 1e-3"
            )
        if p.name in given:
            raise ActlabError(f"parameter '{p.name}' given twice in {shown}")
        if untrusted and (len(value) > 40 or not value.isascii()):
            raise ActlabError(
                f"parameter '{p.name}' in {shown}: give a plain ASCII value (at most 40 "
                "characters), e.g. 0.5"
            )
        given[p.name] = p.coerce(value, base.name)
    return given


def forward(act: str | Activation | ActivationSpec, x: Any, out: Any = None) -> Any:
    """f(x) for an activation given as a spec string (``"elu:alpha=0.5"``) or catalog object."""
    return parse(act).forward(x, out=out)


def derivative(act: str | Activation | ActivationSpec, x: Any, out: Any = None) -> Any:
    """Elementwise f'(x). Softmax and log-softmax have a Jacobian instead: use their VJPs."""
    return parse(act).derivative(x, out=out)


def split_specs(items: str | Iterable[str]) -> list[str]:
    """Split specs given with spaces or commas: ['relu,elu', 'gelu'] -> ['relu', 'elu', 'gelu']."""
    if isinstance(items, str):
        items = [items]
    out = [piece.strip() for item in items for piece in str(item).replace(",", " ").split()]
    return [piece for piece in out if piece]


def parse_many(items: str | Iterable[str]) -> list[Activation]:
    """Parse several specs separated by spaces and/or commas; duplicates are an error."""
    acts = [parse(s) for s in split_specs(items)]
    if not acts:
        raise ActlabError("no activation given; e.g. 'relu,elu,gelu'")
    seen: set[str] = set()
    for a in acts:
        if str(a) in seen:
            raise ActlabError(f"activation '{a}' is listed twice")
        seen.add(str(a))
    return acts


ECHO = 80  # characters of an untrusted spec quoted back in an error
# one number, ASCII only: float() and int() also take '٥', '1_0' and ' 5 '
PLAIN_NUMBER = NUMBER_RE  # the one number grammar (errors.read_number)


def parse_registered(spec: object, extra: Mapping[str, ActivationSpec] | None = None) -> Activation:
    """:func:`parse` for untrusted text (the explorer's requests): the name must be a built-in, a
    :func:`register`-ed activation or a key of ``extra``, looked up in memory only. A spec naming
    a file or a module (``file.py:fn``, ``module:fn``) is refused before anything touches the file
    system or ``sys.modules``: code runs only when the person at the terminal names it.
    """
    if not isinstance(spec, str):
        raise ActlabError(
            f"activation spec must be a string like 'relu' or 'elu:alpha=0.5', "
            f"got {type(spec).__name__}"
        )
    text = spec.strip()
    shown = repr(text[:ECHO] + ("..." if len(text) > ECHO else ""))
    if not text:
        raise ActlabError("empty activation spec; expected name[:key=value...], e.g. 'relu'")
    head, *parts = text.split(":")
    key = head.strip().lower().replace("-", "_")
    table = {**_USER, **(extra or {})}
    base = _LOOKUP.get(key) or table.get(key)
    if base is None:
        if not key.isidentifier() or (parts and "=" not in parts[0]):
            raise ActlabError(
                f"{shown} is not an activation name; code (file.py:function, module:function) "
                "cannot be named here: load it when starting the server, e.g. "
                "actlab explore --activations my_acts.py:snake, then use its name (snake)"
            )
        raise UnknownActivationError(
            f"unknown activation {shown}" + suggest(key[:ECHO], [*_LOOKUP, *table])
        )
    return parse(base, **_given(base, parts, shown, untrusted=True))
