"""The .deb (deploy/build-deb.sh, `make deb`): built from the real one-file
bundle with dpkg-deb, installed with dpkg into a throw-away root (maintainer
scripts run chrootless against $DPKG_ROOT), checked the way osquery checks an
extension, then the correlator is run from the installed tree exactly as its
systemd unit runs it, as its own unprivileged user that reads the results log
only through its group. Removal and purge are checked too.

Needs root (dpkg --root, file owners, setpriv) and dpkg-deb: CI has both.
About 1 minute on top of the bundle build it shares with test_bundle.py."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest
from conftest import SHARED

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD_DEB = os.path.join(REPO, "deploy", "build-deb.sh")
EXT = "/usr/lib/osq-dbwatch/osq_dbwatch.ext"
UNIT = "/usr/lib/systemd/system/osq-dbwatch-correlate.service"
OTHER_EXT = "/opt/other/other.ext"

# CI installs dpkg-deb and systemd-analyze (tests/install-deps.sh) and runs as root: there a missing tool
# is a broken install step and must fail, never skip.
IN_CI = os.environ.get("CI") == "true"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0 and not IN_CI,
                       reason="dpkg --root and file owners need root: the CI job runs as root"),
    pytest.mark.skipif(shutil.which("dpkg-deb") is None and not IN_CI, reason="needs dpkg-deb (Debian package dpkg)"),
]


@pytest.fixture(scope="module")
def deb(bundle, tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("deb")
    started = time.monotonic()
    result = subprocess.run(["sh", BUILD_DEB, "--ext", bundle, "--out", str(out)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    path = result.stdout.strip().splitlines()[-1]
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout.strip()
    assert os.path.isfile(path) and os.path.basename(path).startswith("osq-dbwatch_") and path.endswith(f"_{arch}.deb")
    print(f"built {os.path.basename(path)} ({os.path.getsize(path)} bytes) in {time.monotonic() - started:.1f} s")
    return path


def _dpkg(root: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["dpkg", f"--root={root}", "--force-script-chrootless", "--force-depends", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def root(deb) -> Iterator[str]:
    """A throw-away root holding only what a minimal system has (dpkg's database,
    passwd files), an osquery log directory and an extensions.load with another
    extension on a last line without its newline, then the package installed.
    Under a 0711 directory so the unprivileged service user can reach it."""
    base = tempfile.mkdtemp(prefix="osq-dbwatch-root.")
    os.chmod(base, 0o711)
    r = os.path.join(base, "root")
    for d in ("var/lib/dpkg/info", "var/lib/dpkg/updates", "etc/osquery", "var/log/osquery"):
        os.makedirs(os.path.join(r, d))
    os.chmod(r, 0o755)
    files = {"var/lib/dpkg/status": "", "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n", "etc/group": "root:x:0:\n",
             "etc/shadow": "root:*::0:99999:7:::\n", "etc/gshadow": "root:*::\n",
             "etc/osquery/extensions.load": OTHER_EXT}  # no trailing newline on purpose
    for rel, text in files.items():
        with open(os.path.join(r, rel), "w", encoding="utf-8") as handle:
            handle.write(text)
    log = os.path.join(r, "var/log/osquery/osqueryd.results.log")
    with open(log, "w", encoding="utf-8"):
        pass
    os.chmod(log, 0o600)  # as osqueryd left it: the installer must hand it to the group
    installed = _dpkg(r, "--install", deb)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    yield r
    shutil.rmtree(base, ignore_errors=True)


def _ids(root: str, table: str, name: str) -> int | None:
    with open(os.path.join(root, "etc", table), encoding="utf-8") as handle:
        for line in handle:
            fields = line.split(":")
            if fields[0] == name:
                return int(fields[2])
    return None


def test_package_metadata_and_contents(deb):
    info = subprocess.run(["dpkg-deb", "--field", deb], capture_output=True, text=True, check=True).stdout
    fields = dict(line.split(": ", 1) for line in info.splitlines() if ": " in line and not line.startswith(" "))
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout.strip()
    assert fields["Package"] == "osq-dbwatch" and fields["Architecture"] == arch
    assert re.fullmatch(r"libc6 \(>= 2\.\d+\), passwd", fields["Depends"])
    listing = subprocess.run(["dpkg-deb", "--contents", deb], capture_output=True, text=True, check=True).stdout
    entries = {}
    for line in listing.splitlines():
        mode, owner, _size, _date, _time, path = line.split(None, 5)
        entries[path.removeprefix(".").rstrip("/") or "/"] = (mode, owner)
    assert {owner for _mode, owner in entries.values()} == {"root/root"}
    assert entries[EXT] == ("-rwxr-xr-x", "root/root")
    for path, (mode, _owner) in entries.items():
        assert mode[8] != "w" and mode[5] != "w", f"{path} {mode}: writable by group or others"
        assert mode[0] in "-d", f"{path}: only files and directories"
    expected = {
        UNIT, "/usr/lib/systemd/system/osqueryd.service.d/dbwatch.conf", "/etc/osq-dbwatch/config.yml",
        "/etc/osquery/packs/dbwatch.conf", "/etc/osquery/packs/dbwatch-bpf.conf", "/etc/osquery/packs/dbwatch-extension.conf",
        "/etc/osquery/osquery.conf.d/dbwatch.conf", "/usr/share/osq-dbwatch/packs/fleet/lib/dbwatch.reports.yml",
        "/usr/share/osq-dbwatch/packs/fleet-free/lib/dbwatch.reports.yml", "/usr/share/osq-dbwatch/elastic/filebeat.yml",
        "/usr/share/osq-dbwatch/install-lib.sh", "/usr/share/osq-dbwatch/osquery.flags",
    }
    assert expected <= set(entries), expected - set(entries)
    assert entries["/var/lib/osq-dbwatch/tmp"][0] == "drwx------"
    with tempfile.TemporaryDirectory() as control:
        subprocess.run(["dpkg-deb", "--control", deb, control], check=True)
        with open(os.path.join(control, "conffiles"), encoding="utf-8") as handle:
            conffiles = set(handle.read().split())
    assert conffiles == {p for p in entries if p.startswith("/etc/") and entries[p][0].startswith("-")}


def _ancestors(root: str, path: str) -> list[str]:
    out, current = [], os.path.dirname(path)
    while True:
        out.append(current)
        if current == "/":
            return out
        current = os.path.dirname(current)


def test_extension_path_is_what_osquery_autoloads(root):
    """osquery's checks on an autoloaded extension: a regular file ending in
    .ext, owned by root, owner-executable, not writable by others, in
    directories that are neither sticky nor writable by others."""
    path = root + EXT
    st = os.lstat(path)
    assert stat.S_ISREG(st.st_mode) and path.endswith(".ext")
    assert st.st_uid == 0 and st.st_gid == 0 and stat.S_IMODE(st.st_mode) == 0o755
    assert st.st_mode & stat.S_IXUSR and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    for directory in _ancestors(root, EXT):
        dst = os.lstat(root + directory)
        assert stat.S_ISDIR(dst.st_mode) and dst.st_uid == 0, directory
        assert not dst.st_mode & (stat.S_ISVTX | stat.S_IWGRP | stat.S_IWOTH), directory
    with open(path, "rb") as handle:
        assert handle.read(4) == b"\x7fELF"


def test_install_keeps_the_other_extension_and_repairs_the_newline(root):
    with open(os.path.join(root, "etc/osquery/extensions.load"), encoding="utf-8") as handle:
        assert handle.read() == f"{OTHER_EXT}\n{EXT}\n"
    st = os.stat(os.path.join(root, "etc/osquery/extensions.load"))
    assert st.st_uid == 0 and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def test_installed_files_users_and_log_access(root):
    status = subprocess.run(["dpkg", f"--root={root}", "--status", "osq-dbwatch"], capture_output=True, text=True)
    assert "Status: install ok installed" in status.stdout
    uid, gid = _ids(root, "passwd", "osq-dbwatch"), _ids(root, "group", "osq-dbwatch")
    assert uid and gid and uid < 1000  # a system account
    with open(os.path.join(root, "etc/passwd"), encoding="utf-8") as handle:
        entry = next(line for line in handle if line.startswith("osq-dbwatch:"))
    assert entry.rstrip("\n").endswith(":/nonexistent:/usr/sbin/nologin")
    logdir = os.stat(os.path.join(root, "var/log/osquery"))
    assert logdir.st_uid == 0 and logdir.st_gid == gid and logdir.st_mode & stat.S_ISGID
    assert not logdir.st_mode & stat.S_IWGRP
    log = os.stat(os.path.join(root, "var/log/osquery/osqueryd.results.log"))
    assert log.st_uid == 0 and log.st_gid == gid and stat.S_IMODE(log.st_mode) == 0o640
    for rel, mode in (("etc/osq-dbwatch/config.yml", 0o644), ("etc/osquery/osquery.flags", 0o644),
                      ("etc/osquery/osquery.conf", 0o644), (UNIT.lstrip("/"), 0o644)):
        st = os.stat(os.path.join(root, rel))
        assert st.st_uid == 0 and stat.S_IMODE(st.st_mode) == mode, rel
    with open(os.path.join(root, "etc/osq-dbwatch/config.yml"), encoding="utf-8") as handle:
        installed = handle.read()
    with open(os.path.join(REPO, "deploy/config.example.yml"), encoding="utf-8") as handle:
        assert installed == handle.read()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None and not IN_CI, reason="needs systemd-analyze")
def test_installed_unit_verifies(root, tmp_path):
    """systemd's own checks on the installed unit (pointed at the installed binary)."""
    with open(root + UNIT, encoding="utf-8") as handle:
        text = handle.read().replace("/usr/lib/osq-dbwatch/", root + "/usr/lib/osq-dbwatch/")
    unit = tmp_path / "osq-dbwatch-correlate.service"
    unit.write_text(text)
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == "", result.stderr


