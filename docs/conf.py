# Sphinx configuration for the sbnb documentation site (built by docs/build.py; see `make docs`).
import configparser, sys
from pathlib import Path

_docs = Path(__file__).resolve().parent
# The API pages document this checkout's sbnb (whichever one the environment installed); md_docstrings lives here.
sys.path[:0] = [str(_docs.parent), str(_docs)]
_ini = configparser.ConfigParser(delimiters=["="])
_ini.read(_docs.parent / "settings.ini")
_cfg = _ini["DEFAULT"]

project = "sbnb"
author = _cfg["author"]
copyright = _cfg["copyright"]
release = version = _cfg["version"]

extensions = ["myst_nb", "sphinx.ext.autodoc", "md_docstrings"]
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "attrs_inline"]
# `$$...$$` inside a paragraph is display math, as in Jupyter, GitHub and Quarto (MyST otherwise reads `$$x$$` as
# `$` + inline `$x$` + `$`, leaving raw TeX and MathJax errors such as "Misplaced &" on the page).
myst_dmath_double_inline = True
myst_heading_anchors = 3
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "**.ipynb_checkpoints", "*.yml"]
# Only cosmetic warnings are silenced (show_doc's H3 right under a page title; code that Pygments cannot lex):
# a dead link (myst.xref_missing) or an output Sphinx cannot show (mystnb.unknown_mime_type) is broken output.
suppress_warnings = ["myst.header", "misc.highlighting_failure"]

# Notebooks arrive with their outputs already in place (docs/build.py executed them when asked): never run a kernel here.
nb_execution_mode = "off"
nb_merge_streams = True
# Markdown that a cell displays (tables of results, the pilot) is parsed as MyST, whose GFM tables render as tables;
# myst-nb's default, CommonMark, has no tables and showed them as raw `|` text.
nb_render_markdown_format = "myst"

html_theme = "furo"
html_title = f"sbnb {release}"
html_static_path = ["_static"]
html_theme_options = {"source_repository": "", "navigation_with_keys": True}
html_permalinks_icon = "#"
# MathJax 3 from a vendored local file: no page loads anything from the network.
mathjax_path = "mathjax/tex-svg.js"
mathjax3_config = {
    "tex": {"inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]]},
    "options": {"enableMenu": False},
}
html_copy_source = False
html_show_sourcelink = False

# The API reference: docs/build.py writes api/<module>.md, an autodoc directive per name of the module's `__all__`.
autodoc_preserve_defaults = True  # defaults as written (`Path("runs")`), not the repr of the value
add_module_names = False  # `select(...)` on the page of sbnb.select; the index still names the module
