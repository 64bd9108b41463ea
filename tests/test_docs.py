"""The documentation site: built offline, math typeset without a CDN, figures load, nothing from the network.

The browser test serves the built site on 127.0.0.1 and opens pages in headless Chromium (Debian's `chromium`,
which .ci/run installs). Run `make docs` for the full site; this test builds it without executing notebooks.
"""
import functools, http.server, re, shutil, subprocess, sys, threading
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    r = subprocess.run([sys.executable, str(ROOT / "docs" / "build.py"), "--no-execute", "--out", str(out)],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return out

def _pages(site):
    return {p.name: p.read_text() for p in site.glob("*.html")}

def test_site_has_every_notebook_and_no_network_resources(site):
    pages = _pages(site)
    for nb in sorted((ROOT / "nbs").glob("[0-9]*.ipynb")):
        assert nb.stem + ".html" in pages, f"no page for {nb.name}"
    assert "index.html" in pages
    for name, html in pages.items():
        # nothing is *loaded* from elsewhere: scripts, styles, images, fonts, iframes
        loads = re.findall(r'<(?:script|img|iframe|source)[^>]*\ssrc="(https?:)?//', html) + \
                re.findall(r'<link[^>]*rel="stylesheet"[^>]*href="(https?:)?//', html)
        assert not loads, f"{name} loads something from the network: {loads[:3]}"
        assert "sbnb.local" not in html, f"{name} has a link to nbdev's placeholder doc host"
        # nbdev directives and hidden cells do not show
        assert "#| export" not in html and "#| hide" not in html and "default_exp" not in html, name

def test_pages_follow_notebook_numbering(site):
    index = (site / "index.html").read_text()
    stems = [nb.stem for nb in sorted((ROOT / "nbs").glob("[0-9]*.ipynb"))]
    positions = [index.find(f'href="{s}.html"') for s in stems]
    assert all(p >= 0 for p in positions), dict(zip(stems, positions))
    assert positions == sorted(positions)

def test_exported_functions_show_signature_and_docstring(site):
    html = (site / "00_core.html").read_text()
    assert 'id="write_json"' in html and "Write <code" in html and "obj" in html

class _Log(http.server.SimpleHTTPRequestHandler):
    log = []
    def log_message(self, fmt, *args):
        _Log.log.append((self.path, args[1] if len(args) > 1 else None))

@pytest.fixture(scope="module")
def server(site):
    handler = functools.partial(_Log, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True); t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()

def _chromium(*args, timeout=120):
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]
    import tempfile
    with tempfile.TemporaryDirectory() as prof:
        r = subprocess.run([CHROMIUM, *flags, f"--user-data-dir={prof}", *args], capture_output=True, text=True, timeout=timeout)
    return r

@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_math_is_typeset_and_figures_load(site, server, tmp_path):
    pages = _pages(site)
    math_pages = sorted(n for n, h in pages.items() if 'class="math' in h and n != "search.html")
    fig_pages = sorted(n for n, h in pages.items() if re.search(r'<img[^>]+src="[^"]+\.(png|svg|jpg)"', h))
    assert math_pages, "no page with equations"
    assert fig_pages, "no page with a figure"
    # a page with equations: MathJax (vendored) replaces the TeX by rendered elements
    page = math_pages[0]
    dom = _chromium("--virtual-time-budget=20000", "--dump-dom", f"{server}/{page}").stdout
    n_math = len(re.findall(r'class="math notranslate', pages[page]))
    n_typeset = dom.count("<mjx-container")
    assert n_typeset >= n_math > 0, f"{page}: {n_typeset} typeset of {n_math} equations"
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<script.*?</script>", "", dom, flags=re.S))
    assert "$$" not in text and "\\[" not in text, f"{page}: raw TeX left on the page"
    assert any(p.split("?")[0].endswith("tex-svg.js") and s == "200" for p, s in _Log.log), "vendored MathJax was not served"
    # a page with a figure: the browser fetched the image and it was served
    page = fig_pages[0]
    _Log.log.clear()
    shot = tmp_path / "figure.png"
    _chromium("--virtual-time-budget=10000", "--window-size=1200,2400", f"--screenshot={shot}", f"{server}/{page}")
    imgs = re.findall(r'<img[^>]+src="([^"]+\.(?:png|svg|jpg))"', pages[page])
    served = {p.split("?")[0].lstrip("/") for p, s in _Log.log if s == "200"}
    assert any(i.lstrip("./") in served for i in imgs), f"{page}: figure not fetched ({imgs[:3]} vs {sorted(served)[:5]})"
    assert shot.exists() and shot.stat().st_size > 10_000
