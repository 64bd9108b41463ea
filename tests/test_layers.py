"""The house's floors: a module imports only modules of lower-numbered notebooks (imports inside functions included),
and the theory stays light (no torch or transformers at import)."""

import ast, json, re, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]


def notebook_numbers() -> dict[str, int]:
    "module name -> the number of the notebook that exports it (`#| default_exp`)."
    out = {}
    for nb in sorted((ROOT / "nbs").glob("[0-9]*.ipynb")):
        for c in json.loads(nb.read_text())["cells"]:
            src = c["source"] if isinstance(c["source"], str) else "".join(c["source"])
            m = re.search(r"^#\|\s*default_exp\s+(\S+)", src, re.M)
            if m:
                out[m.group(1)] = int(nb.name.split("_")[0])
    return out


def sbnb_imports(path: Path) -> list[tuple[int, str]]:
    "(line, module) of every sbnb module `path` imports, anywhere in the file (functions, classes, conditionals)."
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                names = [node.module] if node.module else [a.name for a in node.names]
            elif node.module == "sbnb":
                names = [a.name for a in node.names]
            elif node.module and node.module.startswith("sbnb."):
                names = [node.module.split(".")[1]]
            else:
                names = []
            found += [(node.lineno, n.split(".")[0]) for n in names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name.split(".")[1]) for a in node.names if a.name.startswith("sbnb.")]
    return found


NUMBERS = notebook_numbers()


def test_every_module_has_a_notebook():
    mods = {p.stem for p in (ROOT / "sbnb").glob("*.py") if not p.stem.startswith("_")}
    assert mods == set(NUMBERS), (
        f"modules without a notebook: {mods - set(NUMBERS)}; notebooks without a module: {set(NUMBERS) - mods}"
    )


@pytest.mark.parametrize("mod", sorted(NUMBERS))
def test_imports_only_go_down(mod):
    bad = [
        (line, m, NUMBERS.get(m))
        for line, m in sbnb_imports(ROOT / "sbnb" / f"{mod}.py")
        if m in NUMBERS and m != mod and NUMBERS[m] > NUMBERS[mod]
    ]
    assert not bad, f"sbnb/{mod}.py (notebook {NUMBERS[mod]:02d}) imports higher layers: " + ", ".join(
        f"line {l}: sbnb.{m} (notebook {n:02d})" for l, m, n in bad
    )


def test_the_guard_sees_imports_inside_functions(tmp_path):
    f = tmp_path / "m.py"
    f.write_text(
        "import os\ndef f():\n    from sbnb.experiment import run_experiment\n    from .data import x\n    import sbnb.train\n"
    )
    assert sbnb_imports(f) == [(3, "experiment"), (4, "data"), (5, "train")] or sorted(sbnb_imports(f)) == [
        (3, "experiment"),
        (4, "data"),
        (5, "train"),
    ]


@pytest.mark.parametrize("mod", ["theory", "select", "core", "answers", "benchmarks"])
def test_light_modules_load_neither_torch_nor_transformers(mod):
    code = f"import sys, sbnb.{mod}; print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.strip()
    assert out == "[]", f"import sbnb.{mod} loaded {out}"
