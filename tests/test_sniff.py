"""sniff: content signatures from real file formats, and reads that never go where they must not."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import socket
import sqlite3
import struct
import tarfile
import threading
import zipfile

import pytest

from osq_dbwatch import sniff


def _bson(doc: dict[str, str]) -> bytes:
    body = b"".join(b"\x02" + k.encode() + b"\x00" + struct.pack("<i", len(v) + 1) + v.encode() + b"\x00"
                    for k, v in doc.items())
    return struct.pack("<i", len(body) + 5) + body + b"\x00"


CASES = {
    "pg_dump_plain": b"--\n-- PostgreSQL database dump\n--\n\n-- Dumped from database version 15.8\n",
    "pg_dumpall": b"--\n-- PostgreSQL database cluster dump\n--\n",
    "pg_dump_custom": b"PGDMP\x01\x0e\x00\x04\x08\x01\x01\x01\x00\x00\x00",
    "mysqldump": b"-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB, for debian-linux-gnu (x86_64)\n--\n-- Host: localhost\n",
    "pg_copy": b"SET client_encoding = 'UTF8';\nCOPY public.users (id, email) FROM stdin;\n1\ta@b.c\n\\.\n",
    "sql_create_table": b"CREATE TABLE users (\n  id int primary key\n);\n",
    "sql_insert": b"INSERT INTO users VALUES (1,'a');\nINSERT INTO users VALUES (2,'b');\n",
    "mongo_json": b'{"_id":{"$oid":"5f1d7e"},"email":"a@b.c"}\n',
    "bson": _bson({"email": "a@b.c", "name": "alice"}) + _bson({"email": "x@y.z"}),
    "redis_rdb": b"REDIS0011\xfa\tredis-ver\x057.0.15",
    "csv": b"id,email,created_at\n1,a@b.c,2024-01-01\n2,x@y.z,2024-01-02\n",
    "gzip": gzip.compress(b"-- PostgreSQL database dump\n"),
    "xz": lzma.compress(b"x"),
    "bzip2": bz2.compress(b"x"),
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_signature(kind: str) -> None:
    assert sniff.sniff_bytes(CASES[kind]) == kind


def test_mysqldump_tab_separated_client_output_is_csv() -> None:
    assert sniff.sniff_bytes(b"id\temail\n1\ta@b.c\n2\tx@y.z\n") == "csv"


def test_real_archives_and_sqlite(tmp_path) -> None:
    zpath = tmp_path / "a.zip"
    with zipfile.ZipFile(zpath, "w") as archive:
        archive.writestr("dump.sql", "CREATE TABLE t (x int);")
    assert sniff.sniff_file(str(zpath)) == "zip"
    tpath = tmp_path / "a.tar"
    with tarfile.open(tpath, "w") as archive:
        data = b"CREATE TABLE t (x int);"
        info = tarfile.TarInfo("dump.sql")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    assert sniff.sniff_file(str(tpath)) == "tar"
    dbpath = tmp_path / "app.db"
    conn = sqlite3.connect(dbpath)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    assert sniff.sniff_file(str(dbpath)) == "sqlite"


@pytest.mark.parametrize("text", [
    b"hello world\nthis is a note\n",
    b"a,b\n",  # one line is not a table
    b"#!/bin/sh\necho 1,2,3\necho 4\n",
    b'7f3a\t{"key":"make-fetch-happen:request-cache:https://x","integrity":"sha512"}\n'
    b'91ab\t{"key":"make-fetch-happen:request-cache:https://y","integrity":"sha512"}\n',
    b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 64,
    b"",
])
def test_not_a_dump(text: bytes) -> None:
    assert sniff.sniff_bytes(text) == ""


def test_reads_at_most_4k(tmp_path) -> None:
    path = tmp_path / "big.sql"
    path.write_bytes(b"x" * 10000 + b"\n-- PostgreSQL database dump\n")
    head = sniff.read_head(str(path))
    assert head is not None and len(head) == sniff.HEAD_BYTES
    assert sniff.sniff_file(str(path)) == ""  # the signature lies past the 4 KiB bound


def test_symlink_is_never_followed(tmp_path) -> None:
    target = tmp_path / "secret"
    target.write_bytes(CASES["pg_dump_plain"])
    link = tmp_path / "x.sql"
    os.symlink(target, link)
    assert sniff.read_head(str(link)) is None
    assert sniff.open_regular(str(link)) is None
    assert sniff.sniff_file(str(link)) == ""
    os.symlink("/etc/shadow", tmp_path / "shadow.sql")
    assert sniff.read_head(str(tmp_path / "shadow.sql")) is None


def test_fifo_never_blocks_and_is_not_read(tmp_path) -> None:
    fifo = tmp_path / "x.sql"
    os.mkfifo(fifo)
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(sniff.read_head(str(fifo))), daemon=True)
    worker.start()
    worker.join(5)
    assert not worker.is_alive(), "reading a FIFO blocked"
    assert result == [None]


def test_devices_and_sockets_are_not_opened(tmp_path) -> None:
    assert sniff.read_head("/dev/zero") is None
    assert sniff.read_head("/dev/null") is None
    path = str(tmp_path / "s.sql")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    try:
        assert sniff.read_head(path) is None
    finally:
        server.close()


def test_directories_are_not_read(tmp_path) -> None:
    assert sniff.read_head(str(tmp_path)) is None


def test_open_relative_to_a_directory_fd(tmp_path) -> None:
    (tmp_path / "h").write_bytes(b"select 1;\n")
    os.symlink("/etc/passwd", tmp_path / "l")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert sniff.read_head("h", dir_fd=fd) == b"select 1;\n"
        assert sniff.read_head("l", dir_fd=fd) is None
    finally:
        os.close(fd)


def test_atime_is_left_alone(tmp_path) -> None:
    path = tmp_path / "a.sql"
    path.write_bytes(CASES["pg_dump_plain"])
    os.utime(path, (1_000_000, 1_000_000))
    sniff.sniff_file(str(path))
    assert os.stat(path).st_atime == 1_000_000


@pytest.mark.parametrize("text, verdict", [
    (b"select 1;\n", True),
    (b"-- name: x\n-- description: a; b\nSELECT u.uid FROM users AS u\nWHERE u.name IN ({{admins}});\n", True),
    (b"/* header; */ WITH t AS (SELECT 1) SELECT * FROM t; explain select 2", True),
    (b"-- a pack template\n{{exec_rows:audit}}\nWHERE {{db_tool_filter}};\n", True),
    (b"select 1; insert into t values (1);", False),
    (b"\\copy t to x.csv csv", False),
    (b" id | name\n----+-----\n  1 | bob\n", False),
    (b"-- only a comment\n", False),
    (b"", False),
    (b"select 1;\x00", False),
])
def test_query_file(text: bytes, verdict: bool) -> None:
    assert sniff.is_query_file(text, len(text)) is verdict


def test_query_file_must_be_read_whole() -> None:
    assert sniff.is_query_file(b"select 1;", 9) and not sniff.is_query_file(b"select 1;", 10)
    assert not sniff.is_query_file(b"select 1;" * 500, 4500)
