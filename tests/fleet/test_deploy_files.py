"""The files in deploy/ as their own tools check them: HAProxy's parser
(with and without PROXY v2), promtool on the Prometheus configuration,
its rules and the rules' unit tests (deploy/prometheus/saker.rules.test.yml:
request rate, error ratio and p99 per route from series shaped as saker
exports them, and the alerts), and deploy/rolling's command line."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SRCDIR = Path(os.environ.get("SRCDIR", Path(__file__).resolve().parents[2]))
DEPLOY = SRCDIR / "deploy"


def need(tool):
    if shutil.which(tool) is None:
        pytest.skip("%s is not installed (scripts/deps --test)" % tool)


def run(*argv, env=None, cwd=None):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, cwd=cwd)
    return r.returncode, r.stdout + r.stderr


@pytest.mark.parametrize("send_proxy", [False, True])
def test_haproxy_accepts_the_configuration(send_proxy, tmp_path):
    need("haproxy")
    env = dict(os.environ, SAKER_FRONTEND="127.0.0.1:8080", SAKER_H1="10.0.0.11:8080",
               SAKER_H2="10.0.0.12:8080", SAKER_H3="10.0.0.13:8080",
               HAPROXY_STATS=str(tmp_path / "admin.sock"), HAPROXY_METRICS="127.0.0.1:8404")
    if send_proxy:
        env["SAKER_SEND_PROXY"] = "1"
    rc, out = run("haproxy", "-c", "-f", str(DEPLOY / "haproxy/haproxy.cfg"), env=env)
    assert rc == 0, out
    assert "Configuration file is valid" in out


def test_promtool_checks_the_configuration_and_rules():
    need("promtool")
    rc, out = run("promtool", "check", "config", "prometheus.yml", cwd=DEPLOY / "prometheus")
    assert rc == 0, out
    assert "SUCCESS: 12 rules found" in out


def test_promtool_rule_tests_pass():
    need("promtool")
    rc, out = run("promtool", "test", "rules", "saker.rules.test.yml",
                  cwd=DEPLOY / "prometheus")
    assert rc == 0, out
    assert "SUCCESS" in out


def test_rolling_refuses_to_start_without_its_balancer(tmp_path):
    rc, out = run("/usr/bin/python3", str(DEPLOY / "rolling"), "--haproxy-socket",
                  str(tmp_path / "none.sock"), "reload", "h1")
    assert rc == 1
    assert "none.sock" in out
