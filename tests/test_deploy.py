"""deploy/: flags, extensions.load, conf.d fragments, systemd drop-in and the
installer, run for real into a temporary DESTDIR."""

from __future__ import annotations

import json
import os
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
