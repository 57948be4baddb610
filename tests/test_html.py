"""actlab._html: the one style and skeleton of the gallery and the compare report."""

from __future__ import annotations

from html.parser import HTMLParser

from actlab import _html

EVIL = "<script>alert('x')</script>"


def test_page_is_one_self_contained_document() -> None:
    page = _html.page(EVIL, ["<p>body</p>"], lang="ru")
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>\n")
    assert '<html lang="ru">' in page and f"<style>{_html.CSS}</style>" in page
    assert EVIL not in page and "&lt;script&gt;" in page  # the title is escaped
    assert "<main>\n<p>body</p>\n</main>" in page
    assert "http" not in page  # nothing fetched: no font, script or stylesheet


def test_tables_escape_every_cell_and_mark_the_best() -> None:
    rows = [{"name": EVIL, "vs best": "best"}, {"name": "b", "vs best": "worse"}]
    html = _html.table(rows, best_key="vs best")
    assert EVIL not in html and html.count("<tr class='best'>") == 1
    assert "<th>vs best</th>" in html and _html.table([]) == "<p class='muted'>no rows</p>"
    fields = _html.fields([("formula", "<code>x</code>"), ("empty", ""), (EVIL, "1")])
    assert "empty" not in fields and "<td><code>x</code></td>" in fields  # values are HTML
    assert EVIL not in fields and fields.startswith("<table class='fields'>")
    assert _html.items([]) == "" and _html.items([EVIL]) == f"<ul><li>{_html.esc(EVIL)}</li></ul>"


def test_page_parses_with_balanced_tags() -> None:
    class Tags(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.open: list[str] = []

        def handle_starttag(self, tag: str, attrs: list) -> None:
            if tag not in ("meta", "img", "br"):
                self.open.append(tag)

        def handle_endtag(self, tag: str) -> None:
            assert self.open.pop() == tag

    parser = Tags()
    body = [_html.table([{"a": 1}]), _html.fields([("k", "v")]), _html.items(["i"])]
    parser.feed(_html.page("t", body))
    assert parser.open == []
