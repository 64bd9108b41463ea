"""Build the sbnb documentation site offline: notebooks (+ README) -> static HTML in _docs/.

    python docs/build.py [--execute | --no-execute] [--out _docs] [--cache .docs_cache]

1. Copy nbs/ to a staging folder; with --execute (the default for `make docs`), run each notebook that has no
   outputs (results notebooks keep the outputs they were committed with), cached by content hash in .docs_cache/.
   Cells marked `#| eval: false` or flagged slow/gpu are skipped, as `nbdev_test` skips them. A notebook that fails
   stops the build with one line naming the notebook, the cell and the error.
2. `nbdev_proc_nbs` handles nbdev's directives (#| hide cells vanish, exported code becomes documentation).
3. Post-process for Sphinx: nbdev's front matter becomes the page title, `show_doc` cells become rendered
   signatures and docstrings, `#| echo/output: false` become myst-nb tags, links point at our own pages; nbdev's
   links to names that have no heading there point at the name in the API reference, or become plain code
   (private helpers).
4. The API reference: a page per module, api/<module>.md, linked to its notebook: the module's docstring, then an
   autodoc directive per name of its `__all__` (signature and docstring; docs/md_docstrings.py reads the markdown
   of the docstrings), which also puts every name in the index (genindex.html).
5. Sphinx + myst-nb + furo render the pages; math is typeset by a vendored MathJax 3 (no CDN).
"""

import argparse, ast, hashlib, importlib, json, os, re, runpy, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
BIN = Path(sys.executable).parent


def _nb_cells(nb):
    return [c for c in nb["cells"]]


def _src(c):
    return c["source"] if isinstance(c["source"], str) else "".join(c["source"])


