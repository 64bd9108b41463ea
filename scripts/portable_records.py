"""One-off: rewrite the run records committed under results/ so that none holds an absolute path.

Records written before `sbnb.record.portable_path` hold the absolute paths of the machines that made them: the command
(`argv`), output folders (`config.out`, `--out`), the model (`model.config`, `model.file`) and the corpus. This script
rewrites each such path as `sbnb.record.portable_path` would have written it on that machine, in place; nothing else in
a file changes (every path string is replaced where it stands, the rest of the text is kept byte for byte, and every
file is parsed before and after to check that only those strings differ).

    .venv/bin/python scripts/portable_records.py           # rewrite, print each change
    .venv/bin/python scripts/portable_records.py --check   # only say what would change; exit 1 if anything would

What it assumes about the machines that wrote the records (true of every record committed when it was run):

- `CHECKOUTS`: folders that were clean checkouts or worktrees of this repository (`/work/main`, `/work/<worktree>`,
  `/tmp/work/snap*`, `/tmp/exp_tree`). A path inside one is written relative to the repository
  (`/tmp/work/snap5/data/models/smollm2-135m` -> `data/models/smollm2-135m`).
- The folder a record was written in: every committed record was made by `sbnb experiment` (its `argv`, or that of
  the `run.json` beside it), whose run folder is OUT/NAME (`--out`; `--name`, else the preset); a record inside the
  run's `cache/` was written at OUT/NAME/cache/..., any other at OUT/NAME itself (the records were promoted or copied
  into results/ from there). A path inside that folder is written `./x` (or `.`), one outside every checkout
  relative to it (`--out /tmp/work/pilot` in a record written at /tmp/work/pilot/default -> `..`).
- The home directories of those machines held none of the paths (none is written `~/...`).
"""

import argparse, json, re, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from sbnb.record import portable, record_path as path_part  # noqa: E402

CHECKOUTS = re.compile(r"^(/work/[^/]+|/tmp/work/snap\d*|/tmp/exp_tree)(?=/|$)")
NONE = "/"  # `portable_path` ignores a repository or home directory that is the filesystem root


def strings(o):
    "Every string value in the JSON data `o` (keys aside)."
    if isinstance(o, dict):
        for v in o.values():
            yield from strings(v)
    elif isinstance(o, list):
        for v in o:
            yield from strings(v)
    elif isinstance(o, str):
        yield o


def arg(argv: list[str], flag: str) -> str | None:
    "The value of `flag` in `argv` (`--flag V` or `--flag=V`), or None."
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def written_in(file: Path, data) -> Path:
    "The folder the record `file` (repository-relative) was written in, on the machine that ran it."
    rec = (
        data if isinstance(data, dict) and "argv" in data else json.loads((ROOT / file.parent / "run.json").read_text())
    )
    argv, cfg = rec["argv"], rec.get("config") or {}
    if "experiment" not in argv or arg(argv, "--out") is None:
        raise SystemExit(f"{file}: not written by `sbnb experiment --out ...` ({argv}); add a rule for it")
    out, name = Path(arg(argv, "--out")), arg(argv, "--name") or arg(argv, "--preset") or cfg.get("preset")
    run = out if out.name == name else out / name  # sbnb.experiment.run_root
    parts = file.parent.parts
    return run.joinpath(*parts[parts.index("cache") :]) if "cache" in parts else run


def rewrite(s: str, base: Path) -> str:
    "The string `s` with its absolute path written as `portable_path` would have on the machine that wrote it."
    p = path_part(s)
    m = CHECKOUTS.match(p) if p else None
    return s if p is None else portable(s, base, m.group(1) if m else NONE, NONE)


def committed() -> list[Path]:
    "The JSON files committed under results/."
    out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "results"], capture_output=True, text=True, check=True)
    return [Path(f) for f in out.stdout.split() if f.endswith((".json", ".jsonl"))]


def load(text: str, jsonl: bool):
    return [json.loads(line) for line in text.splitlines() if line.strip()] if jsonl else json.loads(text)


def same_but_paths(old, new, change: dict, where: str = "") -> None:
    "Check that `new` is `old` with exactly the strings of `change` replaced: same keys, order, types and numbers."
    assert type(old) is type(new), where
    if isinstance(old, dict):
        assert list(old) == list(new), where
        for k in old:
            same_but_paths(old[k], new[k], change, f"{where}.{k}")
    elif isinstance(old, list):
        assert len(old) == len(new), where
        for i, (a, b) in enumerate(zip(old, new)):
            same_but_paths(a, b, change, f"{where}[{i}]")
    else:
        assert new == change.get(old, old) if isinstance(old, str) else new == old, where


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--check", action="store_true", help="only say what would change; exit 1 if anything would")
    args = p.parse_args(argv)
    changed = 0
    for f in committed():
        text = (ROOT / f).read_text(encoding="utf-8")
        data = load(text, f.suffix == ".jsonl")
        paths = sorted({s for s in strings(data) if path_part(s)})
        if not paths:
            continue
        base = written_in(f, data[0] if isinstance(data, list) else data)
        change = {s: rewrite(s, base) for s in paths}
        new = text
        for old, to in change.items():
            new = new.replace(json.dumps(old), json.dumps(to))
        same_but_paths(data, load(new, f.suffix == ".jsonl"), change)
        assert not any(path_part(s) for s in strings(load(new, f.suffix == ".jsonl"))), f
        changed += 1
        print(f"{f} (written in {base}):")
        for old, to in change.items():
            print(f"    {old}  ->  {to}")
        if not args.check:
            (ROOT / f).write_text(new, encoding="utf-8")
    print(f"{changed} file(s) {'would change' if args.check else 'rewritten'}")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
