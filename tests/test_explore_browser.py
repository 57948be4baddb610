"""actlab explore in a real browser: headless Debian Chromium driven by Selenium.

Loads the page, moves a parameter slider and sees the curve change (to the kernel's values),
trains on moons and sees the loss fall, and checks the console stayed free of errors. Skips when
Chromium, chromedriver or Selenium are not installed (CI installs them: see .ci/run).
"""

from __future__ import annotations

import time

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("plotly")
selenium = pytest.importorskip("selenium")

from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from _browser import js, needs_chromium, new_browser  # noqa: E402
from _explore_server import LiveServer  # noqa: E402

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def browser():
    driver = new_browser()
    driver.set_script_timeout(20)
    yield driver
    driver.quit()


def test_page_slider_training_and_clean_console(browser, tmp_path):
    (tmp_path / "runs").mkdir()
    with LiveServer(tmp_path / "runs") as server:
        browser.get(server.url + "/")
        wait = WebDriverWait(browser, 20, poll_frequency=0.1)

        # Functions: three curves from the server; the Leaky ReLU slider redraws f
        wait.until(lambda d: js(d, "(window.explore.lastCurves || []).length") == 3)
        assert js(browser, "window.explore.lastCurves.map(c => c.spec)") == [
            "sigmoid",
            "relu",
            "leaky_relu",  # at its default slope, PyTorch's 0.01 (issue 20)
        ]
        assert js(browser, "document.querySelectorAll('#plot-f .scatterlayer .trace').length") >= 3
        before = js(browser, "window.explore.lastCurves[2].f.y[0]")  # f(-5)
        assert before == pytest.approx(-0.05)
        slider = browser.find_element("id", "param-leaky_relu-negative_slope")
        for _ in range(10):
            slider.send_keys(Keys.ARROW_RIGHT)  # a real input event, as a user's keyboard makes
        wait.until(lambda d: js(d, "window.explore.lastCurves[2].f.y[0]") != before)
        slope = float(slider.get_attribute("value"))
        assert slope > 0.01
        wait.until(lambda d: abs(js(d, "window.explore.lastCurves[2].f.y[0]") + 5 * slope) < 1e-4)
        assert "negative_slope" in js(browser, "window.explore.lastCurves[2].spec")

        # Softmax panel: the article's logits, a temperature slider
        wait.until(lambda d: js(d, "window.explore.lastSoftmax") is not None)
        p_max = js(browser, "Math.max(...window.explore.lastSoftmax.probabilities)")
        assert p_max == pytest.approx(0.474833, abs=1e-5)

        # Playground: moons, play, the loss falls
        browser.find_element("id", "tab-playground").click()
        wait.until(lambda d: js(d, "window.explore.pg.frame && window.explore.pg.frame.epoch") == 0)
        assert js(browser, "document.getElementById('pg-dataset').value") == "moons"
        start_loss = js(browser, "window.explore.pg.frame.train_loss")
        browser.find_element("id", "pg-play").click()
        WebDriverWait(browser, 30, poll_frequency=0.2).until(
            lambda d: (
                (js(d, "window.explore.pg.history.length") or 0) >= 5
                and js(d, "Math.min(...window.explore.pg.history.map(h => h.train))")
                < 0.5 * start_loss
            )
        )
        heatmap = "document.querySelectorAll('#plot-surface .hm, #plot-surface image').length"
        assert js(browser, heatmap) >= 1
        assert "epoch" in browser.find_element("id", "pg-status").text
        browser.find_element("id", "pg-play").click()  # pause
        session = js(browser, "window.explore.pg.id")
        wait.until(lambda d: not server.hub.entries[session].playing)

        # Runs: the empty folder says how to make a run
        browser.find_element("id", "tab-runs").click()
        wait.until(lambda d: "actlab compare" in d.find_element("id", "runs-empty").text)

        # Closing the page ends its training session on the server
        browser.get("about:blank")
        deadline = time.monotonic() + 10
        while session in server.hub.entries and time.monotonic() < deadline:
            time.sleep(0.05)
        assert session not in server.hub.entries

        errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert errors == [], errors


GRUMPY = '''
import torch

def grumpy(x):
    """fails on a training batch (16 rows), after the first frame worked"""
    if x.dim() == 2 and x.shape[0] == 16:
        raise ValueError("grumpy does not like batches of 16")
    return torch.relu(x)
'''


