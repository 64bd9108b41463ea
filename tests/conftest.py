"""Shared pytest set-up: markers, offline guards, paths and a benchmark folder made from the shipped sample."""

import os, socket
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"


def pytest_configure(config):
    # Never let a test reach a hub: transformers / datasets / huggingface_hub read these at call time.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("SBNB_PROGRESS", "0")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_collection_modifyitems(config, items):
    """slow / gpu tests are skipped unless asked for with `-m slow` / `-m gpu` (or SBNB_RUN_SLOW=1)."""
    markexpr = config.getoption("-m") or ""
    run_slow = "slow" in markexpr or os.environ.get("SBNB_RUN_SLOW") == "1"
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except ImportError:
        has_gpu = False
    for item in items:
        if "slow" in item.keywords and not run_slow:
            item.add_marker(pytest.mark.skip(reason="slow: run with `pytest -m slow` or SBNB_RUN_SLOW=1"))
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(pytest.mark.skip(reason="gpu: needs a CUDA device"))


class _NoNetwork(socket.socket):
    """A socket that refuses to connect anywhere but loopback."""

    def connect(self, address):
        _check(address)
        return super().connect(address)

    def connect_ex(self, address):
        _check(address)
        return super().connect_ex(address)


def _check(address):
    if _allowed(address):
        return
    raise OSError(f"network access attempted in a test: {address!r} (tests must stay offline)")


def _allowed(address):
    if isinstance(address, (str, bytes)):
        return True  # AF_UNIX path
    host = address[0] if isinstance(address, tuple) else address
    return host in ("127.0.0.1", "::1", "localhost") or str(host).startswith("127.")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Fail any attempt to open a non-loopback connection during a test."""
    monkeypatch.setattr(socket, "socket", _NoNetwork)
    orig = socket.create_connection

    def create_connection(address, *a, **k):
        _check(address)
        return orig(address, *a, **k)

    monkeypatch.setattr(socket, "create_connection", create_connection)
    yield


@pytest.fixture(scope="session")
def sample_benchmarks(tmp_path_factory):
    """Every benchmark the readers know, in their layout, written from the shipped `data/sample` rows (the natural-language
    question and worked solution; GSM8K train from the sample's training split): real code paths, no real files. Shared
    by the session: copy it before changing it."""
    from sbnb.benchmarks import FETCHABLE, write_benchmark
    from sbnb.core import read_jsonl

    d = tmp_path_factory.mktemp("sample_benchmarks")
    for split in ("test", "train"):
        rows = [
            dict(r, instruction=r["question"], output=r["solution"])
            for r in read_jsonl(ROOT / "data" / "sample" / f"{split}.jsonl")
        ]
        for name in FETCHABLE:
            if (name == "gsm8k-train") == (split == "train"):
                write_benchmark(name, rows, d)
    return d


@pytest.fixture(scope="session")
def planted():
    "Trajectories with a planted slow subset per source (and two small sources): (rows, the slow ids of the large ones)."
    from sbnb.select import planted_trajectories

    traj, slow = planted_trajectories({"arith": 150, "algebra": 90, "geo": 120, "tiny": 12, "mini": 20}, seed=1)
    return traj, slow


SMOKE_ARGV = [
    "experiment",
    "--preset",
    "smoke",
    "seeds=1",
    "arms=adamw,adamw+up,adamw+random,adamw+oracle,adamw+aug,adamw+small,"
    "adamw+up-self,adamw+up-sched,adamw+up-iw,adamw+up-logabs,muon,muon+up,sam",
]


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    "The tests' one smoke run (one seed, every arm kind, both budgets): the pinned numbers and the experiment's tables read it."
    from sbnb.cli import main

    out = tmp_path_factory.mktemp("smoke")
    assert main(SMOKE_ARGV + ["--out", str(out)]) == 0
    return out / "smoke"
