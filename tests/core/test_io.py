import json
from pathlib import Path

import pytest

from core.io import atomic_path, atomic_write_json, read_json


def test_atomic_write_keeps_the_old_file_when_the_write_fails(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "run.json"
    atomic_write_json(target, {"old": True})

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", broken_replace)
    with pytest.raises(OSError):
        atomic_write_json(target, {"new": True})
    assert json.loads(target.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # no temp file left behind


def test_atomic_path_leaves_nothing_when_the_writer_fails(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "factors.safetensors"
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise KeyboardInterrupt
    assert list(target.parent.iterdir()) == []
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"whole")
    assert target.read_bytes() == b"whole" and [p.name for p in target.parent.iterdir()] == [target.name]


def test_read_json_is_none_for_missing_corrupt_or_non_object_files(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "bytes.json").write_bytes(b"\xff\xfe\x00")
    assert [read_json(tmp_path / n) for n in ("missing.json", "bad.json", "list.json", "bytes.json")] == [None] * 4


def test_file_lock_makes_the_second_holder_wait(tmp_path: Path) -> None:
    import threading
    import time

    from core.io import file_lock

    target = tmp_path / "sub" / "factors.safetensors"
    events: list[str] = []

    def second() -> None:
        with file_lock(target):
            events.append("second acquired")

    with file_lock(target):
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.3)
        events.append("first released")
    thread.join(timeout=10)
    assert events == ["first released", "second acquired"]
    with file_lock(target):  # released: can be taken again at once
        pass


def test_check_writable_dir(tmp_path: Path) -> None:
    from core.errors import ConfigError
    from core.io import check_writable_dir

    assert check_writable_dir(tmp_path / "new" / "runs", "runs_dir").is_dir()  # created
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ConfigError, match=r"runs_dir=.*afile is not a folder"):
        check_writable_dir(tmp_path / "afile", "runs_dir")
    with pytest.raises(ConfigError, match=r"afile is a file"):
        check_writable_dir(tmp_path / "afile" / "below", "runs_dir")
    with pytest.raises(ConfigError, match="is not writable"):
        check_writable_dir(Path("/proc/harness-check"), "runs_dir")
    assert [p.name for p in (tmp_path / "new" / "runs").iterdir()] == []  # the probe is removed



def test_file_lock_leaves_no_lock_file_and_prunes_empty_folders(tmp_path: Path) -> None:
    """Issue 29: a failed run left its .lock file and empty run folders behind."""
    from core.io import file_lock

    target = tmp_path / "runs" / "model" / "suite" / "method" / "seed0.json"
    with pytest.raises(RuntimeError), file_lock(target, prune_to=tmp_path / "runs"):
        raise RuntimeError("the run failed")
    assert list(tmp_path.rglob("*")) == [tmp_path / "runs"]
    with file_lock(target, prune_to=tmp_path / "runs"):
        target.write_text("{}")
    assert sorted(p.name for p in target.parent.iterdir()) == ["seed0.json"]  # the finished file stays


def test_file_lock_holders_never_overlap_while_lock_files_are_removed(tmp_path: Path) -> None:
    """Each holder removes the lock file it held; a waiter that locked the removed file must lock
    the path anew, or two holders would be inside at once."""
    import threading

    from core.io import file_lock

    target = tmp_path / "runs" / "a" / "run.json"
    inside, overlaps = [0], []

    def worker() -> None:
        for _ in range(30):
            with file_lock(target, prune_to=tmp_path / "runs"):
                inside[0] += 1
                overlaps.append(inside[0])
                inside[0] -= 1

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(overlaps) == 120 and max(overlaps) == 1
    assert not list(tmp_path.rglob("*.lock"))