def _service_command(root: str, overrides: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The unit's ExecStart with its Environment= defaults (and `overrides`, as
    /etc/default/osq-dbwatch-correlate would give them) expanded like systemd
    does: ${VAR} is one word, $VAR splits on spaces."""
    env: dict[str, str] = {}
    exec_start = ""
    with open(root + UNIT, encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("UMask="):
                env["UMask"] = line.strip()[len("UMask="):]
            elif line.startswith("Environment="):
                key, value = line.strip()[len("Environment="):].split("=", 1)
                env[key] = value
            elif line.startswith("ExecStart="):
                exec_start = line.strip()[len("ExecStart="):]
    env.update(overrides)
    argv: list[str] = []
    for word in shlex.split(exec_start):
        braced = re.fullmatch(r"\$\{(\w+)\}", word)
        bare = re.fullmatch(r"\$(\w+)", word)
        if braced:
            argv.append(env[braced.group(1)])
        elif bare:
            argv.extend(env[bare.group(1)].split())
        else:
            argv.append(word)
    return argv, env


def test_correlator_runs_as_its_service_on_the_example_logs(root):
    """ExecStart as the unit gives it, run as the unprivileged osq-dbwatch user
    (numeric ids from the root's passwd) in the installed tree, on the scenario
    log written into osquery's results log: it reads the log through its group
    and writes one ECS alert per chain with the top-level fields."""
    uid, gid = _ids(root, "passwd", "osq-dbwatch"), _ids(root, "group", "osq-dbwatch")
    results = os.path.join(root, "var/log/osquery/osqueryd.results.log")
    with open(os.path.join(SHARED, "scenarios", "insider-csv-curl.log"), "rb") as src, open(results, "ab") as dst:
        dst.write(src.read())
    # The directories systemd would make from StateDirectory=, LogsDirectory=, CacheDirectory=.
    made = {"var/lib/osq-dbwatch/correlator": 0o700, "var/log/osq-dbwatch": 0o750,
            "var/cache/osq-dbwatch-correlate": 0o700}
    for rel, mode in made.items():
        path = os.path.join(root, rel)
        os.makedirs(path, exist_ok=True)
        os.chown(path, uid, gid)
        os.chmod(path, mode)
    argv, env = _service_command(root, {"OSQ_DBWATCH_RESULTS": "/var/log/osquery/osqueryd.results.log"})
    assert argv[0] == EXT and argv[1:3] == ["correlate", "--follow"] and "--format" in argv

    def inside(word: str) -> str:
        return root + word if word.startswith("/") else word

    argv = [inside(w) for w in argv]
    output = argv[argv.index("--output") + 1]
    proc = subprocess.Popen(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--", *argv],
                            env={"PATH": "/usr/bin:/bin", "TMPDIR": inside(env["TMPDIR"])},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            umask=int(env["UMask"], 8))  # systemd applies the unit's UMask=
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            if os.path.exists(output) and os.path.getsize(output) > 0:
                time.sleep(1)  # let it finish the line
                break
            time.sleep(0.25)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    with open(output, encoding="utf-8") as handle:
        alerts = [json.loads(line) for line in handle if line.strip()]
    assert len(alerts) == 1, alerts  # one chain, one alert
    (alert,) = alerts
    assert alert["event"]["kind"] == "alert" and alert["event"]["id"] == alert["osq_dbwatch"]["chain_id"]
    assert alert["user"]["name"] == "mallory" and alert["process"]["name"] and alert["file"]["path"]
    state = os.path.join(root, "var/lib/osq-dbwatch/correlator")
    assert os.listdir(state), "the state lives under /var/lib/osq-dbwatch/correlator"
    for name in os.listdir(state):
        st = os.stat(os.path.join(state, name))
        assert st.st_uid == uid and not st.st_mode & 0o077, name
    assert os.stat(output).st_uid == uid


def test_remove_and_purge(root):
    """Last: removal takes only our line out of extensions.load; purge removes
    the state and unpack directories."""
    removed = _dpkg(root, "--remove", "osq-dbwatch")
    assert removed.returncode == 0, removed.stderr
    with open(os.path.join(root, "etc/osquery/extensions.load"), encoding="utf-8") as handle:
        assert handle.read() == f"{OTHER_EXT}\n"
    assert not os.path.exists(root + EXT)
    assert os.path.exists(os.path.join(root, "etc/osq-dbwatch/config.yml"))  # a conffile: kept until purge
    purged = _dpkg(root, "--purge", "osq-dbwatch")
    assert purged.returncode == 0, purged.stderr
    for rel in ("etc/osq-dbwatch/config.yml", "var/lib/osq-dbwatch", "var/log/osq-dbwatch"):
        assert not os.path.exists(os.path.join(root, rel)), rel
