"""Binary upgrade: `sakerctl upgrade [--binary PATH]`.

What an operator is promised: the new executable becomes the master on the
same listening sockets and the same segment (counters and generations go
on), starts its workers, and only then does the old master drain and exit;
an upgrade to a binary that cannot start changes nothing and says why; no
client sees a failed request or a reset. The master's pid changes: the pid
file and systemd (MAINPID=) are told.
"""

import os
import re
import socket
import stat
from pathlib import Path

import pytest

from load import Load
from rawhttp import read_response, wait_for
from saker_harness import process_alive, run_sakerctl
from test_systemd_notify import NotifySocket

UPGRADES = 10


def config(workers=2, body="ok", extra=""):
    return ('workers: %d\nshutdown_timeout: 5s\n%sendpoints:\n'
            '  main: { url: "http://127.0.0.1:0" }\n'
            'routes:\n  - path: /\n    return: { status: 200, body: "%s" }\n'
            % (workers, extra, body))


def broken_binary(tmp_path):
    """A build that dies at start, as a bad package would."""
    path = tmp_path / "saker-broken"
    path.write_text("#!/bin/sh\necho 'broken build: cannot start' >&2\nexit 1\n")
    path.chmod(0o755)
    return path


def upgrade(inst, *args, timeout=90):
    return run_sakerctl("--shm", inst.shm, "upgrade", *args, timeout=timeout)


def requests_total(inst):
    return inst.metric("saker_requests_total")


@pytest.mark.timing
def test_upgrades_under_load_lose_nothing(saker_factory, tmp_path):
    inst = saker_factory(config())
    port = inst.port
    broken = broken_binary(tmp_path)
    masters = [inst.pid]
    generations = [inst.status()["instance"]["generation"]]
    with Load(port, fresh=3) as load:
        for i in range(1, UPGRADES + 1):
            served = load.total_ok()
            wait_for(lambda: load.total_ok() >= served + 20, 10,
                     message="load before upgrade %d" % i)
            if i == UPGRADES // 2:
                before = requests_total(inst)
                r = upgrade(inst, "--binary", broken)
                assert r.returncode == 1, (r.stdout, r.stderr)
                assert "upgrade failed:" in r.stderr and "broken build" not in r.stdout
                assert "goes on serving" in r.stderr, r.stderr
                st = inst.status()
                assert st["instance"]["master_pid"] == masters[-1]
                assert st["instance"]["state"] == "running"
                assert requests_total(inst) >= before
            r = upgrade(inst)
            assert r.returncode == 0, (r.stdout, r.stderr)
            new = int(re.search(r"saker master pid (\d+)", r.stdout).group(1))
            assert new not in masters and process_alive(new)
            st = inst.status()
            assert st["instance"]["master_pid"] == new
            assert st["upgrade"]["ok"] and st["upgrade"]["pid"] == new
            assert st["instance"]["generation"] > generations[-1]
            assert Path(inst.pid_file).read_text().strip() == str(new)
            masters.append(new)
            generations.append(st["instance"]["generation"])
            old = masters[-2]
            wait_for(lambda: not process_alive(old), 15, message="old master %d exits" % old)
        served = load.total_ok()
        wait_for(lambda: load.total_ok() >= served + 50, 10,
                 message="the load served after the last")
    figures = "upgrades: %d (+1 refused), requests: %d, failures: %d, resets: %d" % (
        UPGRADES, load.total_ok(), load.total_failures(),
        sum("Reset" in f or "Broken pipe" in f for _, f in load.reasons))
    print(figures)
    (Path(os.environ.get("SAKER_UPGRADE_FIGURES", str(tmp_path / "figures")))).write_text(
        figures + "\n")
    assert load.reasons == [], load.reasons[:5]
    assert load.total_ok() > 1000, "the load did not run (%d requests)" % load.total_ok()
    # Counters went on across ten masters: nothing was reset to zero.
    assert requests_total(inst) >= load.total_ok()
    assert inst.metric("saker_worker_deaths_total") == 0


