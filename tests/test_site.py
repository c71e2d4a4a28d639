"""The course site in a real browser: a site built from a small run folder, opened in headless Chromium.

The run folder is made as `dudek reproduce` makes one: a chapter executed by papermill into
`run/notebooks/` (with the `metrics.json` it writes) and a `report.md` with a plot beside it.
`dudek.site.build_site` builds the site; Debian's `chromium` loads its pages with their JavaScript,
runs Sphinx's search, and every internal link of every page must lead to a file of the site.
"""
import importlib, json, re, shutil, subprocess, threading, time
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / "nbs"
CHAPTER, TITLE = "06_metrics", "Metrics: Team-mAP@1 and mAP@1"  # a fast chapter (about 15 s) that draws plots
FUNCTION, MODULE = "spotting_scores", "metrics"  # defined in the executed chapter's module
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None: pytest.skip("chromium not found: apt-get install chromium", allow_module_level=True)


def browse(url: str, profile: Path) -> str:
    "The DOM of `url` as headless Chromium has it once the page's JavaScript ran (5 s of virtual time)."
    r = subprocess.run([CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", f"--user-data-dir={profile}",
                        "--virtual-time-budget=5000", "--dump-dom", url], capture_output=True, text=True, timeout=90)
    assert r.returncode == 0 and "<html" in r.stdout, f"chromium could not load {url}: {r.stderr[-2000:]}"
    return r.stdout


def text(html: str) -> str: return unescape(re.sub(r"<[^>]+>", "", html))


def code_cells(html: str) -> list[str]:
    "The source text of every code cell of a page, as shown."
    return [text(m).strip() for m in re.findall(r'<div class="cell_input[^"]*">(.*?)</pre>', html, re.S)]


class Links(HTMLParser):
    "Every `href` and `src` of a page."
    def __init__(self):
        super().__init__(); self.found = []
    def handle_starttag(self, tag, attrs): self.found += [v for k, v in attrs if k in ("href", "src") and v]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    import papermill
    from matplotlib.figure import Figure
    from dudek.site import build_site
    tmp = tmp_path_factory.mktemp("site")
    run = tmp / "run"; (run / "notebooks").mkdir(parents=True)
    modules = [p.stem for p in (ROOT / "dudek").glob("*.py") if not p.stem.startswith("_")]
    warm = threading.Thread(target=lambda: [importlib.import_module(f"dudek.{m}") for m in modules])
    warm.start()  # what autodoc will import (torch, timm, ...): here, while the kernel runs the chapter on the other core
    scratch = tmp_path_factory.mktemp("site-scratch")  # the kernel's temporaries (conftest's folder is per test, this fixture is not)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TMPDIR", str(scratch))
        mp.setenv("DUDEK_QUIET", "1")
        mp.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")  # the kernel draws inline, as in Jupyter
        papermill.execute_notebook(NBS / f"{CHAPTER}.ipynb", run / "notebooks" / f"{CHAPTER}.ipynb", parameters={"run_dir": str(run)},
                                   kernel_name="python3", progress_bar=False, cwd=str(tmp))
    warm.join()
    shutil.rmtree(scratch)
    team_map = json.loads((run / "metrics.json").read_text())
    fig = Figure(figsize=(3, 2)); fig.subplots().bar(["PASS", "DRIVE"], [0.61, 0.44])
    (run / "report_files").mkdir(); fig.savefig(run / "report_files" / "ap.png")
    (run / "report.md").write_text(f"# Results of the run\n\n| metric | value |\n|---|---|\n| keys of metrics.json | {len(team_map)} |\n\n"
                                   "![AP per label](report_files/ap.png)\n")
    t0 = time.perf_counter()
    front = build_site(run, tmp / "site")
    print(f"site built in {time.perf_counter() - t0:.1f} s")
    assert sorted(p.name for p in tmp.iterdir()) == ["run", "site"], "the build wrote beside the site"
    return front.parent


def test_front_page_shows_its_title_and_every_page_in_the_navigation(site, tmp_path):
    dom = browse((site / "index.html").as_uri(), tmp_path)
    assert re.search(r"<h1[^>]*>\s*dudek", dom) and "<title>dudek" in dom, "the front page lacks its title"
    chapters = [p.stem for p in sorted(NBS.glob("*.ipynb")) if p.stem != "index" and not p.name.startswith("_")]
    for page in chapters + ["results", "api/index"]:
        assert f'href="{page}.html"' in dom, f"{page} is not in the front page's navigation"
    assert chapters.index(CHAPTER) >= 0 and dom.index(f'href="{chapters[0]}.html"') < dom.index(f'href="{chapters[-1]}.html"')


def test_executed_chapter_shows_its_title_and_plots(site, tmp_path):
    dom = browse((site / f"{CHAPTER}.html").as_uri(), tmp_path)
    assert TITLE in text(re.search(r"<h1.*?</h1>", dom, re.S).group(0)), "the chapter's title is not its heading"
    from PIL import Image
    plots = [site / unquote(s) for s in re.findall(r'<img[^>]*src="(_images/[^"]+)"', dom)]
    assert plots and all(p.is_file() for p in plots), f"the chapter shows no plot: {plots}"
    assert max(Image.open(p).size[0] for p in plots) > 300  # a real figure, not an icon


def test_pages_show_no_directives_and_no_hidden_cells(site):
    from dudek.site import directives, is_hidden, strip_directives
    checked = 0
    for nb in sorted(NBS.glob("[0-9]*.ipynb")):
        shown = code_cells((site / f"{nb.stem}.html").read_text(encoding="utf-8"))
        assert shown, f"{nb.stem}.html shows no code"
        assert not [c for c in shown if c.lstrip().startswith("#|")], f"{nb.stem}.html shows nbdev directives"
        for cell in json.loads(nb.read_text())["cells"]:
            source = "".join(cell["source"])
            if cell["cell_type"] == "code" and is_hidden(directives(source)):
                assert strip_directives(source).strip() not in shown, f"{nb.stem}.html shows a hidden cell"
                checked += 1
    assert checked, "no chapter has a hidden cell to check"


def test_results_page_shows_the_report_and_its_plot(site, tmp_path):
    dom = browse((site / "results.html").as_uri(), tmp_path)
    assert "Results of the run" in dom and "<table" in dom
    assert [s for s in re.findall(r'<img[^>]*src="([^"]+)"', dom) if (site / unquote(s)).is_file()], "the report's plot is missing"


def test_search_finds_the_module_of_a_function(site, tmp_path):
    dom = browse((site / "search.html").as_uri() + f"?q={FUNCTION}", tmp_path)
    assert f'href="api/{MODULE}.html#dudek.{MODULE}.{FUNCTION}"' in dom, "Sphinx's search does not list the function's module page"


def test_every_internal_link_resolves(site):
    pages = sorted(p for p in site.rglob("*.html") if p.relative_to(site).parts[0] != "_static")  # _static: the theme's templates
    assert len(pages) > 20
    broken = []
    for page in pages:
        parser = Links(); parser.feed(page.read_text(encoding="utf-8"))
        for link in parser.found:
            url = urlsplit(link)
            if url.scheme or url.netloc or not url.path: continue  # the web, data:, mailto:, or an anchor of this page
            target = (page.parent / unquote(url.path)).resolve()
            if not target.is_file() and not (target / "index.html").is_file(): broken.append(f"{page.relative_to(site)}: {link}")
    assert not broken, f"{len(broken)} broken links, e.g.\n" + "\n".join(broken[:20])
