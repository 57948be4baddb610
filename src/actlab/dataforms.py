"""Your data in any form, turned into one :class:`actlab.data.Dataset` at the boundary.

Forms (Python, ``compare.run(data=...)``):

* ``(X, y)``: NumPy arrays, torch tensors, lists; ``X`` may be a DataFrame too. ``X`` keeps its
  shape (``N x C x H x W`` images stay images for a ``--model`` network or ``--objective``; the
  built-in MLP gets them flattened);
* a pandas or Polars DataFrame, a PyArrow ``Table`` or a dict of columns, with ``target="col"``;
* a map-style ``torch.utils.data.Dataset`` of ``(x, y)`` pairs (read once, item by item).

Files (CLI ``--data FILE``; Python ``data="FILE"``): ``.csv`` (actlab's CSV reader,
:func:`actlab.data.load_csv`), ``.parquet``, ``.feather`` / ``.arrow`` (PyArrow), ``.npz`` (arrays
``X`` and ``y``) and a ``.npy`` pair given as ``X.npy,y.npy``.

Tables follow the CSV reader's rules, so a table gives the same dataset as the same table written to
a CSV file: numeric columns as they are, text (and categorical, boolean) columns one-hot encoded as
``column=value`` in sorted order, the task inferred from the target by the same rule (text or at
most 20 distinct whole numbers: classification), missing values an error naming the columns
(``drop_missing`` drops those rows). The split that follows (:func:`actlab.data.split`) hashes the
arrays' contents into the fingerprint that ``--resume`` checks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from actlab import data as _data
from actlab.errors import ActlabError, suggest

__all__ = ["FILE_SUFFIXES", "describe", "flatten", "load", "load_file"]

FILE_SUFFIXES = (".csv", ".parquet", ".feather", ".arrow", ".npz", ".npy")
_TABLE_HELP = (
    "give (X, y) arrays, a pandas/Polars DataFrame or PyArrow Table with target='column', or a "
    "map-style torch Dataset of (x, y) pairs"
)


def describe(obj: Any) -> str:
    """What ``obj`` is, for the stored configuration: ``python:pandas.DataFrame[150x5]``."""
    if isinstance(obj, (str, Path)):
        return str(obj)
    if isinstance(obj, tuple) and len(obj) == 2:
        shapes = "x".join(str(s) for s in _shape(obj[0]))
        return f"python:({_kind(obj[0])}[{shapes}], {_kind(obj[1])})"
    shape = "x".join(str(s) for s in _shape(obj))
    return f"python:{_kind(obj)}" + (f"[{shape}]" if shape else "")


def _kind(obj: Any) -> str:
    cls = type(obj)
    module = cls.__module__.split(".")[0]
    return f"{module}.{cls.__name__}" if module != "builtins" else cls.__name__


def _shape(obj: Any) -> tuple[int, ...]:
    shape = getattr(obj, "shape", None)
    if shape is not None:
        return tuple(int(s) for s in shape)
    if hasattr(obj, "num_rows"):  # pyarrow
        return (int(obj.num_rows), int(obj.num_columns))
    if hasattr(obj, "__len__") and not isinstance(obj, Mapping):
        return (len(obj),)
    return ()


# ------------------------------------------------------------------------------------------ arrays


def _array(obj: Any, what: str) -> np.ndarray:
    """A NumPy view/copy of an array-like (torch tensors through ``.numpy()`` on the CPU)."""
    if hasattr(obj, "detach") and hasattr(obj, "cpu"):  # a torch tensor
        obj = obj.detach().cpu().numpy()
    elif hasattr(obj, "to_numpy") and not isinstance(obj, np.ndarray):  # pandas/polars/arrow
        obj = obj.to_numpy()
    try:
        arr = np.asarray(obj)
    except (TypeError, ValueError) as err:
        raise ActlabError(f"{what} cannot be read as an array ({err}); {_TABLE_HELP}") from None
    return arr


def _features(X: Any) -> tuple[np.ndarray, tuple[str, ...]]:
    """``X`` as float64 of any rank >= 2 (rows first) and its feature names."""
    if _is_table(X):
        table = _to_arrow(X)
        names, columns = _columns(table, target=None)
        return _one_hot(names, columns, len(table))
    arr = _array(X, "X")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim < 2 or arr.dtype.kind not in "biuf":
        raise ActlabError(
            f"X must be numbers with one row per sample (2-D, or N x C x H x W images), got "
            f"{arr.dtype} of shape {arr.shape}"
        )
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        rows = np.flatnonzero(~np.isfinite(arr.reshape(len(arr), -1)).all(1))
        raise ActlabError(
            f"X has NaN or inf in {len(rows)} row(s) (first: {rows[:5].tolist()}); actlab does not "
            "guess values: fill them in or drop those rows"
        )
    if arr.ndim == 2:
        names = tuple(f"x{i}" for i in range(arr.shape[1]))
    else:
        names = (f"input {tuple(arr.shape[1:])}",)
    return arr, names


def _target(y: Any, name: str, task: str | None, n: int) -> tuple[np.ndarray, str, tuple, str]:
    """Class ids or values, task, class names and why that task: the CSV reader's rule."""
    import pyarrow as pa

    arr = _array(y, "y")
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1 or len(arr) != n:
        raise ActlabError(f"y must hold one value per row of X ({n}), got shape {arr.shape}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ActlabError(f"target '{name}' has NaN or inf; fill them in or drop those rows")
    text = pa.array([_spell(v) for v in arr.tolist()], type=pa.string())
    levels, codes = _data._dictionary(pa.chunked_array([text]))
    col = _data._text_column(levels, codes, keep_text=True)
    return _data._target(col, name, task)


def _spell(v: Any) -> str:
    """A target value as the CSV file would spell it (1.0 and 1 are one class either way)."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


# ------------------------------------------------------------------------------------------ tables


def _is_table(obj: Any) -> bool:
    module = type(obj).__module__.split(".")[0]
    return isinstance(obj, Mapping) or (
        module in ("pandas", "polars", "pyarrow") and hasattr(obj, "columns")
    )


def _to_arrow(obj: Any) -> Any:
    """A pandas / Polars DataFrame, a PyArrow Table or a dict of columns as a PyArrow Table."""
    import pyarrow as pa

    module = type(obj).__module__.split(".")[0]
    try:
        if isinstance(obj, pa.Table):
            return obj
        if isinstance(obj, pa.RecordBatch):
            return pa.Table.from_batches([obj])
        if module == "polars":
            return obj.to_arrow()
        if module == "pandas":
            return pa.Table.from_pandas(obj, preserve_index=False)
        if isinstance(obj, Mapping):
            return pa.table({str(k): _array(v, f"column {k!r}").tolist() for k, v in obj.items()})
    except (pa.ArrowException, TypeError, ValueError) as err:
        raise ActlabError(f"cannot read the {_kind(obj)} as a table ({err})") from None
    raise ActlabError(f"data: a {_kind(obj)} is not a form actlab reads; {_TABLE_HELP}")


def _columns(table: Any, target: str | None) -> tuple[list[str], list[Any]]:
    """Column names and one ``data._Column`` each: numbers as float64, the rest as text."""
    import pyarrow as pa

    names, columns = [], []
    for name, chunked in zip(table.column_names, table.columns, strict=True):
        col = _data._Column()
        kind = chunked.type
        if pa.types.is_dictionary(kind):
            chunked = chunked.cast(kind.value_type)
            kind = chunked.type
        numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind)
        if numeric and name != target:
            values = np.asarray(chunked.to_numpy(zero_copy_only=False), dtype=np.float64)
            nulls = np.asarray(chunked.is_null().to_numpy(zero_copy_only=False), dtype=bool)
            nan = np.isnan(values)
            col.numbers = [values]
            if (nulls | nan).any():
                col.missing = nulls | nan
        else:
            if name == target and numeric:
                values = chunked.to_pylist()
                text = pa.array([None if v is None or v != v else _spell(v) for v in values],
                                type=pa.string())  # fmt: skip
            else:
                text = chunked.cast(pa.string())
            nulls = np.asarray(text.is_null().to_numpy(zero_copy_only=False), dtype=bool)
            text = text.fill_null("")
            chunks = text.chunks if hasattr(text, "chunks") else [text]
            levels, codes = _data._dictionary(pa.chunked_array(chunks, type=pa.string()))
            col = _data._text_column(levels, codes, keep_text=name == target)
            if nulls.any():
                col.missing = nulls if col.missing is None else (col.missing | nulls)
        names.append(str(name))
        columns.append(col)
    return names, columns


def _one_hot(names: list[str], columns: list[Any], n: int) -> tuple[np.ndarray, tuple[str, ...]]:
    """Feature matrix and names, the CSV reader's way (text: ``col=value``, sorted)."""
    blocks, out_names = [], []
    for h, c in zip(names, columns, strict=True):
        if c.numbers is not None:
            values = np.concatenate(c.numbers)
            if not np.isfinite(values).all():
                raise ActlabError(f"column '{h}' contains inf or NaN; replace them with numbers")
            blocks.append(values[:, None])
            out_names.append(h)
            continue
        width = len(c.levels)
        if width > 100 and width > n // 2:
            raise ActlabError(
                f"column '{h}' is text with {width} distinct values in {n} rows (an identifier?); "
                "one-hot encoding it would not generalise: drop the column"
            )
        order = sorted(range(width), key=c.levels.__getitem__)
        rank = np.empty(width, dtype=np.int64)
        rank[order] = np.arange(width)
        block = np.zeros((n, width))
        block[np.arange(n), rank[c.codes]] = 1.0
        blocks.append(block)
        out_names.extend(f"{h}={c.levels[i]}" for i in order)
    if not blocks:
        raise ActlabError("the data have no feature columns besides the target")
    return np.asfortranarray(np.concatenate(blocks, axis=1)), tuple(out_names)


def _from_table(table: Any, target: str | None, task: str | None, drop_missing: bool,
                name: str, source: str) -> _data.Dataset:  # fmt: skip
    if not target:
        raise ActlabError(
            f"a table needs target='column' (--target COLUMN): the column to predict; columns: "
            f"{', '.join(table.column_names)}"
        )
    header = [str(c) for c in table.column_names]
    if target not in header:
        raise ActlabError(
            f"target column '{target}' is not in the data{suggest(target, header)} "
            f"(columns: {', '.join(header)})"
        )
    if table.num_rows == 0:
        raise ActlabError("the data have no rows")
    names, columns = _columns(table, target)
    gaps = [h for h, c in zip(names, columns, strict=True) if c.missing is not None]
    dropped = 0
    if gaps:
        incomplete = np.logical_or.reduce([c.missing for c in columns if c.missing is not None])
        dropped = int(incomplete.sum())
        if not drop_missing:
            raise ActlabError(
                f"{len(gaps)} column(s) have missing values ({', '.join(repr(h) for h in gaps)}; "
                f"{dropped} row(s)); actlab does not guess values: fill them in, drop the column, "
                "or drop the incomplete rows with drop_missing=True (--drop-missing)"
            )
        if dropped == len(incomplete):
            raise ActlabError("every row has a missing value, so drop_missing leaves nothing")
        for c in columns:
            c.take(~incomplete)
    index = names.index(target)
    y_col = columns.pop(index)
    names.pop(index)
    y, y_task, classes, note = _data._target(y_col, target, task)
    X, features = _one_hot(names, columns, len(y))
    return _data.Dataset(X, y, y_task, features, classes, name, target, source,
                         task_note=note, dropped_rows=dropped)  # fmt: skip


# ------------------------------------------------------------------------------------------ entry


def load(obj: Any, *, target: str | None = None, task: str | None = None,
         drop_missing: bool = False, name: str = "data") -> _data.Dataset:  # fmt: skip
    """Any supported form (see the module docstring) as a :class:`actlab.data.Dataset`."""
    if isinstance(obj, (str, Path)):
        return load_file(obj, target=target, task=task, drop_missing=drop_missing)
    if isinstance(obj, tuple):
        if len(obj) != 2:
            raise ActlabError(f"data=(X, y) takes two items, got {len(obj)}; {_TABLE_HELP}")
        X, names = _features(obj[0])
        y, y_task, classes, note = _target(obj[1], target or "y", task, len(X))
        return _data.Dataset(X, y, y_task, names, classes, name, target or "y", "python",
                             task_note=note)  # fmt: skip
    if _is_table(obj):
        return _from_table(_to_arrow(obj), target, task, drop_missing, name, "python")
    if hasattr(obj, "__getitem__") and hasattr(obj, "__len__"):
        return load(_materialise(obj), target=target, task=task, name=name)
    raise ActlabError(f"data: a {_kind(obj)} is not a form actlab reads; {_TABLE_HELP}")


def _materialise(ds: Any) -> tuple[np.ndarray, np.ndarray]:
    """A map-style torch Dataset's ``(x, y)`` items stacked (x keeps its shape)."""
    n = len(ds)
    if n == 0:
        raise ActlabError("the torch Dataset is empty (len(dataset) == 0)")
    xs, ys = [], []
    for i in range(n):
        item = ds[i]
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise ActlabError(
                f"dataset[{i}] must be an (x, y) pair, got {type(item).__name__}; wrap the "
                "Dataset so that it returns (features, target)"
            )
        xs.append(_array(item[0], f"dataset[{i}][0]"))
        ys.append(_array(item[1], f"dataset[{i}][1]").reshape(-1)[0])
    shapes = {x.shape for x in xs}
    if len(shapes) > 1:
        raise ActlabError(f"the Dataset's x items differ in shape ({sorted(shapes)[:3]}); "
                          "resize them to one shape")  # fmt: skip
    return np.stack(xs), np.asarray(ys)


def load_file(path: str | Path, *, target: str | None = None, task: str | None = None,
              drop_missing: bool = False) -> _data.Dataset:  # fmt: skip
    """``--data FILE``: .csv, .parquet, .feather/.arrow, .npz (X, y) or ``X.npy,y.npy``."""
    text = str(path)
    if "," in text and text.endswith(".npy"):
        x_path, _, y_path = text.partition(",")
        X, y = (_npy(Path(p.strip())) for p in (x_path, y_path))
        ds = load((X, y), target=target, task=task, name=Path(x_path).stem)
        return dataclasses.replace(ds, source=text)
    p = Path(text).expanduser()
    suffix = p.suffix.lower()
    if suffix not in FILE_SUFFIXES or suffix == ".npy":
        raise ActlabError(
            f"--data '{p}': actlab reads {', '.join(FILE_SUFFIXES[:-1])} files and .npy pairs "
            "given as X.npy,y.npy; convert the file to one of these"
        )
    if not p.is_file():
        raise ActlabError(f"--data: the file '{p}' does not exist")
    if suffix == ".csv":
        if not target:
            raise ActlabError("a CSV file needs a target column: add --target COLUMN")
        return _data.load_csv(p, target, task=task, drop_missing=drop_missing)
    if suffix == ".npz":
        try:
            with np.load(p, allow_pickle=False) as z:
                missing = [k for k in ("X", "y") if k not in z.files]
                if missing:
                    raise ActlabError(
                        f"--data '{p}' has arrays {', '.join(z.files) or 'none'}; it needs X and y "
                        "(np.savez(path, X=features, y=targets))"
                    )
                X, y = z["X"], z["y"]
        except (OSError, ValueError) as err:
            raise ActlabError(f"--data '{p}' is not a readable .npz file ({err})") from None
        ds = load((X, y), target=target, task=task, name=p.stem)
        return dataclasses.replace(ds, source=str(p))
    table = _read_arrow(p, suffix)
    return _from_table(table, target, task, drop_missing, p.stem, str(p))


def _npy(p: Path) -> np.ndarray:
    p = p.expanduser()
    if not p.is_file():
        raise ActlabError(f"--data: the file '{p}' does not exist")
    try:
        return np.load(p, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ActlabError(f"--data '{p}' is not a readable .npy file ({err})") from None


def _read_arrow(p: Path, suffix: str) -> Any:
    import pyarrow as pa

    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(p)
        import pyarrow.feather as feather

        return feather.read_table(p)
    except (pa.ArrowException, OSError) as err:
        raise ActlabError(f"--data '{p}' is not a readable {suffix} file ({err})") from None


def flatten(ds: _data.Dataset) -> _data.Dataset:
    """The dataset with rows flattened to 2-D (the built-in MLP's input); same numbers."""
    if ds.X.ndim <= 2:
        return ds
    X = ds.X.reshape(len(ds.X), -1)
    return dataclasses.replace(ds, X=X, feature_names=tuple(f"x{i}" for i in range(X.shape[1])))
