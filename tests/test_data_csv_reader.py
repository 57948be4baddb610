"""The pyarrow CSV path against the plain csv-module reader it replaced (issue 14.2, 13.8, 13.12).

The plain reader (``data._plain_columns``) is kept as the reference: every hostile file below must
give the same Dataset, or the same message, through both.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from actlab import data
from actlab.data import csvfile
from actlab.errors import ActlabError

pytest.importorskip("pyarrow")


def _rows(n: int, fmt: str) -> str:
    return "".join(fmt.format(i=i, m=i % 3, k=i % 2) for i in range(n))


HOSTILE: dict[str, bytes] = {
    "bom": ("\ufeffa,b,y\n" + _rows(12, "{i},{m},{k}\n")).encode(),
    "semicolon": ("a;b;y\n" + _rows(12, "{i};{m}.5;{k}\n")).encode(),
    "tab": ("a\tb\ty\n" + _rows(12, "{i}\tx{m}\t{k}\n")).encode(),
    "quotes": ('a,b,y\n' + _rows(12, '"{i},5",{m},"c{k}"\n')).encode(),
    "quoted_newline": ('a,b,y\n"line\nbreak",1,0\n' + _rows(12, "v{m},{i},{k}\n")).encode(),
    "padded": ("a , b ,y\n" + _rows(12, " {i} ,  t{m} , {k} \n")).encode(),
    "na_spellings": ("a,b,y\n" + _rows(12, "{i},{m},{k}\n") + "NA,1,0\n2, n/a ,1\n3,4,NULL\n"
                     "?,-,1\n").encode(),
    "na_everywhere": ("a,b,y\n" + _rows(12, "{i},NaN,{k}\n")).encode(),
    "blank_lines": (b"a,b,y\n\n1,2,0\n   \n,,\n3,4,1\n \t \n5,6,0\n7,8,1\n"),
    "id_column": ("name,a,y\n" + _rows(300, "id{i},{m},{k}\n")).encode(),
    "fifty_classes": ("a,y\n" + _rows(200, "{i},c{i}\n").replace("c1", "c0")).encode(),
    "int_labels_1_vs_1.0": ("a,y\n" + _rows(12, "{i},{k}\n") + "13,1.0\n").encode(),
    "many_ints_regression": ("a,y\n" + _rows(40, "{i},{i}\n")).encode(),
    "fractions": ("a,y\n" + _rows(40, "{i},{i}.25\n")).encode(),
    "bools_dates": ("flag,day,y\n" + _rows(12, "true,2020-01-0{m},{k}\nFalse,2021-02-03,{k}\n")
                    ).encode(),
    "huge_int": ("a,y\n" + _rows(12, "1234567890123456789012{i},{k}\n")).encode(),
    "inf": (b"a,y\n1,0\ninf,1\n2,0\n"),
    "underscore_number": ("a,y\n" + _rows(12, "1_00{i},{k}\n")).encode(),
    "constant_target": ("a,y\n" + _rows(12, "{i},5\n")).encode(),
    "one_row": b"a,y\n1,0\n",
    "empty": b"",
    "spaces_only": b"   \n\n",
    "header_only": b"a,b,y\n",
    "short_row": b"a,b,y\n1,2,0\n1,2\n",
    "duplicate": b"a,a,y\n1,2,3\n",
    "empty_name": b"a,,y\n1,2,3\n4,5,6\n",
    "latin1": "a,b,y\n1,caf\u00e9,0\n2,th\u00e9,1\n".encode("latin-1"),
    "latin1_header": "\u00e9,y\n1,0\n2,1\n".encode("latin-1"),
    "no_features": b"y\n1\n2\n",
    "crlf": ("a,b,y\r\n" + _rows(12, "{i},t{m},{k}\r\n")).encode(),
    "decimal_comma": ("a;b;y\n" + _rows(12, "{i},5;{m};{k}\n")).encode(),
    "padded_header": (" a , b , y \n" + _rows(12, "{i},{m},{k}\n")).encode(),
}
# Text that appears only after the reader's first block (1 MiB): its type guess must be revised.
HOSTILE["late_text"] = ("a,b,y\n" + _rows(60_000, "{i},{m},{k}\n") + "7,oops,1\n").encode()
HOSTILE["late_latin1"] = ("a,b,y\n" + _rows(60_000, "{i},t{m},{k}\n")).encode() + b"7,caf\xe9,1\n"
HOSTILE["late_missing"] = ("a,b,y\n" + _rows(60_000, "{i},{m},{k}\n") + "7,,1\n8, NA ,0\n").encode()


def _load(path: Path, target: str, **kw: object) -> object:
    try:
        ds = data.load_csv(path, target, **kw)  # type: ignore[arg-type]
    except ActlabError as exc:
        return ("error", str(exc))
    return (ds.X.tolist(), ds.y.tolist(), ds.task, ds.feature_names, ds.class_names,
            ds.task_note, ds.dropped_rows, ds.X.dtype, ds.y.dtype)


@pytest.mark.parametrize("drop", [False, True], ids=["strict", "drop-missing"])
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_fast_reader_matches_plain_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, drop: bool
) -> None:
    path = tmp_path / f"{name}.csv"
    path.write_bytes(HOSTILE[name])
    fast = _load(path, "y", drop_missing=drop)
    with monkeypatch.context() as m:
        m.setattr(csvfile, "_read_columns", csvfile._plain_columns)
        plain = _load(path, "y", drop_missing=drop)
    assert fast == plain


def test_the_comparison_is_not_vacuous(tmp_path: Path) -> None:
    """The hostile set loads real data as well as refusing bad files."""
    loaded = 0
    for name, raw in HOSTILE.items():
        path = tmp_path / f"{name}.csv"
        path.write_bytes(raw)
        loaded += _load(path, "y")[0] != "error"
    assert 12 <= loaded < len(HOSTILE)


def test_every_column_with_missing_values_in_one_message(tmp_path: Path) -> None:
    p = tmp_path / "penguins.csv"
    p.write_text(
        "island,bill,flipper,sex,species\n"
        "Biscoe,39.1,181,male,Adelie\nDream,NA,186,female,Adelie\nTorgersen,40.3,,NA,Gentoo\n"
        "Biscoe,41.1,190,female,Gentoo\nDream,38.6,180,male,Adelie\nBiscoe,42.0,195,male,Gentoo\n"
    )
    with pytest.raises(ActlabError) as info:
        data.load_csv(p, "species")
    message = str(info.value)
    assert "3 columns have missing values" in message
    # issue 20: row numbers say that they are file lines
    for part in ("column 'bill' has 1 missing value(s) (file line 3)",
                 "column 'flipper' has 1 missing value(s) (file line 4)",
                 "column 'sex' has 1 missing value(s) (file line 4)",
                 "the 2 incomplete row(s) with --drop-missing"):
        assert part in message
    ds = data.load_csv(p, "species", drop_missing=True)
    assert ds.dropped_rows == 2 and len(ds.y) == 4
    assert ds.feature_names == ("island=Biscoe", "island=Dream", "bill", "flipper",
                                "sex=female", "sex=male")


def test_drop_missing_that_leaves_nothing(tmp_path: Path) -> None:
    p = tmp_path / "d.csv"
    p.write_text("a,b,y\n1,,0\n,2,1\n")
    with pytest.raises(ActlabError, match=r"every row of .* has a missing value"):
        data.load_csv(p, "y", drop_missing=True)


def test_task_note_says_which_rule_and_how_to_override(tmp_path: Path) -> None:
    many = tmp_path / "m.csv"
    many.write_text("a,y\n" + "".join(f"{i},{i}\n" for i in range(30)))
    ds = data.load_csv(many, "y")
    assert ds.task == "regression"
    assert "30 distinct whole numbers" in ds.task_note and "--task classification" in ds.task_note
    few = tmp_path / "f.csv"
    few.write_text("a,y\n" + "".join(f"{i},{i % 4}\n" for i in range(30)))
    assert "--task regression" in data.load_csv(few, "y").task_note
    assert data.load_csv(few, "y", task="classification").task_note == ""


def test_large_file_values_exact(tmp_path: Path) -> None:
    """Several reader blocks: every value arrives, in order, as float() would read it."""
    rng = np.random.default_rng(1)
    values = rng.standard_normal((30_000, 4)) * 1e3
    text = "a,b,c,d,y\n" + "".join(
        f"{float(r[0])!r},{r[1]:.17g},{r[2]:.3f},{int(r[3])},{i % 3}\n"
        for i, r in enumerate(values)
    )
    p = tmp_path / "big.csv"
    p.write_text(text)
    ds = data.load_csv(p, "y")
    expect = [[float(x) for x in line.split(",")[:4]] for line in text.splitlines()[1:]]
    np.testing.assert_array_equal(ds.X, np.array(expect))
    np.testing.assert_array_equal(ds.y, np.arange(30_000) % 3)


def _gappy(tmp_path: Path) -> Path:
    p = tmp_path / "gappy.csv"
    rows = "".join(f"{i % 7},{'NA' if i % 10 == 0 else i * 0.5},{i % 30}\n" for i in range(90))
    p.write_text("a,b,y\n" + rows)
    return p


def test_compare_cli_drop_missing_and_inferred_task(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from actlab.cli import main

    csv_path, out = _gappy(tmp_path), tmp_path / "run"
    base = ["compare", "--csv", str(csv_path), "--target", "y", "--activations", "relu",
            "--seeds", "1", "--epochs", "1", "--width", "8", "--out", str(out)]
    assert main(base) == 2
    err = capsys.readouterr().err
    assert "column 'b' has 9 missing value(s)" in err and "--drop-missing" in err
    assert not out.exists()  # refused before anything was created
    assert main([*base, "--drop-missing"]) == 0
    shown = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    assert "9 row(s) with missing values left out (--drop-missing)" in shown
    assert "task inferred from target 'y': regression" in shown
    assert "--task classification to override" in shown
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "9 row(s) with missing values left out" in report and "--drop-missing" in report
    assert main(["compare", "--out", str(out), "--resume"]) == 0  # the stored switch is kept
    assert main(["compare", "--dataset", "iris", "--drop-missing", "--out",
                 str(tmp_path / "x")]) == 2
    assert "--drop-missing applies to --csv data" in capsys.readouterr().err