def test_a_failing_layer_is_shown_on_the_page(browser, tmp_path):
    """A start-up activation that fails while training: the page shows the stream's one-line
    reason (issue 18, item 7). Saves a screenshot to tmp_path/failing-layer.png."""
    from selenium.webdriver.support.ui import Select

    (tmp_path / "runs").mkdir()
    (tmp_path / "acts.py").write_text(GRUMPY)
    with LiveServer(tmp_path / "runs", activations=f"{tmp_path / 'acts.py'}:grumpy") as server:
        browser.get(server.url + "/")
        wait = WebDriverWait(browser, 30, poll_frequency=0.1)
        browser.find_element("id", "tab-playground").click()
        wait.until(lambda d: js(d, "window.explore.pg.frame && window.explore.pg.frame.epoch") == 0)
        Select(browser.find_element("id", "pg-act-0")).select_by_value("grumpy")
        wait.until(lambda d: js(d, "window.explore.pg.layers[0].name") == "grumpy")
        wait.until(lambda d: js(d, "window.explore.pg.id") is not None)
        browser.find_element("id", "pg-play").click()
        wait.until(lambda d: "grumpy does not like" in d.find_element("id", "pg-error").text)
        text = browser.find_element("id", "pg-error").text
        assert "a frame of the Playground with layers grumpy" in text and "\n" not in text
        assert js(browser, "window.explore.pg.id") is None  # the stream and session are closed
        browser.save_screenshot(str(tmp_path / "failing-layer.png"))
        errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert errors == [], errors


# the last answers are those of the final settings (requests may still be in flight under load)
CURVES_SETTLED = (
    "window.explore.lastCurves && !window.explore.curvesBusy && !window.explore.curvesDirty"
    " && window.explore.lastCurves.length === 3"
    " && window.explore.lastCurves[2].spec.startsWith('elu')"
    " && Math.abs(window.explore.lastCurves[2].f.y[0] - window.explore.params.elu.alpha"
    " * Math.expm1(window.explore.lastCurves[2].f.x[0])) < 1e-4"
)
SOFTMAX_SETTLED = (
    "window.explore.lastSoftmax && window.explore.lastSoftmax.logits.length === 3"
    " && Math.abs(window.explore.lastSoftmax.temperature - 10 ** 0.5) < 1e-4"
)
PAGE_STATE = """return {
  selected: window.explore.selected,
  params: Object.fromEntries(window.explore.selected.map(n => [n, window.explore.params[n]])),
  shade: window.explore.shade,
  x: [document.getElementById('xmin').value, document.getElementById('xmax').value],
  logits: document.getElementById('logits').value,
  t: document.getElementById('temperature').value,
  view: window.explore.view,
  layers: window.explore.pg.layers,
  controls: ['pg-dataset', 'pg-noise', 'pg-layers', 'pg-width', 'pg-lr', 'pg-optimizer', 'pg-batch']
    .map(id => document.getElementById(id).value),
};"""


