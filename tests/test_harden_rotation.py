"""Issue 11 items 1 and 2: rotation between runs and under --follow loses nothing and never
resumes a different file at an old offset."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

from correlate_scenarios.helpers import correlate_proc
from test_correlate_cli import CONFIG, _accesses, _append, _hosts, _stop, _wait_for


def _run(tmp_path, *logs: str) -> tuple[list[str], str]:
    """One correlate run on the shared state and output: (hosts of the new findings, stderr)."""
    out = tmp_path / "out.jsonl"
    before = len(_hosts(str(out))) if out.exists() else 0
    proc = correlate_proc(["--config", CONFIG, "--state", str(tmp_path / "s.sqlite"), "--output", str(out), *logs])
    assert proc.returncode == 0, proc.stderr
    return _hosts(str(out))[before:], proc.stderr.decode()


def _names(first: int, count: int) -> list[str]:
    return [f"h-{i}" for i in range(first, first + count)]


def test_restart_after_rename_finishes_the_old_file_then_reads_the_new_one_whole(tmp_path) -> None:
    """The issue's repro: the new file starts with the same first line and is longer than the old offset."""
    log = str(tmp_path / "live.log")
    first = _accesses(1)
    _append(log, first + _accesses(9, start=1))
    assert _run(tmp_path, log)[0] == _names(0, 10)
    _append(log, _accesses(3, start=10))  # written after our read, before the rotation
    os.rename(log, log + ".1")
    _append(log, first + _accesses(30, start=20))  # same first line, far longer than the old offset
    hosts, err = _run(tmp_path, log)
    assert sorted(hosts) == sorted(_names(10, 3) + _names(20, 30)), hosts
    assert "live.log is not the file read before" in err and "live.log.1" in err
    assert _run(tmp_path, log)[0] == []  # and nothing twice


def test_a_different_file_with_the_same_first_line_is_never_resumed_at_the_old_offset(tmp_path) -> None:
    log = str(tmp_path / "live.log")
    first = _accesses(1)
    _append(log, first + _accesses(9, start=1))
    _run(tmp_path, log)
    os.unlink(log)  # the old file is gone: nothing to finish
    _append(log, first + _accesses(30, start=20))
    hosts, err = _run(tmp_path, log)
    assert sorted(hosts) == sorted(_names(20, 30)), hosts
    assert "not found" in err and "from the start" in err


def test_restart_after_copytruncate_reads_the_rest_from_the_copy(tmp_path) -> None:
    log = str(tmp_path / "live.log")
    _append(log, _accesses(10))
    _run(tmp_path, log)
    _append(log, _accesses(3, start=10))
    shutil.copyfile(log, log + ".1")
    os.truncate(log, 0)
    _append(log, _accesses(20, start=20))  # longer than the old offset: resuming would skip lines
    hosts, err = _run(tmp_path, log)
    assert sorted(hosts) == sorted(_names(10, 3) + _names(20, 20)), hosts
    assert "truncated" in err and "live.log.1" in err


def test_the_rotated_file_named_on_the_command_line_is_finished_once_in_either_order(tmp_path) -> None:
    for order in (0, 1):
        work = tmp_path / f"o{order}"
        (work / "saved").mkdir(parents=True)
        log = str(work / "live.log")
        _append(log, _accesses(10))
        _run(work, log)
        _append(log, _accesses(3, start=10))
        moved = str(work / "saved" / "kept.log")  # not beside it: only the command line names it
        os.rename(log, moved)
        _append(log, _accesses(5, start=20))
        hosts, _ = _run(work, *((moved, log) if order == 0 else (log, moved)))
        assert hosts == _names(10, 3) + _names(20, 5), (order, hosts)
        assert _run(work, moved, log)[0] == []


def test_two_rotations_between_runs_lose_no_generation(tmp_path) -> None:
    log = str(tmp_path / "live.log")
    _append(log, _accesses(10))
    _run(tmp_path, log)
    _append(log, _accesses(2, start=10))
    os.rename(log, log + ".1")
    time.sleep(0.01)
    _append(log, _accesses(4, start=20))  # the generation no run saw at the path
    os.rename(log + ".1", log + ".2")
    os.rename(log, log + ".1")
    time.sleep(0.01)
    _append(log, _accesses(3, start=30))
    hosts, err = _run(tmp_path, log)
    assert hosts == _names(10, 2) + _names(20, 4) + _names(30, 3), hosts
    assert "not read before" in err


def test_follow_survives_two_rotations_within_one_second(tmp_path) -> None:
    """The issue's repro: mv live.log live.log.1; cp part.ab live.log; sleep 0.5; mv live.log live.log.2; cp part.ac live.log."""
    log = str(tmp_path / "live.log")
    _append(log, _accesses(5))
    out = str(tmp_path / "follow.jsonl")
    child = subprocess.Popen([sys.executable, "-m", "osq_dbwatch", "correlate", "--follow", "--config", CONFIG, "--state",
                              str(tmp_path / "f.sqlite"), "--output", out, log], stderr=subprocess.PIPE)
    try:
        assert len(_wait_for(out, 5)) == 5
        os.rename(log, log + ".1")
        _append(log, _accesses(5, start=10))
        time.sleep(0.5)
        os.rename(log, log + ".2")
        _append(log, _accesses(5, start=20))
        _wait_for(out, 15, timeout=15)
        time.sleep(0.3)
    finally:
        _stop(child)
        assert child.stderr is not None
        child.stderr.close()
    assert sorted(_hosts(out)) == sorted(_names(0, 5) + _names(10, 5) + _names(20, 5))


def test_an_old_file_compressed_by_logrotate_is_finished_from_the_gzip(tmp_path) -> None:
    """logrotate with compress and no delaycompress: the old file is only LOG.1.gz (a new inode)."""
    import gzip

    log = str(tmp_path / "live.log")
    _append(log, _accesses(10))
    _run(tmp_path, log)
    _append(log, _accesses(3, start=10))
    with open(log, "rb") as src, gzip.open(log + ".1.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.unlink(log)
    _append(log, _accesses(5, start=20))
    hosts, err = _run(tmp_path, log)
    assert hosts == _names(10, 3) + _names(20, 5), hosts
    assert "live.log.1.gz after line 10" in err
    assert _run(tmp_path, log)[0] == []