def _has_outputs(nb):
    return any(c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")


def _default_exp(nb):
    for c in nb["cells"]:
        m = re.search(r"^#\|\s*default_exp\s+(\S+)", _src(c), re.M)
        if m:
            return m.group(1)
    return None


def _is_slow(nb):
    code = [_src(c) for c in nb["cells"] if c["cell_type"] == "code"][:3]
    return any(re.search(r"^#\s*sbnb-test:\s*(slow|gpu)", s, re.M) for s in code)


# Cells a notebook run skips, as `nbdev_test` does: `#| eval: false` (e.g. `if __name__ == "__main__": _entry()`,
# which would parse build.py's own argv and raise SystemExit) and cells flagged slow or gpu (settings.ini tst_flags).
_SKIP = re.compile(r"^#\|\s*(eval:\s*false|slow|gpu)\b", re.M)


def run_nb(nb, shell):
    """Run the code cells of `nb` (read with execnb) in `shell`; the first failure as (cell index, exception)."""
    for i, c in enumerate(nb.cells):
        if c.cell_type != "code" or _SKIP.search(c.source):
            continue
        shell.cell(c)
        if shell.exc is not None:
            return i, shell.exc
    return None


def _failure(name, nb, i, e):
    """One line naming the notebook, the cell (its index in the notebook, 0-based, and first line) and the error."""
    first = next((l for l in nb.cells[i].source.splitlines() if l.strip() and not l.startswith("#|")), "")
    err = f"{type(e).__name__}: {e}".splitlines()[0] if str(e) else type(e).__name__
    return f"docs: nbs/{name} failed to execute: cell {i} (starts {first.strip()[:60]!r}) raised {err}"


def execute(stage: Path, cache: Path):
    """Run every notebook in `stage` that has no outputs (skipping slow ones), caching executed copies.

    A notebook that fails stops the build (SystemExit) with one line per failing notebook: pages never show a
    notebook without the outputs it is meant to have."""
    from execnb.nbio import read_nb, write_nb
    from execnb.shell import CaptureShell

    cache.mkdir(parents=True, exist_ok=True)
    failures = []
    for p in sorted(stage.glob("[0-9]*.ipynb")):
        nb = json.loads(p.read_text())
        if _has_outputs(nb) or _is_slow(nb):
            continue
        key = hashlib.sha256(p.read_bytes() + _lib_hash()).hexdigest()[:16]
        hit = cache / f"{p.stem}-{key}.ipynb"
        if hit.exists():
            shutil.copy(hit, p)
            print(f"docs: {p.name}: cached outputs", flush=True)
            continue
        print(f"docs: executing {p.name}", flush=True)
        cwd = os.getcwd()
        os.chdir(stage)
        try:
            nbo = read_nb(p)
            failed = run_nb(nbo, CaptureShell())
        finally:
            os.chdir(cwd)
        if failed:
            if isinstance(failed[1], KeyboardInterrupt):
                sys.exit("docs: interrupted")  # Ctrl-C inside a cell
            failures.append(_failure(p.name, nbo, *failed))
            continue
        write_nb(nbo, p)
        shutil.copy(p, hit)
    if failures:
        sys.exit("\n".join(failures))


def _lib_hash():
    h = hashlib.sha256()
    for f in sorted((ROOT / "sbnb").glob("*.py")):
        h.update(f.read_bytes())
    return h.digest()


def _showdoc_md(mod, name):
    """The signature and docstring of `sbnb.<mod>.<name>` as markdown (nbdev's show_doc, minus its source link)."""
    from nbdev.showdoc import show_doc

    obj = importlib.import_module(f"sbnb.{mod}")
    for part in name.split("."):
        obj = getattr(obj, part)
    md = show_doc(obj)._repr_markdown_()
    md = re.sub(r"^\[source\]\(.*?\)\{.*?\}\s*$", "", md, flags=re.M)
    return re.sub(r"^\s*---\s*\n", "", md).strip()


def postprocess(proc: Path, pages: dict):
    """Make nbdev-processed notebooks Sphinx-ready (see module docstring)."""
    host = "https://sbnb.local/"
    for p in sorted(proc.glob("*.ipynb")):
        nb = json.loads(p.read_text())
        orig = json.loads((ROOT / "nbs" / p.name).read_text())
        mod = _default_exp(orig)
        cells, title, desc = [], p.stem, ""
        for c in nb["cells"]:
            s = _src(c)
            if c["cell_type"] == "raw" and s.startswith("---"):
                import yaml

                fm = yaml.safe_load(s.strip().strip("-")) or {}
                title, desc = fm.get("title", title), fm.get("description", "")
                continue
            if c["cell_type"] == "markdown":
                if "THIS FILE WAS AUTOGENERATED" in s:
                    continue
                for out, page in pages.items():
                    s = s.replace(host + out, page)
                c["source"] = s
            if c["cell_type"] == "code":
                m = re.match(r"\s*(?:#\|.*\n)*\s*show_doc\((.+?)\)\s*$", s)
                if m and mod:
                    md = _showdoc_md(mod, m.group(1))
                    cells.append({"cell_type": "markdown", "metadata": {}, "source": md})
                    continue
                tags = []
                if re.search(r"^#\|\s*echo:\s*false", s, re.M):
                    tags.append("remove-input")
                if re.search(r"^#\|\s*output:\s*false", s, re.M):
                    tags.append("remove-output")
                c["source"] = "\n".join(l for l in s.splitlines() if not l.startswith(("#|", "# sbnb-test:"))).strip(
                    "\n"
                )
                c["outputs"] = [
                    o
                    for o in c.get("outputs", [])
                    if not (o.get("name") == "stderr" and "Warning" in _src({"source": o.get("text", "")}))
                ]
                if tags:
                    c.setdefault("metadata", {})["tags"] = tags
                if not c["source"].strip() and not c.get("outputs"):
                    continue
            cells.append(c)
        head = f"# {title}\n\n" + (f"> {desc}\n" if desc else "")
        if mod:
            head += f"\nAPI reference: {{py:mod}}`sbnb.{mod}`\n"
        nb["cells"] = [{"cell_type": "markdown", "metadata": {}, "source": head}] + cells
        for i, c in enumerate(nb["cells"]):
            c["id"] = f"c{i:04d}"
        nb.setdefault("metadata", {})["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        p.write_text(json.dumps(nb, indent=1))


def _anchors(nb):
    """The heading anchors of a processed notebook, slugged as MyST slugs them (myst_heading_anchors = 3)."""
    from myst_parser.slugs import github_slugify

    md = "\n".join(_src(c) for c in nb["cells"] if c["cell_type"] == "markdown")
    return {github_slugify(h) for h in re.findall(r"^#{1,3}\s+(.+?)\s*$", md, re.M)}


def _definitions(mod: str, body=None) -> dict:
    """{name: (kind, source of its value or None)} of what `sbnb/<mod>.py` defines or imports from sbnb at top level."""
    src = (ROOT / "sbnb" / f"{mod}.py").read_text()
    out = {}
    for node in ast.parse(src).body if body is None else body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out[node.name] = ("function", None)
        elif isinstance(node, ast.ClassDef):
            out[node.name] = ("class", None)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            for t in node.targets if isinstance(node, ast.Assign) else [node.target]:
                both = isinstance(t, ast.Tuple) and isinstance(node.value, ast.Tuple)
                for t, v in zip(t.elts, node.value.elts) if both else [(t, node.value)]:  # `a, b = f, g`: aliases
                    if isinstance(t, ast.Name) and isinstance(v, ast.Name):
                        out[t.id] = ("alias", v.id)
                    elif isinstance(t, ast.Name):
                        out[t.id] = ("data", ast.get_source_segment(src, v))
        elif isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            for a in node.names:
                out[a.asname or a.name] = ("from", (node.module, a.name))
        elif isinstance(node, (ast.If, ast.Try)):
            out |= _definitions(mod, node.body + getattr(node, "orelse", []))
    return out


def public_names(mod: str) -> list[str]:
    """The `__all__` of `sbnb.<mod>`, read from its source (nothing is imported)."""
    tree = ast.parse((ROOT / "sbnb" / f"{mod}.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return list(ast.literal_eval(node.value))
    return []


def api_entries(mod: str) -> list[tuple[str, str, str | None]]:
    """(name, kind, source of its value) of each name of `sbnb.<mod>`'s `__all__`, in its order; kind is what autodoc
    documents it as (function, class or data), a name imported from another sbnb module being what it is there."""
    defs, out = _definitions(mod), []
    for name in public_names(mod):
        kind, value = defs.get(name, (None, None))
        while kind in ("from", "alias"):
            defs_ = _definitions(value[0]) if kind == "from" else defs
            kind, value = defs_.get(value[1] if kind == "from" else value, (None, None))
        if kind is None:
            sys.exit(f"docs: sbnb/{mod}.py: {name} is in __all__, but is neither defined nor imported from sbnb there")
        out.append((name, kind, value))
    return out


def api_targets(pages: dict) -> dict:
    """{(notebook page, anchor) of an nbdev link: the public sbnb name it names, as autodoc ids it}, from _modidx."""
    out = {}
    for mod, syms in runpy.run_path(str(ROOT / "sbnb" / "_modidx.py"))["d"]["syms"].items():
        public = set(public_names(mod.removeprefix("sbnb.")))
        for name, (url, _) in syms.items():
            path = name.removeprefix(mod + ".").split(".")
            page, _, anchor = url.partition("#")
            if page in pages and path[0] in public and not any(p.startswith("_") for p in path):
                out[pages[page], anchor] = name
    return out


def unlink_dead_anchors(proc: Path, api: dict):
    """Keep nbdev's links to names that have a heading; a public name without one links to its entry in the API
    reference (`api`: see `api_targets`); the rest (private helpers: no show_doc) become plain text."""
    nbs = {p.name: json.loads(p.read_text()) for p in sorted(proc.glob("*.ipynb"))}
    anchors = {name: _anchors(nb) for name, nb in nbs.items()}
    link = re.compile(r"\[([^\]]+)\]\((\d\w*\.ipynb)#([^)\s]+)\)")

    def keep(m):
        if m[3] in anchors.get(m[2], ()):
            return m[0]
        if (m[2], m[3]) in api:
            return f"{{py:obj}}`{m[1].strip('`')} <{api[m[2], m[3]]}>`"
        return m[1]

    for name, nb in nbs.items():
        for c in nb["cells"]:
            if c["cell_type"] == "markdown":
                c["source"] = link.sub(keep, _src(c))
        (proc / name).write_text(json.dumps(nb, indent=1))


def api_page(mod: str, nb: str) -> str:
    """The API page of `sbnb.<mod>`: its docstring, then each name of its `__all__` (autodoc), linked to `nb`."""
    rst = [f".. automodule:: sbnb.{mod}", ""]
    for name, kind, value in api_entries(mod):
        rst.append(f".. auto{kind}:: sbnb.{mod}.{name}")
        if kind == "class":  # its fields (config classes have no docstrings for them) and methods, as in the source
            rst += ["   :members:", "   :undoc-members:", "   :member-order: bysource"]
        if kind == "data" and len(value) > 60:  # a table (a dict of presets, a registry): its notebook shows it
            rst.append("   :no-value:")
        rst.append("")
    return (
        f"# sbnb.{mod}\n\nThe public names of `sbnb.{mod}` (its `__all__`), in the order of its notebook, "
        f"[nbs/{nb}](../{nb}), which shows each at work.\n\n```{{eval-rst}}\n" + "\n".join(rst) + "```\n"
    )


def api_pages(src: Path, modules: dict):
    """The API reference: api/index.md and a page per module (`modules`: {module: its notebook's file name})."""
    api = src / "api"
    api.mkdir()
    for mod, nb in modules.items():
        (api / f"{mod}.md").write_text(api_page(mod, nb))
    toc = "\n".join(modules)
    (api / "index.md").write_text(
        "# API reference\n\nA page per module of `sbnb`: its public names with their signatures and docstrings. "
        "Every name is in the {ref}`genindex`, every module in the {ref}`modindex`.\n\n"
        f"```{{toctree}}\n:maxdepth: 1\n\n{toc}\n```\n"
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--execute",
        dest="execute",
        action="store_true",
        default=True,
        help="run notebooks that have no outputs (cached) so pages show outputs (default)",
    )
    ap.add_argument("--no-execute", dest="execute", action="store_false", help="render notebooks as committed")
    ap.add_argument("--out", default=str(ROOT / "_docs"), help="where the site goes")
    ap.add_argument("--cache", default=str(ROOT / ".docs_cache"), help="where executed notebooks are cached")
    ap.add_argument(
        "--only", default="[0-9]*.ipynb", help="render only the notebooks matching this glob (quick previews)"
    )
    a = ap.parse_args()
    build = ROOT / "_proc_docs"
    stage, proc, src = build / "stage", build / "proc", build / "src"
    shutil.rmtree(build, ignore_errors=True)
    stage.mkdir(parents=True)
    for nb in sorted((ROOT / "nbs").glob(a.only)):
        shutil.copy(nb, stage / nb.name)
    if a.execute:
        execute(stage, Path(a.cache))
    # nbdev_proc_nbs reads settings.ini from the current project: run it from the checkout on the staged notebooks.
    # (nbdev.serve.proc_nbs itself, not the nbdev_proc_nbs command, which first tries to download and install Quarto.)
    subprocess.run(
        [sys.executable, "-c", f"from nbdev.serve import proc_nbs; proc_nbs({str(stage)!r}, force=True, n_workers=1)"],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    shutil.move(str(ROOT / "_proc"), str(proc))
    nbs = sorted(proc.glob("[0-9]*.ipynb"))
    pages = {}
    for p in nbs:
        m = re.search(r"^output-file:\s*(\S+)", _src(json.loads(p.read_text())["cells"][0]), re.M)
        if m:
            pages[m.group(1)] = p.stem + ".ipynb"
    postprocess(proc, pages)
    unlink_dead_anchors(proc, api_targets(pages))
    src.mkdir(parents=True)
    for p in nbs:
        shutil.copy(p, src / p.name)
    modules = {m: p.name for p in nbs if (m := _default_exp(json.loads((ROOT / "nbs" / p.name).read_text())))}
    api_pages(src, modules)
    # README is the home page; its links into nbs/ point at the rendered pages.
    readme = (ROOT / "README.md").read_text()
    readme = re.sub(r"\(nbs/(\d\w*)\.ipynb\)", r"(\1.ipynb)", readme)

    # images of the repository (a results figure) travel with the page
    def _image(m):
        f = ROOT / m.group(2)
        if not f.is_file():
            return m.group(0)
        dest = src / "_readme" / m.group(2)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, dest)
        return f"![{m.group(1)}](_readme/{m.group(2)})"

    readme = re.sub(r"!\[([^\]]*)\]\((?!https?:)([^)\s]+)\)", _image, readme)
    # links to other files of the repository (not part of the site) become the file's path, shown as code
    readme = re.sub(
        r"(?<!!)\[([^\]]+)\]\((?!https?:|#|\d\w*\.ipynb)([^)\s]+)\)",
        lambda m: f"`{m.group(2)}`" if m.group(1).strip("`") == m.group(2) else f"{m.group(1)} (`{m.group(2)}`)",
        readme,
    )
    toc = "\n".join(p.stem for p in nbs)
    (src / "index.md").write_text(
        readme + f"\n\n```{{toctree}}\n:hidden:\n:maxdepth: 1\n\n{toc}\n```\n"
        "\n```{toctree}\n:hidden:\n:caption: Reference\n\napi/index\n```\n"
    )
    # Figures that notebooks embed by relative path (e.g. results/...) travel with the pages.
    r = subprocess.run([str(BIN / "sphinx-build"), "-q", "-b", "html", "-c", str(DOCS), str(src), a.out], cwd=ROOT)
    if r.returncode:
        sys.exit(r.returncode)
    print(f"docs: site written to {a.out}/index.html")


if __name__ == "__main__":
    main()
