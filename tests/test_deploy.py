"""deploy/: flags, extensions.load, conf.d fragments, systemd drop-in and the
installer, run for real into a temporary DESTDIR."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess

import pytest

from osq_dbwatch.config import Config
from osq_dbwatch.pack import render

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEPLOY = os.path.join(REPO, "deploy")
INSTALL = os.path.join(DEPLOY, "install.sh")


def _flags() -> dict[str, str]:
    flags = {}
    with open(os.path.join(DEPLOY, "osquery.flags"), encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            assert line.startswith("--") and "=" in line, line
            name, value = line[2:].split("=", 1)
            assert name not in flags, f"{name} set twice"
            flags[name] = value
    return flags


def test_flags_enable_what_the_pack_needs():
    flags = _flags()
    expected = {
        "disable_events": "false",
        "disable_audit": "false",
        "audit_allow_config": "true",
        "audit_persist": "true",
        "audit_allow_process_events": "true",
        "audit_allow_sockets": "true",
        "enable_file_events": "true",
        "disable_extensions": "false",
        "extensions_autoload": "/etc/osquery/extensions.load",
        "logger_plugin": "filesystem",
        "logger_numerics": "false",
        "config_plugin": "filesystem",
        "config_path": "/etc/osquery/osquery.conf",
    }
    for name, value in expected.items():
        assert flags.get(name) == value, name
    assert int(flags["pack_refresh_interval"]) <= 600
    assert int(flags["extensions_timeout"]) >= 3


def test_fragments_load_the_installed_packs_and_watch_the_dump_roots():
    conf_d = os.path.join(DEPLOY, "osquery.conf.d")
    names = sorted(os.listdir(conf_d))
    assert names == sorted(p.fragment for p in render.PACK_FILES)
    for pack in render.PACK_FILES:
        with open(os.path.join(conf_d, pack.fragment), encoding="utf-8") as handle:
            fragment = json.load(handle)
        assert fragment["packs"] == {"dbwatch": f"/etc/osquery/packs/{pack.filename}"}
        assert os.path.exists(os.path.join(REPO, "packs", pack.filename))
    with open(os.path.join(conf_d, "dbwatch.conf"), encoding="utf-8") as handle:
        paths = json.load(handle)["file_paths"]["dbwatch_dumps"]
    assert paths == [root + "/%%" for root in Config().dump_roots]


def test_extensions_load_and_dropin():
    with open(os.path.join(DEPLOY, "extensions.load"), encoding="utf-8") as handle:
        lines = [line.strip() for line in handle if line.strip()]
    assert lines == ["/usr/local/lib/osq-dbwatch/osq_dbwatch.ext"]
    with open(os.path.join(DEPLOY, "systemd", "osqueryd.service.d", "dbwatch.conf"), encoding="utf-8") as handle:
        dropin = handle.read()
    assert "[Service]" in dropin and "Environment=TMPDIR=/var/lib/osq-dbwatch/tmp" in dropin


@pytest.fixture()
def fake_ext(tmp_path):
    path = tmp_path / "build" / "osq_dbwatch.ext"
    path.parent.mkdir()
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o775)  # group-writable on purpose: the installer must not copy that
    return str(path)


def _install(destdir, ext, check=True):
    return subprocess.run(["sh", INSTALL, "--ext", ext, "--destdir", str(destdir)], capture_output=True, text=True,
                          check=check, timeout=60)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.skipif(os.geteuid() != 0, reason="installs root-owned files: the CI job runs as root")
def test_installer_puts_files_in_place_as_osquery_demands(tmp_path, fake_ext):
    dest = tmp_path / "root"
    result = _install(dest, fake_ext)
    assert "installed osq-dbwatch" in result.stdout
    ext = dest / "usr/local/lib/osq-dbwatch/osq_dbwatch.ext"
    st = os.stat(ext)
    assert st.st_uid == 0 and st.st_gid == 0
    assert _mode(ext) == 0o755 and not _mode(ext) & (stat.S_IWGRP | stat.S_IWOTH)
    parent = os.stat(ext.parent)
    assert parent.st_uid == 0 and not stat.S_IMODE(parent.st_mode) & (stat.S_ISVTX | stat.S_IWGRP | stat.S_IWOTH)
    for pack in render.PACK_FILES:
        assert _mode(dest / "etc/osquery/packs" / pack.filename) == 0o644
        assert _mode(dest / "etc/osquery/osquery.conf.d" / pack.fragment) == 0o644
    assert (dest / "etc/osquery/extensions.load").read_text() == "/usr/local/lib/osq-dbwatch/osq_dbwatch.ext\n"
    assert json.loads((dest / "etc/osquery/osquery.conf").read_text()) == {}
    assert (dest / "etc/osquery/osquery.flags").read_text() == open(os.path.join(DEPLOY, "osquery.flags")).read()
    assert _mode(dest / "var/lib/osq-dbwatch/tmp") == 0o700
    assert (dest / "etc/systemd/system/osqueryd.service.d/dbwatch.conf").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="installs root-owned files: the CI job runs as root")
def test_installer_keeps_existing_config_and_is_idempotent(tmp_path, fake_ext):
    dest = tmp_path / "root"
    etc = dest / "etc/osquery"
    etc.mkdir(parents=True)
    (etc / "osquery.flags").write_text("--verbose=true\n")
    (etc / "osquery.conf").write_text('{"options": {"host_identifier": "uuid"}}\n')
    (etc / "extensions.load").write_text("/usr/local/lib/other/other.ext\n")
    _install(dest, fake_ext)
    result = _install(dest, fake_ext)
    assert (etc / "osquery.flags").read_text() == "--verbose=true\n"
    assert (etc / "osquery.flags.dbwatch").exists() and "merge" in result.stderr
    assert json.loads((etc / "osquery.conf").read_text()) == {"options": {"host_identifier": "uuid"}}
    assert (etc / "extensions.load").read_text().splitlines() == [
        "/usr/local/lib/other/other.ext", "/usr/local/lib/osq-dbwatch/osq_dbwatch.ext",
    ]


def test_installer_refuses_bad_input(tmp_path, fake_ext):
    dest = tmp_path / "root"
    missing = _install(dest, str(tmp_path / "nope.ext"), check=False)
    assert missing.returncode != 0 and "no extension" in missing.stderr
    wrong_name = tmp_path / "osq_dbwatch.bin"
    shutil.copy(fake_ext, wrong_name)
    bad = _install(dest, str(wrong_name), check=False)
    assert bad.returncode != 0 and ".ext" in bad.stderr
    unknown = subprocess.run(["sh", INSTALL, "--frobnicate"], capture_output=True, text=True, timeout=30)
    assert unknown.returncode == 2 and "unknown argument" in unknown.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create a root-owned directory")
def test_installer_tightens_a_loose_existing_directory(tmp_path, fake_ext):
    dest = tmp_path / "root"
    libdir = dest / "usr/local/lib/osq-dbwatch"
    libdir.mkdir(parents=True)
    os.chmod(libdir, 0o1777)  # sticky and world-writable: osquery would refuse to load from here
    _install(dest, fake_ext)
    assert _mode(libdir) == 0o755


# -- extensions.load edits, the correlator's unit and config (issue 11 item 9, issue 14 item 4) --

LIB = os.path.join(DEPLOY, "install-lib.sh")
UNIT = os.path.join(DEPLOY, "systemd", "osq-dbwatch-correlate.service")
OURS = "/usr/local/lib/osq-dbwatch/osq_dbwatch.ext"


def _lib(call: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", f'. "$0" && {call} "$@"', LIB, *args], capture_output=True, text=True,
                          timeout=30)


@pytest.mark.parametrize("before, after", [
    ("/opt/a/a.ext", f"/opt/a/a.ext\n{OURS}\n"),  # no trailing newline: must not glue the paths
    ("/opt/a/a.ext\n/opt/b/b.ext", f"/opt/a/a.ext\n/opt/b/b.ext\n{OURS}\n"),
    ("/opt/a/a.ext\n", f"/opt/a/a.ext\n{OURS}\n"),
    ("", f"{OURS}\n"),
    (f"/opt/a/a.ext\n{OURS}", f"/opt/a/a.ext\n{OURS}\n"),  # already there: only the newline completed
])
def test_extensions_load_add_keeps_entries_and_repairs_the_newline(tmp_path, before, after):
    load = tmp_path / "extensions.load"
    load.write_text(before)
    assert _lib("extensions_load_add", str(load), OURS).returncode == 0
    assert load.read_text() == after
    assert _lib("extensions_load_add", str(load), OURS).returncode == 0
    assert load.read_text() == after  # idempotent


def test_extensions_load_remove_takes_out_only_our_line(tmp_path):
    load = tmp_path / "extensions.load"
    load.write_text(f"/opt/a/a.ext\n{OURS}\n/opt/{OURS}.old\n")
    load.chmod(0o640)
    assert _lib("extensions_load_remove", str(load), OURS).returncode == 0
    assert load.read_text() == f"/opt/a/a.ext\n/opt/{OURS}.old\n"
    assert _mode(load) == 0o640
    assert _lib("extensions_load_remove", str(tmp_path / "absent"), OURS).returncode == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="installs root-owned files: the CI job runs as root")
def test_installer_repairs_an_extensions_load_without_final_newline(tmp_path, fake_ext):
    dest = tmp_path / "root"
    (dest / "etc/osquery").mkdir(parents=True)
    (dest / "etc/osquery/extensions.load").write_text("/usr/local/lib/other/other.ext")
    _install(dest, fake_ext)
    assert (dest / "etc/osquery/extensions.load").read_text() == f"/usr/local/lib/other/other.ext\n{OURS}\n"


def _passwd_root(dest) -> None:
    (dest / "etc").mkdir(parents=True, exist_ok=True)
    (dest / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (dest / "etc/group").write_text("root:x:0:\n")
    (dest / "etc/shadow").write_text("root:*::0:99999:7:::\n")
    (dest / "etc/gshadow").write_text("root:*::\n")


@pytest.mark.skipif(os.geteuid() != 0, reason="installs root-owned files: the CI job runs as root")
def test_installer_sets_up_the_correlator_service(tmp_path, fake_ext):
    dest = tmp_path / "root"
    _passwd_root(dest)
    (dest / "var/log/osquery").mkdir(parents=True)
    results = dest / "var/log/osquery/osqueryd.results.log"
    results.write_text("")
    results.chmod(0o600)
    result = _install(dest, fake_ext)
    assert "enable --now osq-dbwatch-correlate" not in result.stdout  # only said for a live install
    unit = (dest / "etc/systemd/system/osq-dbwatch-correlate.service").read_text()
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert exec_start.startswith(f"ExecStart={OURS} correlate --follow ")
    assert _mode(dest / "etc/systemd/system/osq-dbwatch-correlate.service") == 0o644
    config = dest / "etc/osq-dbwatch/config.yml"
    assert config.read_text() == open(os.path.join(DEPLOY, "config.example.yml"), encoding="utf-8").read()
    assert _mode(config) == 0o644 and os.stat(config).st_uid == 0
    passwd = (dest / "etc/passwd").read_text()
    user = next(line for line in passwd.splitlines() if line.startswith("osq-dbwatch:"))
    gid = int(next(line for line in (dest / "etc/group").read_text().splitlines()
                   if line.startswith("osq-dbwatch:")).split(":")[2])
    assert user.endswith(":/nonexistent:/usr/sbin/nologin") and int(user.split(":")[3]) == gid
    logdir = os.stat(dest / "var/log/osquery")
    assert logdir.st_gid == gid and logdir.st_mode & stat.S_ISGID and not logdir.st_mode & stat.S_IWGRP
    assert os.stat(results).st_gid == gid and _mode(results) == 0o640
    # A second run keeps a config the site edited and makes no second user.
    config.write_text("admins: {users: [alice]}\n")
    again = _install(dest, fake_ext)
    assert config.read_text() == "admins: {users: [alice]}\n" and "kept your /etc/osq-dbwatch/config.yml" in again.stderr
    assert (dest / "etc/passwd").read_text().count("osq-dbwatch:") == 1


def _unit() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    section = ""
    with open(UNIT, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if line.startswith("["):
                section = line
            elif line and not line.startswith("#"):
                key, value = line.split("=", 1)
                settings.setdefault(f"{section}{key}", []).append(value)
    return settings


def test_correlator_unit_is_hardened_and_runs_as_its_own_user():
    unit = _unit()
    one = {k: v[-1] for k, v in unit.items()}
    assert one["[Service]User"] == "osq-dbwatch" and one["[Service]Group"] == "osq-dbwatch"
    exec_start = one["[Service]ExecStart"].split()
    assert exec_start[:3] == ["/usr/lib/osq-dbwatch/osq_dbwatch.ext", "correlate", "--follow"]
    assert exec_start[exec_start.index("--state") + 1].startswith("/var/lib/osq-dbwatch/correlator/")
    assert exec_start[exec_start.index("--config") + 1] == "/etc/osq-dbwatch/config.yml"
    assert one["[Service]StateDirectory"] == "osq-dbwatch/correlator"  # not the extension's root-only tmp/
    for key, value in {
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
        "PrivateDevices": "yes", "PrivateNetwork": "yes", "CapabilityBoundingSet": "", "RestrictSUIDSGID": "yes",
        "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes", "ProtectControlGroups": "yes",
        "RestrictAddressFamilies": "AF_UNIX", "SystemCallArchitectures": "native", "UMask": "0077",
    }.items():
        assert one.get(f"[Service]{key}") == value, key
    assert one["[Install]WantedBy"] == "multi-user.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None and os.environ.get("CI") != "true",
                    reason="needs systemd-analyze (CI installs it: there its absence fails)")
def test_correlator_unit_exposure_is_low(tmp_path):
    """systemd's own score of the sandbox (0 = fully locked down, 10 = none)."""
    unit = tmp_path / "osq-dbwatch-correlate.service"
    shutil.copy(UNIT, unit)
    result = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)],
                            capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout + result.stderr)
    assert match, result.stdout[-2000:] + result.stderr[-2000:]
    assert float(match.group(1)) <= 1.5


def test_config_example_lists_every_key_and_ships_the_defaults():
    from osq_dbwatch.config import key_paths, parse_config

    with open(os.path.join(DEPLOY, "config.example.yml"), encoding="utf-8") as handle:
        text = handle.read()
    assert parse_config(text) == Config(source=parse_config(text).source)  # as shipped: all defaults
    uncommented = "\n".join(line[2:] for line in text.splitlines() if line.startswith("# "))
    config = parse_config(uncommented)
    top = {line.split(":", 1)[0] for line in uncommented.splitlines() if line and not line.startswith(" ")}
    assert top == {key for key in key_paths() if "." not in key}
    defaults = Config()
    for name in ("correlator", "dump_roots", "dump_after_access_seconds", "egress_after_dump_seconds"):
        assert getattr(config, name) == getattr(defaults, name), name
