"""The manual pages: `man saker`, `man sakerctl` and `man 5 saker.yaml`
after `make install`.

Installed into a DESTDIR by the build directory's own `make install-man`,
each page must render without a warning (mandoc -Tlint, and groff -ww as
man(1) uses it), and saker.yaml(5) must document every option the config
loader knows: the option tables in the sources are read for their names.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from saker_harness import saker_binary

SRCDIR = Path(__file__).resolve().parents[2]
PAGES = {"saker.8": "saker", "sakerctl.8": "sakerctl", "saker.yaml.5": "saker.yaml"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    build = Path(saker_binary()).parent
    if not (build / "Makefile").is_file():
        pytest.skip("$SAKER is not in a build directory (no Makefile to install from)")
    dest = tmp_path_factory.mktemp("destdir")
    r = subprocess.run(["make", "-s", "-C", str(build), "install-man", "DESTDIR=%s" % dest],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    found = {p.name: p for p in dest.rglob("*") if p.name in PAGES}
    assert set(found) == set(PAGES), found
    for name, path in found.items():
        section = name.rsplit(".", 1)[1]
        assert path.parent.name == "man" + section, path
    return found


@pytest.mark.parametrize("page", sorted(PAGES))
def test_page_renders_without_warnings(installed, page):
    path = installed[page]
    if shutil.which("mandoc"):
        r = subprocess.run(["mandoc", "-Tlint", "-W", "warning", str(path)],
                           capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr
    r = subprocess.run(["groff", "-ww", "-mandoc", "-Tutf8", "-z", str(path)],
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    r = subprocess.run(["man", "-l", str(path)], capture_output=True, text=True,
                       env=dict(os.environ, MANPAGER="cat", PAGER="cat", MANWIDTH="80"))
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert "NAME" in r.stdout and PAGES[page] in r.stdout


def loader_options():
    """Every key of every option table (struct cfg_option) in the sources."""
    names = set()
    for folder in ("conf", "worker", "tls"):
        for src in sorted((SRCDIR / folder).glob("*.c")) if (SRCDIR / folder).is_dir() else []:
            text = src.read_text()
            for table in re.finditer(r"struct cfg_option \w+\[\] = \{(.*?)\n\};", text, re.S):
                names.update(re.findall(r'\.name = "([a-z0-9_]+)"', table.group(1)))
    return names


def test_every_config_option_is_documented(installed):
    names = loader_options()
    assert len(names) > 50, names  # the tables were found
    page = installed["saker.yaml.5"].read_text()
    documented = set()
    for line in page.splitlines():
        m = re.search(r"(?:^\.|\s)Cm\s(.*)", line)  # the Cm (command modifier) macro
        if m:
            documented.update(re.findall(r"[a-z0-9_]+", m.group(1)))
    missing = sorted(names - documented)
    assert missing == [], "options missing from saker.yaml(5): %s" % missing


def test_every_sakerctl_command_is_documented(installed):
    r = subprocess.run([str(Path(saker_binary()).parent / "sakerctl"), "help"],
                       capture_output=True, text=True)
    commands = re.findall(r"^  ([a-z]+)", r.stdout, re.M)
    assert "status" in commands
    page = installed["sakerctl.8"].read_text()
    missing = [c for c in commands if not re.search(r"^\.It Cm %s\b" % c, page, re.M)]
    assert missing == [], missing
