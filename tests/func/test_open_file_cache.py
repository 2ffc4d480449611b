"""`open_file_cache: { max, valid }`: static files kept open by a worker
across requests. What is kept answers until `valid` has passed, then the
file is looked at again (changed in place, replaced by rename, deleted, a
symlink turned to point outside the root); the worker's descriptors stay
bounded by max; entries nobody asks for are closed; the counters reach
`sakerctl metrics` and `sakerctl status`."""

import os
import subprocess

import pytest

from rawhttp import connect, read_response, wait_for
from saker_harness import run_sakerctl, saker_binary

OLD = b"old contents\n"
NEW = b"new contents, longer\n"


@pytest.fixture
def www(tmp_path):
    d = tmp_path / "www"
    d.mkdir()
    (d / "a.txt").write_bytes(OLD)
    return d


def start(saker_factory, www, cache):
    return saker_factory("workers: 1\nendpoints:\n  main: {url: \"http://127.0.0.1:0\"}\n"
                         "open_file_cache: %s\n"
                         "routes:\n  - path: /\n    static: {root: %s}\n" % (cache, www))


def get(inst, path):
    s = connect(inst.port)
    s.sendall(("GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % path).encode())
    r = read_response(s, timeout=10)
    s.close()
    return r


def files_open_beneath(pid, directory):
    """The worker's descriptors that name a file beneath directory."""
    prefix = str(directory) + "/"
    names = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue  # closed meanwhile
        if target.startswith(prefix):
            names.append(target)
    return names


def replace_by_rename(www, body):
    (www / "next").write_bytes(body)
    os.rename(www / "next", www / "a.txt")


def the_worker(inst):
    pids = inst.worker_pids()
    assert len(pids) == 1
    return pids[0]


def served_until(inst, path, want_status, want_body, allowed):
    """Asks for path until it answers want_status (with want_body when
    given), each answer on the way being one of allowed (status, body)."""
    def check():
        r = get(inst, path)
        seen = (r.status, r.body if r.status == 200 else None)
        if r.status == want_status and (want_body is None or r.body == want_body):
            return True
        assert seen in allowed, "unexpected answer %r" % (seen,)
        return False
    wait_for(check, 15, interval=0.05, message="%s answering %d" % (path, want_status))


def test_a_kept_file_answers_across_requests_until_valid(saker_factory, www):
    """With a long valid, a file replaced by rename is still answered from
    the descriptor kept open (the old file, deleted, stays open in the
    worker): the cache outlives the loop turn."""
    inst = start(saker_factory, www, "{ max: 100, valid: 1h }")
    assert get(inst, "/a.txt").body == OLD
    replace_by_rename(www, NEW)
    for _ in range(3):
        assert get(inst, "/a.txt").body == OLD
    assert str(www / "a.txt") + " (deleted)" in files_open_beneath(the_worker(inst), www)
    m = wait_for(lambda: (lambda m: m if m.get("saker_file_cache_hits_total", 0) >= 3 else None)(
        inst.metrics()), 5, message="file cache hits")
    assert m["saker_file_cache_misses_total"] >= 1


def test_changed_in_place_is_served_new_after_valid(saker_factory, www):
    inst = start(saker_factory, www, "{ max: 100, valid: 200ms }")
    assert get(inst, "/a.txt").body == OLD
    ino = os.stat(www / "a.txt").st_ino
    with open(www / "a.txt", "r+b") as f:  # same inode, new size and mtime
        f.write(NEW)
    assert os.stat(www / "a.txt").st_ino == ino
    served_until(inst, "/a.txt", 200, NEW, {(200, OLD)})
    wait_for(lambda: inst.metric("saker_file_cache_revalidations_total") >= 1, 5,
             message="revalidations counted")


def test_replaced_by_rename_is_served_new_after_valid(saker_factory, www):
    inst = start(saker_factory, www, "{ max: 100, valid: 200ms }")
    assert get(inst, "/a.txt").body == OLD
    replace_by_rename(www, NEW)
    served_until(inst, "/a.txt", 200, NEW, {(200, OLD)})
    # The old file's descriptor went with its entry.
    assert str(www / "a.txt") + " (deleted)" not in files_open_beneath(the_worker(inst), www)


def test_deleted_is_404_after_valid(saker_factory, www):
    inst = start(saker_factory, www, "{ max: 100, valid: 200ms }")
    assert get(inst, "/a.txt").body == OLD
    os.unlink(www / "a.txt")
    served_until(inst, "/a.txt", 404, None, {(200, OLD)})
    wait_for(lambda: not files_open_beneath(the_worker(inst), www), 5,
             message="the deleted file's descriptor closed")


def test_symlink_swapped_outside_the_root_is_refused(saker_factory, www, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"outside the root\n")
    (www / "link.txt").symlink_to("a.txt")
    inst = start(saker_factory, www, "{ max: 100, valid: 200ms }")
    assert get(inst, "/link.txt").body == OLD
    (www / "next").symlink_to(secret)
    os.rename(www / "next", www / "link.txt")
    served_until(inst, "/link.txt", 404, None, {(200, OLD)})
    for _ in range(3):
        assert get(inst, "/link.txt").status == 404


def test_more_files_than_max_keep_descriptors_bounded(saker_factory, www):
    for i in range(40):
        (www / ("f%02d.txt" % i)).write_bytes(b"file %d\n" % i)
    inst = start(saker_factory, www, "{ max: 8, valid: 1h }")
    pid = the_worker(inst)
    for i in range(40):
        assert get(inst, "/f%02d.txt" % i).body == b"file %d\n" % i
    held = files_open_beneath(pid, www)
    assert 1 <= len(held) <= 8, held
    assert str(www / "f39.txt") in held  # the most recent is kept
    wait_for(lambda: inst.metric("saker_file_cache_evictions_total") >= 32, 5,
             message="evictions counted")


def test_unused_entries_are_closed_after_valid(saker_factory, www):
    inst = start(saker_factory, www, "{ max: 100, valid: 3s }")
    assert get(inst, "/a.txt").body == OLD
    pid = the_worker(inst)
    assert files_open_beneath(pid, www) == [str(www / "a.txt")]  # kept after the response
    wait_for(lambda: not files_open_beneath(pid, www), 20,
             message="the unused entry closed by the worker's sweep")


def test_off_keeps_nothing_across_requests(saker_factory, www):
    inst = start(saker_factory, www, "off")
    assert get(inst, "/a.txt").body == OLD
    replace_by_rename(www, NEW)
    assert get(inst, "/a.txt").body == NEW
    assert files_open_beneath(the_worker(inst), www) == []


def test_counters_in_metrics_and_status(saker_factory, www):
    inst = start(saker_factory, www, "{ max: 100, valid: 1h }")
    for _ in range(3):
        assert get(inst, "/a.txt").body == OLD
    m = wait_for(lambda: (lambda m: m if m.get("saker_file_cache_hits_total", 0) >= 2 else None)(
        inst.metrics()), 5, message="file cache counters")
    assert m["saker_file_cache_misses_total"] == 1
    assert "saker_file_cache_evictions_total" in m
    assert "saker_file_cache_revalidations_total" in m
    r = run_sakerctl("--shm", inst.shm, "status")
    assert r.returncode == 0, r.stderr
    assert "evictions" in r.stdout and "revalidations" in r.stdout


@pytest.mark.parametrize("text,message", [
    ("{ valid: 2s }", "open_file_cache: missing required key 'max'"),
    ("{ max: 10, valid: 0s }", "open_file_cache: valid must be more than 0"),
    ("{ max: 10, vaild: 2s }", "unknown key 'vaild'; did you mean 'valid'?"),
])
def test_bad_config_names_file_line_column(tmp_path, www, text, message):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("endpoints:\n  a: {url: \"http://127.0.0.1:0\"}\nopen_file_cache: %s\n"
                   "routes:\n  - path: /\n    static: {root: %s}\n" % (text, www))
    r = subprocess.run([saker_binary(), "-t", "-c", str(cfg)], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode != 0
    assert "%s:3:" % cfg in r.stderr and message in r.stderr, r.stderr
