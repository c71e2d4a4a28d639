"""Chapter 05 (explore) in JupyterLab, in a real browser: Run All, then the clip viewer as a learner uses it.

A `jupyter lab` server starts on 127.0.0.1 with a random token; its config, data, runtime, settings and workspace
folders are temporary (nothing is written to the home folder), and it serves a temporary copy of `nbs/05_explore.ipynb`
(never the chapter itself). The chapter runs whole, as a learner's "Run All Cells" runs it: it has no `skip-execution`
cells, and it makes the small synthetic games it explores itself (its default parameters). Debian's headless `chromium`,
driven by Playwright, opens the notebook, runs JupyterLab's own `notebook:run-all-cells` command, and waits until every
code cell has an execution count. No cell may hold an error; the clip viewer's widget (slider, picture, event list) must
render, and dragging the slider's handle with the mouse must bring a new picture and the event list of the frame the
slider now shows, both computed by the kernel.
"""
import json, os, re, secrets, shutil, socket, subprocess, sys, time, urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAPTER = "05_explore"  # the chapter of the clip viewer (dudek.explore.ClipViewer)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None: pytest.skip("chromium not found: apt-get install chromium", allow_module_level=True)
playwright = pytest.importorskip("playwright.sync_api", reason="playwright not installed: pip install -e '.[dev]'")

START_S, OPEN_S, RUN_S, WIDGET_S = 90, 120, 300, 60  # server start, notebook open with its kernel, Run All, each widget step

# The notebook of the page, its kernel's status, and every code cell's execution count and errors.
STATE_JS = """path => {
  const app = window.jupyterapp;
  if (!app) return null;
  const panel = Array.from(app.shell.widgets('main')).find(w => w.context && w.context.path === path);
  if (!panel || !panel.context.isReady || !panel.content.model) return null;
  const session = panel.sessionContext.session, kernel = session && session.kernel;
  const model = panel.content.model, cells = [];
  for (let i = 0; i < model.cells.length; i++) {
    const c = model.cells.get(i);
    if (c.type !== 'code') continue;
    const errors = c.outputs.toJSON().filter(o => o.output_type === 'error')
      .map(o => ({ename: o.ename, evalue: o.evalue, traceback: (o.traceback || []).join('\\n')}));
    cells.push({index: i, count: c.executionCount, source: c.sharedModel.getSource().slice(0, 80), errors});
  }
  return {kernel: kernel ? kernel.status : null, cells};
}"""

