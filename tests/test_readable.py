"""Issue 20, what a person reads: reports, reprs and console answers that read right."""

from __future__ import annotations

import pytest

from actlab.cli import main


def test_markdown_keeps_less_than_readable_and_still_blocks_tags():
    from actlab.compare.report import _md_cell

    assert _md_cell("< 0.001") == "< 0.001"  # was '&lt; 0.001' in report.md
    assert _md_cell("a<b") == "a&lt;b"
    assert "<script" not in _md_cell("<script>alert(1)</script>")
    assert "<!--" not in _md_cell("<!-- x -->") and _md_cell("x | y") == "x \\| y"


def test_results_and_monitor_reports_have_short_reprs(tmp_path):
    import torch

    from actlab import compare, diagnose

    res = compare.run("iris", out=tmp_path / "r", activations=["relu", "tanh"], seeds=2, epochs=2,
                      report=False)  # fmt: skip
    text = repr(res)
    assert len(text) < 400 and "iris" in text and ".table" in text and "4 models" in text
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    with diagnose.Monitor(net) as mon:
        for _ in range(3):
            net(torch.randn(16, 4)).sum().backward()
    text = repr(mon.report())
    assert len(text) < 400 and ".table()" in text and "1 activation and 2 weight layers" in text


def test_recommend_gives_each_reason_once(capsys):
    from actlab import advice

    assert main(["recommend", "--task", "hidden", "--depth", "20"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # the console wraps lines
    rec = advice.recommend(task="hidden", depth=20)
    for c in rec.candidates:
        first = c.reason.split(". ")[0]
        assert out.count(" ".join(first.split()[:6])) == 1, c.label


def test_eval_derivative_shows_f_beside_f_prime(capsys):
    assert main(["eval", "relu", "-2", "3", "--derivative"]) == 0
    out = capsys.readouterr().out
    assert "relu(x)" in out and "relu'(x)" in out
    row = next(line for line in out.splitlines() if " 3 " in line)
    assert [c for c in row.replace("│", " ").split()] == ["3", "3", "1"]