def test_a_copied_url_restores_the_page_in_a_fresh_browser(browser, tmp_path):
    """Issue 23, item 1: every view's state in the URL; a fresh browser opening it shows the same
    curves, softmax and Playground (the server's session gets the same settings)."""
    from selenium.webdriver.support.ui import Select

    (tmp_path / "runs").mkdir()
    with LiveServer(tmp_path / "runs") as server:
        browser.get(server.url + "/")
        wait = WebDriverWait(browser, 20, poll_frequency=0.1)
        wait.until(lambda d: js(d, "(window.explore.lastCurves || []).length") == 3)
        # Functions: untick relu, tick elu and move its alpha, shade elu, a new window and logits
        browser.find_element("id", "pick-relu").click()
        browser.find_element("id", "pick-elu").click()
        wait.until(lambda d: js(d, "window.explore.selected.join()") == "sigmoid,leaky_relu,elu")
        for _ in range(7):
            browser.find_element("id", "param-elu-alpha").send_keys(Keys.ARROW_LEFT)
        browser.find_element("id", "shade-elu").click()
        browser.execute_script(
            "const x = document.getElementById('xmin'); x.value = -3;"
            "x.dispatchEvent(new Event('change'));"
            "const l = document.getElementById('logits'); l.value = '2 0.5 -1';"
            "l.dispatchEvent(new Event('input'));"
            "const t = document.getElementById('temperature'); t.value = 0.5;"
            "t.dispatchEvent(new Event('input'));"
        )
        wait.until(lambda d: js(d, SOFTMAX_SETTLED))
        # Playground: spirals, 3 layers, tanh in layer 2 with elu in layer 3, Adam, lr 0.1
        browser.find_element("id", "tab-playground").click()
        Select(browser.find_element("id", "pg-dataset")).select_by_value("spirals")
        browser.find_element("id", "pg-layers").send_keys(Keys.ARROW_RIGHT)
        wait.until(lambda d: js(d, "window.explore.pg.layers.length") == 3)
        Select(browser.find_element("id", "pg-act-1")).select_by_value("tanh")
        Select(browser.find_element("id", "pg-act-2")).select_by_value("leaky_relu")
        for _ in range(5):
            browser.find_element("id", "pg-param-2-negative_slope").send_keys(Keys.ARROW_RIGHT)
        Select(browser.find_element("id", "pg-optimizer")).select_by_value("adam")
        Select(browser.find_element("id", "pg-lr")).select_by_value("0.1")
        Select(browser.find_element("id", "pg-batch")).select_by_value("32")
        wait.until(lambda d: js(d, "window.explore.pg.id") is not None)
        wait.until(
            lambda d: (
                (pid := js(d, "window.explore.pg.id")) in server.hub.entries
                and server.hub.entries[pid].session.config.batch_size == 32
                and server.hub.entries[pid].session.config.lr == 0.1
            )
        )
        config = server.hub.entries[js(browser, "window.explore.pg.id")].session.config
        assert config.layers[1] == "tanh" and config.layers[2].startswith("leaky_relu:")
        wait.until(lambda d: js(d, CURVES_SETTLED))
        before = browser.execute_script(PAGE_STATE)
        # the "copy link" button: the page's URL, given to the user (clipboard or the text box)
        browser.find_element("id", "copy-link").click()
        wait.until(lambda d: js(d, "document.getElementById('copy-box').value"))
        url = js(browser, "document.getElementById('copy-box').value")
        assert url == browser.current_url
        assert "#" in url and "view=playground" in url and "layer=tanh" in url

        fresh = new_browser()
        try:
            fresh.get(url)
            wait2 = WebDriverWait(fresh, 30, poll_frequency=0.1)
            wait2.until(lambda d: js(d, "window.explore && window.explore.pg.id") is not None)
            wait2.until(lambda d: js(d, "(window.explore.lastCurves || []).length") == 3)
            wait2.until(lambda d: js(d, CURVES_SETTLED) and js(d, SOFTMAX_SETTLED))
            after = fresh.execute_script(PAGE_STATE)
            assert after == before
            assert [c["spec"] for c in js(fresh, "window.explore.lastCurves")] == [
                c["spec"] for c in js(browser, "window.explore.lastCurves")
            ]
            assert js(fresh, "window.explore.lastSoftmax.probabilities") == js(
                browser, "window.explore.lastSoftmax.probabilities"
            )
            assert js(fresh, "document.getElementById('view-playground').className").endswith(
                "active"
            )
            restored = server.hub.entries[js(fresh, "window.explore.pg.id")].session.config
            assert restored == config  # the same network, data and training settings
            errors = [e for e in fresh.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
            assert errors == [], errors
        finally:
            fresh.quit()


def test_export_buttons_give_the_script_and_command(browser, tmp_path):
    """Issue 23, item 4 on the page: "copy as PyTorch" and "copy as actlab command" put the
    server's text in the copy box. Saves a screenshot to tmp_path/export.png."""
    (tmp_path / "runs").mkdir()
    with LiveServer(tmp_path / "runs") as server:
        browser.get(server.url + "/#view=playground&data=circles&layer=elu:alpha=0.5&layer=tanh")
        wait = WebDriverWait(browser, 20, poll_frequency=0.1)
        wait.until(lambda d: js(d, "window.explore.pg.id") is not None)
        browser.find_element("id", "pg-export-py").click()
        wait.until(lambda d: "nn.Sequential(" in js(d, "document.getElementById('copy-box').value"))
        text = js(browser, "document.getElementById('copy-box').value")
        assert "make_circles" in text and "nn.ELU(alpha=0.5)" in text and "nn.Tanh()" in text
        browser.find_element("id", "pg-export-cmd").click()
        box = "document.getElementById('copy-box').value"
        wait.until(lambda d: js(d, box).startswith("actlab compare"))
        command = js(browser, box)
        assert "--dataset circles" in command and "--activations elu:alpha=0.5 tanh" in command
        browser.save_screenshot(str(tmp_path / "export.png"))
        errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert errors == [], errors


HOVERS = [  # chart, the point hovered, words its label must show
    ("plot-f", "[{curveNumber: 0, pointNumber: 100}]", "f′(x) ="),
    ("plot-df", "[{curveNumber: 1, pointNumber: 500}]", "f(x) ="),
    ("plot-softmax", "[{curveNumber: 0, pointNumber: 3}]", "p = 0.47"),
    ("plot-surface", "{xval: 0.1, yval: 0.1}", "P(class 1) ="),
    ("plot-loss", "{xval: 2}", "validation loss"),
    ("plot-health", "[{curveNumber: 0, pointNumber: 0}]", "dead"),
    ("plot-grad", "[{curveNumber: 0, pointNumber: 0}]", "‖∂loss/∂W‖ ="),
    ("plot-lr", "[{curveNumber: 0, pointNumber: 3}]", "epoch 4: lr 0.03"),
    ("plot-init-0", "[{curveNumber: 0, pointNumber: 20}]", "values"),
    ("plot-init-1", "[{curveNumber: 0, pointNumber: 20}]", "values"),
]  # plot-classes (digits only) is hovered in test_playground_extras_multiclass_live_dropout...


def test_every_chart_explains_itself_and_shows_values_on_hover(browser, tmp_path):
    """Issue 23, item 5 (its last part): a one-line caption under each chart, and hovering any
    chart shows the values under the pointer (plotly's hover, driven through Plotly.Fx.hover)."""
    (tmp_path / "runs").mkdir()
    with LiveServer(tmp_path / "runs") as server:
        browser.get(server.url + "/")
        wait = WebDriverWait(browser, 30, poll_frequency=0.1)
        wait.until(lambda d: js(d, "(window.explore.lastCurves || []).length") == 3)
        wait.until(lambda d: js(d, "window.explore.lastSoftmax") is not None)
        browser.find_element("id", "tab-playground").click()
        wait.until(lambda d: js(d, "window.explore.pg.id") is not None)
        browser.find_element("id", "pg-play").click()
        wait.until(lambda d: js(d, "window.explore.pg.history.length") >= 4)
        browser.find_element("id", "pg-play").click()
        plots = js(  # the Twins view's charts: tests/test_explore_twins.py
            browser,
            "[...document.querySelectorAll('.view:not(#view-twins) .plot')].map(p => p.id)",
        )
        assert sorted(plots) == sorted([chart for chart, _, _ in HOVERS] + ["plot-classes"])
        for chart, point, words in HOVERS:
            caption = js(browser, f"document.getElementById('{chart}').closest('figure')"
                                  ".querySelector('figcaption')")
            assert caption.tag_name == "figcaption"
            assert len(caption.get_attribute("textContent")) > 40
            view = "functions" if chart in ("plot-f", "plot-df", "plot-softmax") else "playground"
            browser.find_element("id", f"tab-{view}").click()
            label = (
                f"Plotly.Fx.hover('{chart}', {point}), "
                f"document.querySelector('#{chart} .hoverlayer').textContent"
            )
            wait.until(lambda d, label=label, words=words: words in js(d, label))
        errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert errors == [], errors


def test_a_link_reopens_the_report_it_names(browser, tmp_path):
    """The Runs view's state (the report shown) is in the URL too."""
    for name in ("r1", "r2"):
        (tmp_path / "runs" / name).mkdir(parents=True)
        (tmp_path / "runs" / name / "report.html").write_text(f"<h1>report {name}</h1>")
    with LiveServer(tmp_path / "runs") as server:
        browser.get(server.url + "/#view=runs&run=r2")
        wait = WebDriverWait(browser, 20, poll_frequency=0.1)
        frame = "document.getElementById('run-report').getAttribute('src')"
        wait.until(lambda d: js(d, frame) == "/runs/r2/report.html")
        browser.find_element("link text", "show").click()  # r1's row comes first
        wait.until(lambda d: js(d, frame) == "/runs/r1/report.html")
        wait.until(lambda d: "run=r1" in d.current_url and "view=runs" in d.current_url)
        errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert errors == [], errors


def test_playground_extras_multiclass_live_dropout_and_digits(browser, tmp_path):
    """Issue 23, item 5 on the page: a link with the new settings restores them; spirals3 draws
    the predicted class; the dropout slider changes the running session (same session, no reset);
    digits hides the surface and says why; each layer's init histogram is drawn."""
    from selenium.webdriver.support.ui import Select

    (tmp_path / "runs").mkdir()
    with LiveServer(tmp_path / "runs") as server:
        state = ("view=playground&data=spirals3&noise=0.1&layer=relu&layer=tanh&width=12&lr=0.03"
                 "&opt=adam&batch=32&init=lecun&sched=step&sched_n=7&sched_g=0.3&wd=0.01&drop=0")
        browser.get(f"{server.url}/#{state}")
        wait = WebDriverWait(browser, 30, poll_frequency=0.1)
        wait.until(lambda d: js(d, "window.explore.pg.frame && window.explore.pg.data") is not None)
        values = js(browser, "['pg-init', 'pg-schedule', 'pg-schedule-epochs', 'pg-schedule-gamma',"
                             " 'pg-weight-decay'].map(id => document.getElementById(id).value)")
        assert values == ["lecun", "step", "7", "0.3", "0.01"]
        sid = js(browser, "window.explore.pg.id")
        config = server.hub.entries[sid].session.config
        assert (config.dataset, config.init, config.schedule, config.schedule_epochs) == (
            "spirals3", "lecun", "step", 7)
        wait.until(lambda d: "predicted class" in d.find_element("id", "plot-surface").text)
        assert js(browser, "document.querySelectorAll('#pg-init-plots .plot').length") == 2

        browser.find_element("id", "pg-play").click()
        wait.until(lambda d: (js(d, "window.explore.pg.frame.epoch") or 0) >= 2)
        slider = browser.find_element("id", "pg-dropout")
        for _ in range(4):
            slider.send_keys(Keys.ARROW_RIGHT)  # 4 steps of 0.05
        wait.until(lambda d: js(d, "window.explore.pg.frame.dropout") == 0.2)
        assert js(browser, "window.explore.pg.id") == sid  # the same session: no reset
        assert js(browser, "window.explore.pg.frame.epoch") >= 2
        assert "drop=0.2" in browser.current_url and "sched=step" in browser.current_url
        browser.find_element("id", "pg-play").click()  # pause

        Select(browser.find_element("id", "pg-dataset")).select_by_value("digits")
        features = "window.explore.pg.data && window.explore.pg.data.features"
        wait.until(lambda d: js(d, features) == 64)
        wait.until(lambda d: d.find_element("id", "pg-class-figure").is_displayed())
        assert not browser.find_element("id", "plot-surface").is_displayed()
        assert "No decision surface" in browser.find_element("id", "pg-surface-note").text
        assert browser.find_element("id", "pg-noise").get_attribute("disabled") is not None
        wait.until(lambda d: "accuracy per class" in d.find_element("id", "plot-classes").text)
        caption = js(browser, "document.getElementById('plot-classes').nextElementSibling")
        assert caption.tag_name == "figcaption" and "no decision surface" in caption.text
        hover = ("Plotly.Fx.hover('plot-classes', [{curveNumber: 0, pointNumber: 3}]), "
                 "document.querySelector('#plot-classes .hoverlayer').textContent")
        wait.until(lambda d: "class 3:" in js(d, hover) and "% right" in js(d, hover))

        browser.find_element("id", "preset-relu").click()  # the article's claim: defaults again
        name = "window.explore.pg.id && window.explore.pg.data && window.explore.pg.data.name"
        wait.until(lambda d: js(d, name) == "spirals")
        config = server.hub.entries[js(browser, "window.explore.pg.id")].session.config
        assert (config.dropout, config.schedule, config.init) == (0.0, "constant", "auto")
        errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert errors == [], errors
