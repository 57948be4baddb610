"""Loading the user's own code: ``--model module:function`` for compare and diagnose."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from typing import Any

from actlab.errors import ActlabError, suggest


def load_function(ref: str, option: str = "--model") -> Callable[..., Any]:
    """Import ``module:function`` or ``path/to/file.py:function`` and return the function.

    A module name is looked up on ``sys.path`` and then in the current folder (the console script's
    ``sys.path`` lacks it, but users expect ``--model nets:make`` to find ``./nets.py``). Any
    failure, including an exception raised while the module runs, becomes an ActlabError naming
    ``option``.
    """
    where, _, name = ref.rpartition(":") if isinstance(ref, str) else ("", "", "")
    if not where or not name:
        raise ActlabError(
            f"{option} must look like module:function or path/to/file.py:function, got {ref!r}"
        )
    try:
        if where.endswith(".py") or os.sep in where:
            path = os.path.abspath(os.path.expanduser(where))
            if not os.path.isfile(path):
                raise ActlabError(f"{option}: the file '{where}' does not exist")
            loader = importlib.util.spec_from_file_location(
                f"actlab_user_{os.path.basename(path)[:-3]}", path
            )
            if loader is None or loader.loader is None:
                raise ActlabError(f"{option}: cannot load '{where}' as a Python module")
            module = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(module)
        else:
            try:
                module = importlib.import_module(where)
            except ModuleNotFoundError as err:
                cwd = os.getcwd()
                if err.name != where.split(".")[0] or cwd in sys.path:
                    raise
                sys.path.insert(0, cwd)
                try:
                    module = importlib.import_module(where)
                finally:
                    sys.path.remove(cwd)
    except ActlabError:
        raise
    except Exception as err:
        raise ActlabError(
            f"{option}: cannot import '{where}' ({type(err).__name__}: {err}); give a module on "
            f"PYTHONPATH or in the current folder, or a .py path, e.g. {option} nets.py:make_net"
        ) from None
    fn = getattr(module, name, None)
    if not callable(fn):
        public = [n for n in dir(module) if not n.startswith("_")]
        raise ActlabError(
            f"{option}: '{where}' has no function '{name}'"
            + suggest(name, public)
            + "; it must define function(activation_spec: str) -> torch.nn.Module"
        )
    return fn
