"""Datasets for comparisons: scikit-learn's bundled sets, TensorFlow-Playground-style 2-D sets
(two-class and multiclass), CSV files.

Nothing is downloaded. ``load`` / ``load_csv`` give a :class:`Dataset` (raw features); ``split``
turns it into a :class:`Split` (stratified for classification, standardised with training statistics
only) that every model of a comparison shares. The face of four modules: ``base`` (the types),
``builtin`` (named sets), ``csvfile`` (the CSV reader), ``splitting`` (the split).
"""

from __future__ import annotations

from actlab.data.base import TASKS, Dataset, Split, available_memory
from actlab.data.builtin import (
    DATASETS,
    DEFAULT_NOISE,
    SYNTHETIC,
    SYNTHETIC_ROWS,
    _canonical_name,
    _check_noise,
    _synthetic,
    load,
)
from actlab.data.csvfile import (
    MAX_INTEGER_CLASSES,
    MISSING,
    _Column,
    _dictionary,
    _plain_columns,
    _read_columns,
    _target,
    _text_column,
    load_csv,
    notes,
)
from actlab.data.splitting import SPLIT_VERSION, split

__all__ = [
    "DATASETS",
    "DEFAULT_NOISE",
    "MAX_INTEGER_CLASSES",
    "MISSING",
    "SPLIT_VERSION",
    "SYNTHETIC",
    "SYNTHETIC_ROWS",
    "TASKS",
    "Dataset",
    "Split",
    "available_memory",
    "load",
    "load_csv",
    "notes",
    "split",
]
# the private names other modules of actlab use (dataforms reads CSV-like tables with the same
# column machinery; compare's config checks names and noise) stay reachable from the face
_PRIVATE = (_Column, _canonical_name, _check_noise, _dictionary, _plain_columns, _read_columns,
            _synthetic, _target, _text_column)  # fmt: skip