RUN_ALL_JS = """async path => {
  const app = window.jupyterapp;
  const panel = Array.from(app.shell.widgets('main')).find(w => w.context && w.context.path === path);
  app.shell.activateById(panel.id);
  await app.commands.execute('notebook:clear-all-cell-outputs');
  app.commands.execute('notebook:run-all-cells');  // not awaited: the test polls the cells
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


def plain(s: str) -> str: return re.sub(r"\x1b\[[0-9;]*m", "", s)


class Lab:
    "A running `jupyter lab` server: its URL, token, root folder and log."
    def __init__(self, proc, url, token, root, log):
        self.proc, self.url, self.token, self.root, self.log = proc, url, token, root, log

    def log_tail(self, n: int = 4000) -> str:
        return "\n--- jupyter lab log (tail) ---\n" + plain(self.log.read_text(errors="replace")[-n:])


@pytest.fixture
def lab(tmp_path):
    root, home = tmp_path / "root", tmp_path / "jupyter"
    root.mkdir()
    shutil.copy(ROOT / "nbs" / f"{CHAPTER}.ipynb", root / f"{CHAPTER}.ipynb")
    # JupyterLab's settings for this server only: no news, no update check (nothing to reach outside 127.0.0.1)
    notes = home / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notes.parent.mkdir(parents=True)
    notes.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_DATA_DIR": str(home / "data"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "IPYTHONDIR": str(home / "ipython"),
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    token, port = secrets.token_hex(16), free_port()
    log = tmp_path / "lab.log"
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           "--ServerApp.terminals_enabled=False", "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: its commands
           f"--LabApp.user_settings_dir={home / 'settings'}", f"--LabApp.workspaces_dir={home / 'workspaces'}"]
    url = f"http://127.0.0.1:{port}"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=root)
    server = Lab(proc, url, token, root, log)
    try:
        deadline = time.monotonic() + START_S
        while True:
            if proc.poll() is not None: pytest.fail(f"jupyter lab exited with {proc.returncode} before serving" + server.log_tail())
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5) as r:
                    if r.status == 200: break
            except OSError: pass
            if time.monotonic() > deadline: pytest.fail(f"jupyter lab did not answer on {url} within {START_S} s" + server.log_tail())
            time.sleep(0.5)
        yield server
    finally:
        try:  # a clean shutdown: the server stops its kernels
            urllib.request.urlopen(urllib.request.Request(f"{url}/api/shutdown", method="POST",
                                                          headers={"Authorization": f"token {token}"}), timeout=10).close()
            proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            proc.terminate()
            try: proc.wait(timeout=15)
            except subprocess.TimeoutExpired: proc.kill(); proc.wait()


def test_run_all_then_the_clip_viewer_follows_its_slider(lab):
    path = f"{CHAPTER}.ipynb"
    page_errors, t0 = [], time.perf_counter()
    with playwright.sync_playwright() as pw:
        scratch = lab.root.parent / "browser"  # chromium's crash reports and dconf cache, out of the home folder
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--disable-gpu"],
                                     env={**os.environ, "XDG_CONFIG_HOME": str(scratch / "config"), "XDG_CACHE_HOME": str(scratch / "cache")})
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("pageerror", lambda e: page_errors.append(str(e)))
            def context(): return lab.log_tail() + (f"\n--- page errors ---\n{page_errors[-5:]}" if page_errors else "")

            page.goto(f"{lab.url}/lab/tree/{path}?token={lab.token}", wait_until="domcontentloaded", timeout=OPEN_S * 1000)
            try: page.wait_for_function(f"() => {{ const s = ({STATE_JS})({json.dumps(path)}); return s && s.kernel === 'idle'; }}",
                                        timeout=OPEN_S * 1000, polling=500)
            except playwright.TimeoutError: pytest.fail(f"JupyterLab did not open {path} with an idle kernel within {OPEN_S} s" + context())
            opened = time.perf_counter()

            page.evaluate(RUN_ALL_JS, path)
            deadline = time.monotonic() + RUN_S
            while True:
                state = page.evaluate(STATE_JS, path)
                errors = [(c, e) for c in state["cells"] for e in c["errors"]]
                if errors:
                    c, e = errors[0]
                    pytest.fail(f"cell {c['index']} ({c['source']!r}...) raised {e['ename']}: {e['evalue']}\n{plain(e['traceback'])}" + context())
                waiting = [c for c in state["cells"] if c["count"] is None]
                if not waiting and state["kernel"] == "idle": break
                if time.monotonic() > deadline:
                    pytest.fail(f"Run All did not finish within {RUN_S} s: kernel {state['kernel']}, {len(waiting)} of {len(state['cells'])} "
                                f"code cells without an execution count, first {waiting[0]['index'] if waiting else None}" + context())
                time.sleep(1)
            ran = time.perf_counter()
            counts = [c["count"] for c in state["cells"]]
            assert counts == list(range(1, len(counts) + 1)), f"expected the code cells run once each, in order; execution counts {counts}"

            # The clip viewer: one slider (with its readout), the picture and the event list, drawn by the widget manager.
            shown = page.locator(".jp-OutputArea-output .widget-slider")
            try: shown.first.wait_for(state="attached", timeout=WIDGET_S * 1000)
            except playwright.TimeoutError: pytest.fail(f"no ipywidgets slider in any output within {WIDGET_S} s of Run All" + context())
            assert shown.count() == 1, f"expected the clip viewer's slider alone, found {shown.count()} sliders"
            viewer = page.locator(".jp-OutputArea-output .widget-vbox").filter(has=page.locator(".widget-slider"))
            assert viewer.count() == 1, f"expected one box around the slider (the viewer), found {viewer.count()}"
            assert "Error displaying widget" not in viewer.inner_text(), f"the widget manager failed: {viewer.inner_text()[:500]}"
            slider, readout = shown.locator(".noUi-target"), shown.locator(".widget-readout")
            image, info = viewer.locator("img.widget-image"), viewer.locator(".widget-html-content")
            slider.scroll_into_view_if_needed()
            playwright.expect(info).to_contain_text(f"frame {readout.inner_text().strip()} of", timeout=WIDGET_S * 1000)
            before = int(readout.inner_text())
            src_before, info_before = image.get_attribute("src"), info.inner_text()
            size = image.evaluate("img => [img.complete, img.naturalWidth, img.naturalHeight]")
            assert size[0] and size[1] > 100 and size[2] > 100, f"the viewer's picture did not load as an image: complete, width, height = {size}"

            # Drag the handle with the mouse, 40% of the track towards the far end, as a learner does.
            track, knob = slider.bounding_box(), shown.locator(".noUi-handle").bounding_box()
            x, y = knob["x"] + knob["width"] / 2, knob["y"] + knob["height"] / 2
            dx = 0.4 * track["width"] * (1 if x < track["x"] + track["width"] / 2 else -1)
            page.mouse.move(x, y); page.mouse.down(); page.mouse.move(x + dx, y, steps=12); page.mouse.up()
            try: playwright.expect(readout).not_to_have_text(str(before), timeout=WIDGET_S * 1000)
            except AssertionError: pytest.fail(f"dragging the slider's handle by {dx:+.0f} px left the readout at {before}" + context())
            after = int(readout.inner_text())
            try:  # the kernel's answer: the list and the picture of the new frame
                playwright.expect(info).to_contain_text(f"frame {after} of", timeout=WIDGET_S * 1000)
                playwright.expect(image).not_to_have_attribute("src", src_before, timeout=WIDGET_S * 1000)
            except AssertionError as e:
                pytest.fail(f"the slider moved {before} -> {after} but the viewer did not follow: {e}\nlist now: {info.inner_text()[:300]!r}" + context())
            size = image.evaluate("img => [img.complete, img.naturalWidth, img.naturalHeight]")
            assert size[1] > 100, f"the new picture did not load as an image: complete, width, height = {size}"
            assert info.inner_text() != info_before
            print(f"\nopened in {opened - t0:.1f} s, Run All of {len(counts)} code cells in {ran - opened:.1f} s; "
                  f"slider {before} -> {after}, list {info_before.splitlines()[0]!r} -> {info.inner_text().splitlines()[0]!r}; "
                  f"page errors: {len(page_errors)}")
        finally:
            browser.close()
