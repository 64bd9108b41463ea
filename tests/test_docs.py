"""The documentation site as a user builds it (`make docs`) and reads it (headless Chromium on 127.0.0.1).

The build runs the command of the Makefile's `docs` target into a temporary folder with a fresh cache, so every
notebook without outputs is executed, as on a fresh clone (3 to 4 minutes on 2 shared cores). The API reference
is checked on a build without execution (`--no-execute`, under a minute): it documents the modules, not outputs.
The browser tests
open every page in Debian's `chromium` (.ci/run installs it) and fail on MathJax errors, untypeset or raw TeX,
figures that do not load and requests that leave 127.0.0.1. The summary tests compare each page's summary and each
module's docstring with the full `>` summary of its notebook (nbdev keeps only that blockquote's first line).
"""

import ast, functools, html, http.server, importlib, importlib.util, inspect, json, posixpath, re, shutil, subprocess
import sys, tempfile
import threading, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import unquote, urlparse
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "nbs").glob("[0-9]*.ipynb"))
PAGES = ["index"] + [nb.stem for nb in NOTEBOOKS]
MODULES = sorted(p for p in (ROOT / "sbnb").glob("*.py") if "File to edit: ../nbs/" in p.read_text())
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")

# ---- the build, as `make docs` runs it


def docs_command():
    """The command of the Makefile's `docs` target, with this interpreter for $(BIN)/python."""
    m = re.search(r"^docs:.*\n\t(.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert m, "the Makefile has no docs target"
    return m.group(1).replace("$(BIN)/python", sys.executable).split()


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """`make docs` into a temporary folder with a fresh cache: (site folder, finished process, seconds)."""
    out, cache = tmp_path_factory.mktemp("site"), tmp_path_factory.mktemp("docs_cache")
    start = time.monotonic()
    r = subprocess.run(
        docs_command() + ["--out", str(out), "--cache", str(cache)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=1200,
    )
    return out, r, time.monotonic() - start


@pytest.fixture(scope="module")
def site(build):
    out, r, _ = build
    assert r.returncode == 0, f"`make docs` failed with exit status {r.returncode}:\n{r.stderr[-3000:]}"
    return out


def _pages(site):
    """{path in the site: HTML} of every page, the API reference's (api/...) included."""
    return {p.relative_to(site).as_posix(): p.read_text() for p in site.rglob("*.html")}


def test_make_docs_renders_every_page(build):
    out, r, secs = build
    assert r.returncode == 0, f"`make docs` failed (exit status {r.returncode}, {secs:.0f} s):\n{r.stderr[-3000:]}"
    missing = [f"{p}.html" for p in PAGES if not (out / f"{p}.html").exists()]
    assert not missing, f"`make docs` wrote no {missing}"
    executed = re.findall(r"^docs: executing (\S+)", r.stdout, re.M)
    assert executed, f"no notebook was executed with a fresh cache:\n{r.stdout}"


def test_make_docs_prints_no_sphinx_warnings(build):
    _, r, _ = build
    warnings = [l for l in (r.stdout + r.stderr).splitlines() if "WARNING" in l or "ERROR" in l]
    assert not warnings, "`make docs` warned:\n" + "\n".join(warnings)


def _nb(*sources):
    cells = [dict(cell_type="code", metadata={}, source=s, outputs=[], execution_count=None) for s in sources]
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def test_a_failing_notebook_stops_the_build_with_one_line(tmp_path):
    stage, cache = tmp_path / "stage", tmp_path / "cache"
    stage.mkdir()
    (stage / "98_ok.ipynb").write_text(_nb("print(6 * 7)", "#| eval: false\nraise SystemExit(2)"))
    (stage / "99_cli.ipynb").write_text(_nb("x = 1", "import sys\nsys.exit(3)", "print('not reached')"))
    run = (
        "import sys, pathlib; sys.path.insert(0, 'docs'); import build; build.execute(*map(pathlib.Path, sys.argv[1:]))"
    )
    r = subprocess.run([sys.executable, "-c", run, str(stage), str(cache)], capture_output=True, text=True, cwd=ROOT)
    assert (r.returncode, r.stderr) == (
        1,
        "docs: nbs/99_cli.ipynb failed to execute: cell 1 (starts 'import sys') raised SystemExit: 3\n",
    ), r.stderr
    ok = json.loads((stage / "98_ok.ipynb").read_text())["cells"]
    assert ok[0]["outputs"][0]["text"] == ["42\n"] and not ok[1]["outputs"], "eval: false cells are not run"
    assert [p.name.split("-")[0] for p in cache.iterdir()] == ["98_ok"], "only a notebook that ran is cached"


# ---- the static pages


def test_site_has_every_notebook_and_no_network_resources(site):
    pages = _pages(site)
    for nb in NOTEBOOKS:
        assert nb.stem + ".html" in pages, f"no page for {nb.name}"
    assert "index.html" in pages
    for name, page in pages.items():
        # nothing is *loaded* from elsewhere: scripts, styles, images, fonts, iframes
        loads = re.findall(r'<(?:script|img|iframe|source)[^>]*\ssrc="(https?:)?//', page) + re.findall(
            r'<link[^>]*rel="stylesheet"[^>]*href="(https?:)?//', page
        )
        assert not loads, f"{name} loads something from the network: {loads[:3]}"
        assert "sbnb.local" not in page, f"{name} has a link to nbdev's placeholder doc host"
        # nbdev directives and hidden cells do not show
        assert "#| export" not in page and "#| hide" not in page and "default_exp" not in page, name


def test_tables_that_cells_display_render_as_tables(site):
    """A markdown table a cell displays (the pilot, the comparisons) is an HTML table, never raw `|` text."""
    for name, page in _pages(site).items():
        text = re.sub(r"<pre.*?</pre>|<code.*?</code>", "", page, flags=re.S)  # code may show pipes
        raw = [l for l in html.unescape(re.sub(r"<[^>]+>", "\n", text)).splitlines() if re.match(r"\s*\|\s*-{3}", l)]
        assert not raw, f"{name} shows a markdown table as raw text: {raw[:2]}"
    results = (site / "81_results.html").read_text()
    assert results.count("<table") >= 4, "the results page should show its pilot and comparison tables as tables"


def test_pages_follow_notebook_numbering(site):
    index = (site / "index.html").read_text()
    stems = [nb.stem for nb in NOTEBOOKS]
    positions = [index.find(f'href="{s}.html"') for s in stems]
    assert all(p >= 0 for p in positions), dict(zip(stems, positions))
    assert positions == sorted(positions)


def test_exported_functions_show_signature_and_docstring(site):
    page = (site / "00_core.html").read_text()
    assert 'id="write_json"' in page and "Write <code" in page and "obj" in page


# ---- the API reference: a page per module (autodoc), every public name in the index


def _docs_module(name):
    """docs/<name>.py, imported by path (`build` would also name PyPA's build package)."""
    spec = importlib.util.spec_from_file_location(f"docs_{name}", ROOT / "docs" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


API_MODULES = ["select", "upsample", "profile", "train", "evaluate"]  # the pipeline's modules (the list)


def public_functions(mod: str) -> list[str]:
    """The functions of `sbnb.<mod>.__all__` (a cached or imported function counts)."""
    m = importlib.import_module(f"sbnb.{mod}")
    return [n for n in m.__all__ if inspect.isfunction(inspect.unwrap(getattr(m, n)))]


@pytest.fixture(scope="module")
def api_site(tmp_path_factory):
    """The site built without executing notebooks (the API pages do not depend on outputs): (folder, process)."""
    out = tmp_path_factory.mktemp("api_site")
    cmd = docs_command() + ["--no-execute", "--out", str(out)]
    return out, subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)


def test_api_reference_has_a_page_per_module(api_site):
    out, r = api_site
    assert r.returncode == 0, f"docs/build.py --no-execute failed ({r.returncode}):\n{r.stderr[-3000:]}"
    warned = [l for l in (r.stdout + r.stderr).splitlines() if re.search(r"WARNING|ERROR", l) and "docstring" in l]
    assert not warned, "docstrings that autodoc could not read:\n" + "\n".join(warned)
    contents = (out / "api" / "index.html").read_text()
    for m in MODULES:
        page = out / "api" / f"{m.stem}.html"
        assert page.exists(), f"no API page for sbnb.{m.stem}"
        assert f'id="module-sbnb.{m.stem}"' in page.read_text(), f"api/{m.stem}.html does not document sbnb.{m.stem}"
        assert f'href="{m.stem}.html"' in contents, f"the API reference's contents do not list sbnb.{m.stem}"
    assert 'href="api/index.html"' in (out / "index.html").read_text(), "the home page does not lead to the API"


@pytest.mark.parametrize("mod", API_MODULES)
def test_index_lists_every_public_function(mod, api_site):
    """Each function of `__all__` is documented as a function on its module's page, and the index links to it."""
    out, r = api_site
    assert r.returncode == 0, f"docs/build.py --no-execute failed ({r.returncode}):\n{r.stderr[-3000:]}"
    index, page = (out / "genindex.html").read_text(), (out / "api" / f"{mod}.html").read_text()
    names = public_functions(mod)
    assert names, f"sbnb.{mod} has no public functions?"
    documented = [n for n in names if re.search(rf'<dl class="py function">\s*<dt[^>]*\bid="sbnb\.{mod}\.{n}"', page)]
    indexed = [n for n in names if f'href="api/{mod}.html#sbnb.{mod}.{n}"' in index]
    assert documented == names, f"api/{mod}.html does not document {sorted(set(names) - set(documented))}"
    assert indexed == names, f"genindex.html does not list {sorted(set(names) - set(indexed))}"


def test_every_public_name_has_an_api_entry():
    """Every name of every module's `__all__` gets an autodoc directive of the kind it is (read from the source)."""
    build = _docs_module("build")
    kinds = {
        "function": inspect.isfunction,
        "class": inspect.isclass,
        "data": lambda o: not (inspect.isclass(o) or inspect.isroutine(o)),
    }
    for m in MODULES:
        mod = importlib.import_module(f"sbnb.{m.stem}")
        entries = build.api_entries(m.stem)
        assert [n for n, _, _ in entries] == list(mod.__all__)
        wrong = [(n, k) for n, k, _ in entries if not kinds[k](inspect.unwrap(getattr(mod, n)))]
        assert not wrong, f"sbnb.{m.stem}: documented as the wrong kind: {wrong}"
    assert ("read_rows", "function") in [e[:2] for e in build.api_entries("profile")]  # `read_rows = read_table`


def test_markdown_docstrings_become_rest():
    """Docstrings are markdown; autodoc reads reST (docs/md_docstrings.py converts, links public names)."""
    import sbnb.select  # noqa: F401 (names resolve against imported modules, as under autodoc)

    md = _docs_module("md_docstrings").md_to_rst
    assert md("Per id, `config.factor` if selected", "sbnb.select") == "Per id, ``config.factor`` if selected"
    assert md("by `select()`; see `sbnb.select.Selection`.", "sbnb.upsample") == (
        "by ``select()``; see :py:obj:`sbnb.select.Selection <sbnb.select.Selection>`."
    )
    assert md("`Selection`s and ±`m`", "sbnb.select") == ":py:obj:`Selection <sbnb.select.Selection>`\\ s and ±\\ ``m``"
    assert md("the `sbnb.select` module") == "the :py:mod:`sbnb.select <sbnb.select>` module"
    assert md("|a ∩ b| / |a ∪ b|") == "\\|a ∩ b\\| / \\|a ∪ b\\|"
    assert md("the *restricted* mean; picks marked *.") == "the *restricted* mean; picks marked \\*."
    assert md("Γ* = N((N+1)Λ)⁻¹, a * b") == "Γ\\* = N((N+1)Λ)⁻¹, a \\* b"
    assert md("`\\boxed{}` or \\fbox, name_ or _x") == "``\\boxed{}`` or \\\\fbox, name\\_ or _x"


# ---- summaries: nbdev keeps the first line of the `>` blockquote (page summary and module docstring)


def summary_lines(nb: Path) -> list[str]:
    """The lines of a notebook's `> summary`: the blockquote under the title of its first markdown cell."""
    cell = next(c for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "markdown")
    m = re.search(r"^#[^#].*\n\s*((?:>.*(?:\n|$))+)", "".join(cell["source"]), re.M)
    return [l[1:].strip() for l in m.group(1).splitlines()] if m else []


def _words(s):
    """Only the words: markdown and typographic punctuation do not count."""
    return " ".join(re.findall(r"\w+", s))


def _ends_sentence(s):
    return re.search(r"[.!?][)\"'’”]*$", s.strip()) is not None


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_notebook_summary_is_one_line(nb):
    lines = summary_lines(nb)
    assert lines, f"nbs/{nb.name}: no `> summary` line under the title"
    mod = re.search(r"#\|\s*default_exp\s+(\w+)", nb.read_text())
    cut = "the page summary" + (f" and sbnb/{mod[1]}.py's docstring" if mod else "")
    assert len(lines) == 1, (
        f"nbs/{nb.name}: the `>` summary spans {len(lines)} lines; nbdev keeps only the first (ending "
        f"{lines[0][-50:]!r}), so {cut} lose{'' if mod else 's'} {' '.join(lines[1:])!r}; make it one line"
    )


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_page_summary_is_the_whole_summary(nb, site):
    page = (site / f"{nb.stem}.html").read_text()
    m = re.search(r"</h1>\s*<blockquote>(.*?)</blockquote>", page, re.S)
    assert m, f"{nb.stem}.html: no summary under the title"
    shown = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", m.group(1)))).strip()
    full = " ".join(summary_lines(nb))
    whole = _words(shown) == _words(full) and _ends_sentence(shown)
    assert whole, f"{nb.stem}.html: the summary is cut: shows {shown!r}; nbs/{nb.name} says {full!r}"


@pytest.mark.parametrize("mod", MODULES, ids=[m.stem for m in MODULES])
def test_module_docstring_is_the_whole_summary(mod):
    nb = ROOT / "nbs" / re.search(r"File to edit: \.\./nbs/(\S+\.ipynb)", mod.read_text()).group(1)
    doc, full = ast.get_docstring(ast.parse(mod.read_text())) or "", " ".join(summary_lines(nb))
    whole = _words(doc) == _words(full) and _ends_sentence(doc)
    assert whole, f"sbnb/{mod.name}: the module docstring is cut: {doc!r}; nbs/{nb.name} says {full!r}"


# ---- the pages in a browser


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(site):
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _chromium(*args, timeout=120):
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    ]
    with tempfile.TemporaryDirectory() as prof:
        return subprocess.run(
            [CHROMIUM, *flags, f"--user-data-dir={prof}", *args], capture_output=True, text=True, timeout=timeout
        )


def page_requests(netlog: Path) -> list[tuple[str, int | None]]:
    """(url, HTTP status) of every request made for a page, from Chromium's net log (not the browser's own)."""
    text = netlog.read_text()
    try:
        log = json.loads(text)
    except json.JSONDecodeError:
        log = json.loads(text.rstrip().rstrip(",") + "]}")  # a log cut short at exit
    types = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    urls, status = {}, {}
    for e in log["events"]:
        kind, p, sid = types.get(e["type"]), e.get("params", {}), e["source"]["id"]
        if kind == "URL_REQUEST_START_JOB" and p.get("network_isolation_key", "").startswith("http://127.0.0.1 "):
            urls[sid] = p["url"]
        if kind == "HTTP_TRANSACTION_READ_RESPONSE_HEADERS":
            status[sid] = int(p["headers"][0].split()[1])
    return [(u, status.get(sid)) for sid, u in urls.items()]


@pytest.fixture(scope="module")
def rendered(server, tmp_path_factory):
    """Every page after MathJax ran in headless Chromium (3 at a time): {page: (DOM, requests made for it)}."""
    tmp = tmp_path_factory.mktemp("chromium")

    def render(page):
        netlog = tmp / f"{page}.json"
        r = _chromium("--virtual-time-budget=20000", f"--log-net-log={netlog}", "--dump-dom", f"{server}/{page}.html")
        return r.stdout, page_requests(netlog) if netlog.exists() else []

    with ThreadPoolExecutor(3) as ex:
        return dict(zip(PAGES, ex.map(render, PAGES)))


_MATH = re.compile(r'<(span|div) class="math notranslate nohighlight">(.*?)</\1>', re.S)
_HIDDEN = re.compile(r"<(script|style|pre|code|textarea|svg|mjx-container)\b.*?</\1>", re.S)
_RAW_TEX = re.compile(r"\$\$|\\(?:begin|end)\{|\\[\[\]()]|\$(?!\d)")  # a `$` left in prose; "$5" is a price


def math_problems(static: str, dom: str) -> list[str]:
    """MathJax errors (with the TeX they came from), equations left untypeset, and raw TeX in a page's text."""
    tex = [re.sub(r"\s+", " ", html.unescape(t)).strip() for _, t in _MATH.findall(static)]
    boxes = re.findall(r"<mjx-container\b.*?</mjx-container>", dom, re.S)
    out = []
    for i, box in enumerate(boxes):
        errors = set(re.findall(r'data-mjx-error="([^"]*)"', box)) | ({"mjx-merror"} if "<mjx-merror" in box else set())
        source = tex[i] if len(tex) == len(boxes) else "(equation %d)" % i
        out += [f"MathJax error {html.unescape(e)!r} in {source[:160]!r}" for e in sorted(errors)]
    if len(boxes) < len(tex):
        out.append(f"{len(tex) - len(boxes)} of {len(tex)} equations not typeset")
    text = html.unescape(re.sub(r"<[^>]+>", " ", _HIDDEN.sub(" ", dom)))
    for m in _RAW_TEX.finditer(text):
        out.append("raw TeX in the text: " + repr(re.sub(r"\s+", " ", text[max(0, m.start() - 50) : m.end() + 50])))
    return out


def request_problems(page: str, static: str, requests) -> list[str]:
    """Requests off 127.0.0.1, failed requests and figures of a page that were not loaded."""
    out = [f"requested from the network: {u}" for u, _ in requests if not u.startswith("http://127.0.0.1:")]
    out += [
        f"HTTP {s} for {u}"
        for u, s in requests
        if u.startswith("http://127.0.0.1:") and s != 200 and urlparse(u).path != "/favicon.ico"
    ]  # Chromium asks every site for one; Sphinx sites have none
    served = {unquote(urlparse(u).path).lstrip("/") for u, s in requests if s == 200}
    if f"{page}.html" not in served:
        out.append(f"the page itself was not loaded (requests seen: {requests[:5]})")
    for src in re.findall(r'<img[^>]+src="([^"]+)"', static):
        if not src.startswith("data:") and posixpath.normpath(unquote(src)) not in served:
            out.append(f"figure {src} was not loaded")
    return out


@pytest.mark.browser
@needs_chromium
@pytest.mark.parametrize("page", PAGES)
def test_math_renders(page, site, rendered):
    problems = math_problems((site / f"{page}.html").read_text(), rendered[page][0])
    assert not problems, f"{page}.html:\n  " + "\n  ".join(problems)


@pytest.mark.browser
@needs_chromium
@pytest.mark.parametrize("page", PAGES)
def test_figures_load_and_nothing_leaves_127_0_0_1(page, site, rendered):
    problems = request_problems(page, (site / f"{page}.html").read_text(), rendered[page][1])
    assert not problems, f"{page}.html:\n  " + "\n  ".join(problems)


@pytest.mark.browser
@needs_chromium
def test_site_has_math_and_figures_and_they_show(site, server, rendered, tmp_path):
    pages = _pages(site)
    math_pages = [p for p in PAGES if _MATH.search(pages[f"{p}.html"])]
    fig_pages = [p for p in PAGES if re.search(r'<img[^>]+src="[^"]+\.(png|svg|jpg)"', pages[f"{p}.html"])]
    assert math_pages, "no page with equations"
    assert fig_pages, "no page with a figure"
    assert any(urlparse(u).path.endswith("/mathjax/tex-svg.js") and s == 200 for u, s in rendered[math_pages[0]][1]), (
        "the vendored MathJax was not served"
    )
    # the figure is drawn: a screenshot of a figure page is not blank
    shot = tmp_path / "figure.png"
    _chromium(
        "--virtual-time-budget=10000",
        "--window-size=1200,2400",
        f"--screenshot={shot}",
        f"{server}/{fig_pages[0]}.html",
    )
    assert shot.exists() and shot.stat().st_size > 10_000, f"{fig_pages[0]}.html: blank screenshot"
