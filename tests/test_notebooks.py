"""Every notebook in nbs/ runs top to bottom as one pytest case, so a failing notebook fails CI by name.

A notebook whose first code cells contain a line `# sbnb-test: slow <reason>` (or `gpu`) is skipped in the default
run; `pytest -m slow` runs it. Cells marked `#| slow` / `#| gpu` (nbdev's tst_flags) are skipped inside notebooks.
"""

import json, re
from pathlib import Path
import pytest
from nbdev.test import test_nb as run_notebook  # renamed so that pytest does not collect it

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "nbs").glob("[0-9]*.ipynb"))
_MARK = re.compile(r"^#\s*sbnb-test:\s*(slow|gpu)\b\s*(.*)$", re.M)


def _marks(nb: Path):
    cells = [c for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"][:3]
    src = "\n".join("".join(c["source"]) for c in cells)
    return [getattr(pytest.mark, m.group(1))(reason=m.group(2) or m.group(1)) for m in _MARK.finditer(src)]


@pytest.mark.parametrize("nb", [pytest.param(nb, id=nb.name, marks=_marks(nb)) for nb in NOTEBOOKS])
def test_notebook(nb, monkeypatch, tmp_path):
    monkeypatch.chdir(nb.parent)  # notebooks use paths relative to nbs/, as in Jupyter
    ok, secs = run_notebook(nb, skip_flags=["slow", "gpu"], force_flags=[], do_print=False, showerr=True)
    assert ok, f"{nb.name} failed (see the error above)"
