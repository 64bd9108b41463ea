"""sbnb.jobs: the bounded pool starts nothing after a job fails; without a failure every job runs, results in order."""

import dataclasses, time
from pathlib import Path
import pytest
from sbnb.jobs import run_jobs


@dataclasses.dataclass(frozen=True)
class _Job:
    i: int
    dir: str
    threads: int = 1


def _fail_first(job):
    "A job for `run_jobs`: the first one fails at once, every other one takes two seconds and leaves a mark."

    if job.i == 0:
        raise RuntimeError("job 0 fails")
    time.sleep(2.0)
    Path(job.dir, f"ran-{job.i}").write_text("")
    return job.i


def test_map_starts_nothing_after_a_job_fails(tmp_path, capsys):
    # two workers, six jobs: job 0 fails at once while job 1 runs. Job 1 finishes (a finished run is kept for --resume);
    # nothing else starts (before, every queued job still ran: a failed pair of proxies cost another pair's 23 minutes)
    jobs = [_Job(i, str(tmp_path)) for i in range(6)]
    with pytest.raises(RuntimeError, match="job 0 fails"):
        run_jobs(_fail_first, jobs, 2, "test jobs")
    assert sorted(p.name for p in tmp_path.glob("ran-*")) == ["ran-1"]
    assert "4 not started will not start; waiting for the 1 running" in capsys.readouterr().err
    test = [_Job(i, str(tmp_path)) for i in range(1, 5)]  # and without a failure every job runs, results in job order
    assert run_jobs(_fail_first, test, 2, "test jobs") == [1, 2, 3, 4]
