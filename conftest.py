"""Collection rules for the whole repository (the doctests of src/actlab run with the suite)."""

from __future__ import annotations

import importlib.util

# actlab.explore.server needs the optional extra actlab[explore]; without it, skip its doctests
# instead of failing the collection (its tests skip themselves with pytest.importorskip).
collect_ignore = [] if importlib.util.find_spec("starlette") else ["src/actlab/explore/server.py"]
