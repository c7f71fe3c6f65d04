"""The findings sink: one file per micro-batch, written whole or not at all; no Spark import here.

Exactly-once contract (docs/spark.md): Spark runs the foreachBatch function
of batch N again after a crash, with the same input files (its offset log)
and the same host states (its state store's version N-1). The operator is
deterministic, so the rerun produces the same findings, and this sink writes
them to the same name, `findings-<N>.jsonl`, through a temporary file and a
rename: a reader sees the old complete file or the new identical one, never a
part, and never the same record twice. Each record also carries its stable
key (OCSF metadata.uid / ECS event.id: chain id and revision), for stores
that upsert.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable

PREFIX = "findings-"
SUFFIX = ".jsonl"


class SinkError(Exception):
    """The output directory cannot be used; str() is one line."""


def prepare(directory: str) -> str:
    """The output directory, made 0700 when missing; a symlink or a non-directory is refused."""
    path = os.path.abspath(directory)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        try:
            os.makedirs(path, mode=0o700)
        except OSError as exc:
            raise SinkError(f"{directory}: cannot create the output directory: {exc.strerror or exc}") from None
        return path
    if stat.S_ISLNK(info.st_mode):
        raise SinkError(f"{directory}: the output directory is a symlink (refused)")
    if not stat.S_ISDIR(info.st_mode):
        raise SinkError(f"{directory}: the output is not a directory")
    return path


def batch_name(batch_id: int) -> str:
    return f"{PREFIX}{batch_id:012d}{SUFFIX}"


def write_batch(directory: str, batch_id: int, records: Iterable[tuple[str, str]]) -> int:
    """Write (record_id, record) pairs of one micro-batch, sorted by key; returns how many.

    A batch with no finding leaves no file (and removes one an earlier attempt left, though a
    deterministic rerun never differs).
    """
    lines = sorted(records)
    final = os.path.join(directory, batch_name(batch_id))
    if not lines:
        try:
            os.unlink(final)
        except FileNotFoundError:
            pass
        return 0
    tmp = os.path.join(directory, f".{batch_name(batch_id)}.{os.getpid()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            for _, record in lines:
                handle.write(record.encode("utf-8", "surrogatepass") + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return len(lines)


def read_findings(directory: str) -> list[str]:
    """Every record in the sink, in batch order (what a reader of the contract sees)."""
    out: list[str] = []
    for name in sorted(os.listdir(directory)):
        if name.startswith(PREFIX) and name.endswith(SUFFIX):
            with open(os.path.join(directory, name), "rb") as handle:
                out.extend(line.decode() for line in handle.read().splitlines() if line.strip())
    return out
