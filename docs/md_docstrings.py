"""A Sphinx extension: sbnb's docstrings, written in the markdown nbdev shows, read by autodoc as reStructuredText.

The docstrings use little markdown: code spans, now and then `*emphasis*`. In reST a code span is a literal (or a
link, when it names a public sbnb name: one of the documented module's `__all__`, `Class.attr` of one, or a qualified
`sbnb.<module>.<name>`); the characters reST reads as markup and markdown does not (`|`, a lone `*`, `name_`,
backslashes) are escaped, so `|a ∩ b|` or `k*` read as they do in the notebooks.
"""

import inspect, re, sys

_CODE = re.compile(r"(`[^`\n]+`)")
_EMPH = re.compile(r"(?<![\\\w*])(\*{1,2})(?=[^\s*])(.+?)(?<=[^\s*])\1(?![\w*])")
_NAME = re.compile(r"[A-Za-z_]\w*(?:\.\w+)*")
_OPENS, _CLOSES = "-:/'\"<([{", "-.,:;!?\\/'\")]}>"


def _module_of(name):
    """The longest prefix of the dotted `name` that is an imported sbnb module, or None."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        m = sys.modules.get(".".join(parts[:i]))
        if m is not None and m.__name__.split(".")[0] == "sbnb":
            return m
    return None


def target(code, module):
    """The role and id (as autodoc writes it) of the public sbnb object that the code span `code` names, or None."""
    name = code.removesuffix("()")
    if not _NAME.fullmatch(name):
        return None
    full = name if name.startswith("sbnb.") else f"{module}.{name}" if module else name
    mod = _module_of(full)
    if mod is None:
        return None
    if full == mod.__name__:
        return "py:mod", full
    path = full[len(mod.__name__) + 1 :].split(".")
    if path[0] not in getattr(mod, "__all__", ()):
        return None
    obj = mod
    for part in path:
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return "py:obj", full


def _text(s):
    """Markdown text (no code spans) as reST: backslashes, `|`, `name_` and lone `*` escaped; `*emphasis*` kept."""
    s = s.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`")
    s = re.sub(r"(?<=\w)_(?!\w)", r"\\_", s)
    out, end = "", 0
    for m in _EMPH.finditer(s):
        out += s[end : m.start()].replace("*", "\\*") + m[0]
        end = m.end()
    return out + s[end:].replace("*", "\\*")


def _code(code, module):
    """A code span as reST: a cross-reference for a public sbnb name, else an inline literal."""
    code = code.strip()
    t = target(code, module)
    return f":{t[0]}:`{code} <{t[1]}>`" if t else f"``{code}``"


def md_to_rst(text, module=None):
    """The markdown docstring `text` of an object of `module` (its name) as reST."""
    chunks = _CODE.split(text)
    out = ""
    for i, chunk in enumerate(chunks):
        if i % 2 == 0:
            out += _text(chunk)
            continue
        # reST markup starts after a space or an opening mark and ends before a space or punctuation; next to
        # anything else (`Selection`s) an escaped space, which reST drops, sets it apart
        nxt = chunks[i + 1][:1] if i + 1 < len(chunks) else ""
        before = "\\ " if out and not (out[-1].isspace() or out[-1] in _OPENS) else ""
        after = "\\ " if nxt and not (nxt.isspace() or nxt in _CLOSES) else ""
        out += before + _code(chunk[1:-1], module) + after
    return out


def process_docstring(app, what, name, obj, options, lines):
    """autodoc-process-docstring: rewrite the docstring's lines in place. A constant has no docstring of its own:
    autodoc offers its type's (`dict`'s, or a config class's for a config instance), which is dropped."""
    if what in ("data", "attribute") and inspect.cleandoc("\n".join(lines)) == inspect.cleandoc(
        type(obj).__doc__ or ""
    ):
        lines[:] = []
        return
    mod = _module_of(name)
    lines[:] = md_to_rst("\n".join(lines), mod.__name__ if mod else None).split("\n")


def setup(app):
    app.connect("autodoc-process-docstring", process_docstring)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
