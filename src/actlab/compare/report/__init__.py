"""Reports of a comparison: a terminal table (rich), ``report.md`` and a self-contained
``report.html``: shared rows (``rows``), ``console``, ``figures`` and ``documents``.

The HTML page needs no network: CSS is inline and the figures are PNGs embedded as base64, drawn
with matplotlib's object API (``Figure``; no pyplot state); its style and skeleton are the
gallery's (``actlab._html``). Every name that comes from user data (dataset, CSV column and class
names) is escaped: in HTML with ``actlab._html.esc``, in the terminal as plain ``Text``.
"""

from actlab.compare.report.console import WORD_WIDTH, _terminal_rows, terminal
from actlab.compare.report.documents import (
    _md_cell,
    html_page,
    markdown,
    reproduce_command,
    resume_command,
    write,
)
from actlab.compare.report.figures import (
    View,
    _band,
    _fit,
    fig_activations,
    fig_grad_norms,
    fig_heatmap,
    fig_learning_curves,
    fig_per_seed,
    fig_sensitivity,
    fig_unit_health,
)
from actlab.compare.report.rows import (
    BASELINE,
    BASELINE_NOTE,
    MAX_NAMES,
    chosen_rows,
    data_notes,
    effect_rows,
    fmt_p,
    json_key,
    next_steps_lines,
    summary_rows,
)
