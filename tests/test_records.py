"""Run records are portable: no file committed under results/ holds an absolute path, and a record written now holds none
(`sbnb.record.portable_path`: `./x` from the record's folder, `x/y` from the repository, `~/x` from home)."""

import json, os, re, subprocess, sys
from pathlib import Path
import pytest
from sbnb.core import read_json
from sbnb.record import RunRecord, run_record, write_record, write_record_beside

ROOT = Path(__file__).resolve().parents[1]
# a whole string that is an absolute path ('/x...', 'C:\x...'), or one after 'KEY=' ('--out=/x', 'out=/x')
ABS_STRING = re.compile(r"^(?:[\w.-]+=)?(?:/(?!/)[^\s/]|[A-Za-z]:[\\/])")
# one inside text: '/a/b...' after no word character, '.', ':', '/', '~' or '\' (not 'tokens/s', '1/2', URLs, '~/x')
ABS_IN_TEXT = re.compile(r"(?<![\w.:/~\\-])/[\w.+-]+/[\w.+/-]*|(?<![\w])[A-Za-z]:\\[\w.]")


def strings(o):
    "Every string value in the JSON data `o`."
    if isinstance(o, dict):
        for v in o.values():
            yield from strings(v)
    elif isinstance(o, list):
        for v in o:
            yield from strings(v)
    elif isinstance(o, str):
        yield o


def absolute_paths(path: Path) -> list[str]:
    "The absolute paths a text file holds (JSON and JSON Lines: in its string values); [] for a binary file."
    raw = path.read_bytes()
    if b"\0" in raw:
        return []
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return []
    if path.suffix in (".json", ".jsonl"):
        data = (
            [json.loads(line) for line in text.splitlines() if line.strip()]
            if path.suffix == ".jsonl"
            else json.loads(text)
        )
        found = [s for s in strings(data) if ABS_STRING.match(s) or ABS_IN_TEXT.search(s)]
    else:
        found = ABS_IN_TEXT.findall(text)
    return sorted(set(found))


def committed_results() -> list[Path]:
    "The files committed under results/ (every file there when this is not a git checkout)."
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "results"], capture_output=True, check=True)
        files = [ROOT / f for f in out.stdout.decode().split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        files = []
    return files or [p for p in (ROOT / "results").rglob("*") if p.is_file()]


def test_the_scanner_finds_paths_and_nothing_else(tmp_path):
    (tmp_path / "r.json").write_text(
        json.dumps(
            {
                "argv": ["/work/main/.venv/bin/sbnb", "--out=/tmp/x", "results", "~/.cache/m", "./x", "../y"],
                "ok": ["1/2", "/", "tokens/s", "https://example.org/a/b", "hub: org/name", "lr=3e-4"],
                "note": "written at /home/me/sbnb/results, on C:\\Users\\me too",
            }
        )
    )
    (tmp_path / "r.md").write_text("see `results/default/`, 5.5 s/step, https://x.org/a/b; made in /tmp/work/pilot.\n")
    assert absolute_paths(tmp_path / "r.json") == [
        "--out=/tmp/x",
        "/work/main/.venv/bin/sbnb",
        "written at /home/me/sbnb/results, on C:\\Users\\me too",
    ]
    assert absolute_paths(tmp_path / "r.md") == ["/tmp/work/pilot."]
    (tmp_path / "p.png").write_bytes(b"\x89PNG\0/work/main")
    assert absolute_paths(tmp_path / "p.png") == []


def test_no_committed_result_holds_an_absolute_path():
    files = committed_results()
    assert len(files) > 100 and any(f.name == "run.json" for f in files)
    bad = {str(f.relative_to(ROOT)): found for f in files if (found := absolute_paths(f))}
    assert not bad, "absolute paths in committed results (scripts/portable_records.py rewrites them): " + "; ".join(
        f"{f}: {', '.join(map(repr, found))}" for f, found in bad.items()
    )


@pytest.fixture
def home(tmp_path, monkeypatch):
    h = tmp_path / "home"
    monkeypatch.setenv("HOME", str(h))
    return h


def resolve(s: str, folder: Path, home: Path) -> Path:
    "Where a recorded path points: `./x`, `../x` from the record's folder, `~/x` from home, `x/y` from the repository."
    if s in (".", "..") or s.startswith(("./", "../")):
        return (folder / s).resolve()
    return (home / s[2:]).resolve() if s.startswith("~/") else (ROOT / s).resolve()


def test_a_record_written_now_holds_no_absolute_path(tmp_path, home, monkeypatch):
    out, data = tmp_path / "runs" / "r", ROOT / "data" / "sample" / "train.jsonl"
    monkeypatch.setattr(
        sys, "argv", [str(ROOT / ".venv" / "bin" / "sbnb"), "train", "--out", str(out), f"--data={data}"]
    )
    cfg = {
        "out": str(out),
        "data": str(data),
        "cache": str(home / ".cache" / "sbnb"),
        "other": str(tmp_path / "o"),
        "lr": 1e-3,
    }
    with RunRecord(out, cfg, seed=0, model={"file": str(home / "m.gguf"), "spec": "smollm2-135m"}) as rr:
        rr.record["late"] = str(out / "checkpoint-1")  # added mid-run
    write_record_beside(out / "traj.jsonl", run_record(cfg))
    write_record(out / "train_config.json", cfg)
    for f in ("run.json", "run-traj.jsonl.json", "train_config.json"):
        assert absolute_paths(out / f) == [], f
    rec = read_json(out / "run.json")
    assert rec["argv"] == [".venv/bin/sbnb", "train", "--out", ".", "--data=data/sample/train.jsonl"]
    assert rec["config"] == {
        "out": ".",
        "data": "data/sample/train.jsonl",
        "cache": "~/.cache/sbnb",
        "other": "../../o",
        "lr": 1e-3,
    }
    assert (rec["model"], rec["late"]) == ({"file": "~/m.gguf", "spec": "smollm2-135m"}, "./checkpoint-1")
    for was, now in [
        (out, "."),
        (data, rec["config"]["data"]),
        (tmp_path / "o", "../../o"),
        (home / "m.gguf", "~/m.gguf"),
    ]:
        assert resolve(now, out, home) == was.resolve()  # each points where the absolute path did
    assert read_json(out / "train_config.json") == rec["config"]


def test_a_training_run_records_no_absolute_path(tmp_path, home, monkeypatch):
    "One step of `sbnb.train.train` given absolute paths everywhere: its run.json and train_config.json hold none."
    import torch
    from sbnb.train import TrainConfig, train

    sample = ROOT / "data" / "sample"
    monkeypatch.setattr(sys, "argv", [str(ROOT / ".venv" / "bin" / "sbnb"), "train", "--out", str(tmp_path / "run")])
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = TrainConfig(
            model="tiny-llama",
            data=str(sample / "train.jsonl"),
            tokenizer=str(sample / "tokenizer"),
            out=str(tmp_path / "run"),
            max_steps=1,
            batch_size=2,
            max_length=256,
            save_steps=0,
            save_model=False,
        )
        run = train(cfg)
    finally:
        torch.set_num_threads(n)
    for f in ("run.json", "train_config.json"):
        assert absolute_paths(run / f) == [], f
    tc = read_json(run / "train_config.json")
    assert (tc["out"], tc["data"], tc["tokenizer"]) == (".", "data/sample/train.jsonl", "data/sample/tokenizer")
    assert read_json(run / "run.json")["argv"][-2:] == ["--out", "."] and os.path.isabs(
        cfg.out
    )  # the config itself kept