def test_upgrade_to_a_binary_that_fails_keeps_the_old_master(saker_factory, tmp_path):
    inst = saker_factory(config(workers=1))
    before = inst.status()
    r = upgrade(inst, "--binary", broken_binary(tmp_path))
    assert r.returncode == 1
    assert re.search(r"the new master \(pid [1-9]\d*, %s\) did not start: it exited before "
                     r"its workers served" % re.escape(str(tmp_path / "saker-broken")),
                     r.stderr), r.stderr
    r = upgrade(inst, "--binary", tmp_path / "no-such-saker")
    assert r.returncode == 1 and "no-such-saker" in r.stderr, r.stderr
    after = inst.status()
    assert after["upgrade"]["count"] == 1 and not after["upgrade"]["ok"]
    assert "exited before its workers served" in after["upgrade"]["message"]
    human = run_sakerctl("--shm", inst.shm, "status").stdout
    assert "last upgrade FAILED (1 upgrades): the new master" in human, human
    assert after["instance"]["master_pid"] == before["instance"]["master_pid"] == inst.pid
    assert after["instance"]["generation"] == before["instance"]["generation"]
    assert len(after["workers"]) == 1 and after["workers"][0]["state"] == "running"
    assert Path(inst.pid_file).read_text().strip() == str(inst.pid)


def test_upgrade_with_a_config_that_no_longer_loads_says_where(saker_factory):
    inst = saker_factory(config(workers=1))
    text = inst.config_path.read_text()
    inst.config_path.write_text(text.replace("workers: 1", "wrokers: 1"))
    r = upgrade(inst)
    assert r.returncode == 1
    assert "saker.yaml:1:1: unknown key 'wrokers'" in r.stderr, r.stderr
    assert inst.status()["instance"]["master_pid"] == inst.pid
    inst.config_path.write_text(text)
    r = upgrade(inst)
    assert r.returncode == 0, r.stderr
    inst.wait_exit(15)  # the old master, our child, drained and left
    assert inst.proc.returncode == 0


def test_upgrade_tells_systemd_the_new_main_pid(saker_factory, tmp_path):
    notify = NotifySocket(tmp_path / "notify.sock")
    inst = saker_factory(config(workers=1), env={"NOTIFY_SOCKET": notify.path})
    wait_for(lambda: notify.saw("READY=1"), 5, message="READY=1")
    notify.received.clear()
    r = upgrade(inst)
    assert r.returncode == 0, r.stderr
    new = inst.status()["instance"]["master_pid"]
    wait_for(lambda: "MAINPID=%d" % new in notify.drain(), 5, message="MAINPID=%d" % new)
    # The unit's commands reach the new master through $MAINPID.
    r = run_sakerctl("--pid", new, "reload")
    assert r.returncode == 0, r.stderr
    assert "STOPPING=1" not in notify.drain(), "the old master's exit is not a stop"
    r = run_sakerctl("--pid", new, "stop")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: "STOPPING=1" in notify.drain(), 5, message="STOPPING=1 from the new master")


def test_unix_socket_and_segment_outlive_the_old_master(saker_factory, tmp_path):
    sock = tmp_path / "u.sock"
    inst = saker_factory(config(workers=1, extra="") .replace(
        '  main: { url: "http://127.0.0.1:0" }\n',
        '  main: { url: "http://127.0.0.1:0" }\n  local: { url: "unix:%s" }\n' % sock))
    r = upgrade(inst)
    assert r.returncode == 0, r.stderr
    inst.wait_exit(15)
    assert stat.S_ISSOCK(os.stat(sock).st_mode)
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(str(sock))
        s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_response(s).status == 200
    assert os.path.exists(inst.shm)
    assert inst.status()["instance"]["state"] == "running"
    new = inst.status()["instance"]["master_pid"]
    assert run_sakerctl("--shm", inst.shm, "stop").returncode == 0
    wait_for(lambda: not process_alive(new), 10, message="the new master stops")
    assert not os.path.exists(inst.shm) and not os.path.exists(sock)


def test_new_master_whose_worker_dies_leaves_the_instance_as_it_was(saker_factory, tmp_path):
    """The new master's workers cannot open the static root (root's, 0700)
    after they drop to nobody: they die before serving, the new master
    stops, and the old one goes on with its state untouched."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run workers as nobody")
    inst = saker_factory(config(workers=1))
    www = tmp_path / "private"
    www.mkdir(mode=0o700)
    text = inst.config_path.read_text()
    inst.config_path.write_text(text.replace("workers: 1\n", "workers: 1\nuser: nobody\n")
                                .replace('return: { status: 200, body: "ok" }',
                                         "static: { root: %s }" % www))
    r = upgrade(inst)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "before serving" in r.stderr, r.stderr
    st = inst.status()
    assert st["instance"]["master_pid"] == inst.pid
    assert st["instance"]["state"] == "running"
    wait_for(lambda: [w["pid"] for w in inst.status()["workers"]] ==
             [w["pid"] for w in st["workers"] if w["generation"] == 1], 10,
             message="only the old worker left")
    assert Path(inst.pid_file).read_text().strip() == str(inst.pid)
