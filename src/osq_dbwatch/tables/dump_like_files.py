"""dump_like_files: recently modified dump-like files under the dump roots.

The walk is cheap first: directory entries come from os.scandir (no stat),
a name filter picks candidates (a dump-like suffix, or no suffix at all, as
attackers' `/tmp/x` files have), only candidates are lstat'ed, and only
recent candidates are opened, safely (sniff.py), for their first 4 KiB.
Symlinks are never followed, directories on another filesystem than their
root are not entered (like `find -xdev`), and the walk is bounded in depth,
entries, rows and time; a bound that cuts the scan adds a marker row with
truncated = 1.
"""

from __future__ import annotations

import os
import stat as stat_mod
import time
from collections.abc import Iterable
from dataclasses import dataclass

from .. import catalog, procfs, sniff
from .accounts import Accounts
from .base import BIGINT, INTEGER, OP_GLOB, OP_LIKE, TEXT, Deadline, QueryContext, Row, Table

DEFAULT_WINDOW_S = 24 * 3600

# catalog.dump_suffix_strength as set lookups on the last suffix: the walk
# asks this for every entry, so it must cost about one dict probe.
_STRONG = frozenset(s[1:] for s in catalog.DUMP_SUFFIXES_STRONG)
_WEAK = frozenset(s[1:] for s in catalog.DUMP_SUFFIXES_WEAK)
_COMPRESSION = frozenset(s[1:] for s in catalog.COMPRESSION_SUFFIXES)
_ANY_SUFFIX = _STRONG | _WEAK | _COMPRESSION
_SIMPLE = all(s.count(".") == 1 for s in (*catalog.DUMP_SUFFIXES_STRONG, *catalog.DUMP_SUFFIXES_WEAK,
                                           *catalog.COMPRESSION_SUFFIXES))


def name_strength(name: str) -> str:
    """Same answer as catalog.dump_suffix_strength(name), for a bare file name."""
    if not _SIMPLE:
        return catalog.dump_suffix_strength(name)
    lower = name.lower()
    while True:
        base, dot, ext = lower.rpartition(".")
        if not dot:
            return ""
        if ext in _STRONG:
            return "strong"
        if ext in _WEAK:
            return "weak"
        if ext in _COMPRESSION and base:
            lower = base
            continue
        return ""


@dataclass(frozen=True)
class ScanLimits:
    max_depth: int = 12  # directory levels below a root
    max_entries: int = 500_000  # directory entries looked at, all roots together
    max_rows: int = 5_000
    max_sniffs: int = 20_000  # files opened for their first 4 KiB
    time_budget_s: float = 5.0  # osquery gives up on an extension after ~10 s


def _like_prefix(pattern: str, op: int) -> tuple[str, str]:
    """The start of a LIKE/GLOB pattern up to its first multi-character wildcard,
    and the single-character wildcard that may appear in it."""
    multi, single = ("%", "_") if op == OP_LIKE else ("*[", "?")
    for index, char in enumerate(pattern):
        if char in multi:
            return pattern[:index], single
    return pattern, single


def _compatible(text: str, prefix: str, single: str, nocase: bool) -> bool:
    """Whether `text` and `prefix` agree on their common length (`single` matches any character)."""
    if nocase:
        text, prefix = text.casefold(), prefix.casefold()
    for a, b in zip(text, prefix):
        if b != single and a != b:
            return False
    return True


def _under(path: str, root: str) -> bool:
    root = root.rstrip("/") or "/"
    return path == root or path.startswith(root + "/") or root == "/"


# Directories are opened relative to their parent and never through a symlink,
# so a directory swapped for a link mid-walk cannot lead the walk elsewhere.
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NONBLOCK
_SUBDIR_FLAGS = _DIR_FLAGS | os.O_NOFOLLOW


class _Stop(Exception):
    """A bound ended the walk; the message names it."""


class _Walker:
    """One bounded walk over the roots, directory by directory (fds, not paths)."""

    def __init__(self, table: DumpLikeFiles, since: float, prefixes: list[tuple[str, str, bool]],
                 accounts: Accounts, deadline: Deadline) -> None:
        self.table = table
        self.limits = table.limits
        self.since = since
        self.prefixes = prefixes
        self.accounts = accounts
        self.deadline = deadline
        self.rows: list[Row] = []
        self.entries = 0
        self.sniffs = 0
        self.seen_dirs: set[tuple[int, int]] = set()
        self.depth_cut: list[str] = []
        self.root = ""
        self.root_dev = 0

    def wanted(self, path: str, is_dir: bool) -> bool:
        """A file must fit every pattern's prefix; a directory must be able to hold such a file."""
        for prefix, single, nocase in self.prefixes:
            text = path + "/" if is_dir else path
            if not _compatible(text, prefix, single, nocase):
                return False
            if not is_dir and len(text) < len(prefix):
                return False
        return True

    def directory(self, fd: int, path: str, depth: int) -> None:
        limits = self.limits
        any_suffix = _ANY_SUFFIX if _SIMPLE else None
        prefixes = self.prefixes
        since = self.since
        subdirs: list[str] = []
        try:
            scanner = os.scandir(fd)
        except OSError:
            return
        with scanner:
            for entry in scanner:
                self.entries += 1
                if self.entries > limits.max_entries:
                    raise _Stop(f"max_entries {limits.max_entries} reached")
                if self.entries & 255 == 0 and self.deadline.expired():
                    raise _Stop(f"time budget {limits.time_budget_s:g}s reached")
                name = entry.name
                try:
                    if entry.is_dir(follow_symlinks=False):
                        subdirs.append(name)
                        continue
                    # Cheap name filter before any stat: a dump-like suffix, or
                    # no suffix at all (`/tmp/x`, `/dev/shm/.d`).
                    dot = name.rfind(".")
                    if dot > 0:
                        if any_suffix is not None and name[dot + 1 :].lower() not in any_suffix:
                            continue
                        strength = name_strength(name)
                        if not strength:
                            continue
                    else:
                        strength = ""
                    if not entry.is_file(follow_symlinks=False):
                        continue  # symlinks, FIFOs, sockets, devices
                    file_path = f"{path}/{name}"
                    if prefixes and not self.wanted(file_path, False):
                        continue
                    st = entry.stat(follow_symlinks=False)  # fstatat relative to the directory
                except OSError:
                    continue  # vanished
                if st.st_mtime < since or not stat_mod.S_ISREG(st.st_mode):
                    continue
                self.sniffs += 1
                if self.sniffs > limits.max_sniffs:
                    raise _Stop(f"max_sniffs {limits.max_sniffs} reached")
                row = self.table._row(file_path, self.root, st, self.accounts, strength, name, fd)
                if row is not None:
                    self.rows.append(row)
                    if len(self.rows) >= limits.max_rows:
                        raise _Stop(f"max_rows {limits.max_rows} reached")
        for name in subdirs:
            sub_path = f"{path}/{name}"
            if prefixes and not self.wanted(sub_path, True):
                continue
            if depth + 1 > limits.max_depth:
                if self.root not in self.depth_cut:
                    self.depth_cut.append(self.root)
                continue
            try:
                sub = os.open(name, _SUBDIR_FLAGS, dir_fd=fd)
            except OSError:
                continue  # vanished, or replaced by a symlink
            try:
                st = os.fstat(sub)
                key = (st.st_dev, st.st_ino)
                if st.st_dev != self.root_dev or key in self.seen_dirs:
                    continue  # another filesystem, or a bind-mounted loop
                self.seen_dirs.add(key)
                self.directory(sub, sub_path, depth + 1)
            finally:
                os.close(sub)


class _Truncation:
    def __init__(self) -> None:
        self.notes: dict[str, str] = {}  # root -> first bound that cut it

    def add(self, root: str, note: str) -> None:
        self.notes.setdefault(root, note)


class DumpLikeFiles(Table):
    name = "dump_like_files"
    description = "Recently modified files that look like database dumps, by name or by content."
    COLUMNS = (
        ("path", TEXT, "file path (for the truncation marker row: the root being scanned)"),
        ("root", TEXT, "dump root the file was found under"),
        ("size", BIGINT, "bytes"),
        ("mtime", BIGINT, "last modification, seconds since the epoch"),
        ("ctime", BIGINT, "last status change, seconds since the epoch"),
        ("inode", BIGINT, "inode number"),
        ("uid", BIGINT, "owner uid"),
        ("owner", TEXT, "owner name"),
        ("mode", TEXT, "permission bits, octal"),
        ("kind_by_name", TEXT, "strong or weak dump-like suffix (after compression suffixes)"),
        ("kind_by_content", TEXT, "signature in the first 4 KiB (pg_dump_custom, mysqldump, csv, gzip, ...)"),
        ("writer_pid", BIGINT, "a process holding the file open for writing"),
        ("writer_name", TEXT, "that process's name"),
        ("truncated", INTEGER, "1 on the marker row when the scan stopped at a bound"),
        ("note", TEXT, "marker row: which bound stopped the scan"),
    )

    limits = ScanLimits()

    def generate(self, ctx: QueryContext) -> Iterable[Row]:
        config = self.env.config
        roots = [os.path.normpath(r) for r in dict.fromkeys(config.dump_roots) if r.startswith("/")]
        accounts = self.env.accounts()
        deadline = Deadline(self.limits.time_budget_s)
        truncation = _Truncation()
        exact = [p for p in ctx.equals("path") if p.startswith("/")]
        if exact:
            rows = self._exact(exact, roots, accounts)
        else:
            bound = ctx.lower_bound("mtime")
            since = bound if bound is not None else time.time() - DEFAULT_WINDOW_S
            prefixes = [(*_like_prefix(c.expr, c.op), c.op == OP_LIKE)
                        for c in ctx.constraints.get("path", ()) if c.op in (OP_LIKE, OP_GLOB)]
            rows = self._walk(roots, since, prefixes, accounts, deadline, truncation)
        self._add_writers(rows, deadline)
        for root, note in truncation.notes.items():
            rows.append({"path": root, "root": root, "truncated": 1, "note": note})
        return rows

    # -- candidates

    def _row(self, path: str, root: str, st: os.stat_result, accounts: Accounts, strength: str,
             name: str | None = None, dir_fd: int | None = None) -> Row | None:
        head = sniff.read_head_as(path if dir_fd is None else name or path, st, dir_fd=dir_fd) if st.st_size > 0 else None
        content = sniff.sniff_bytes(head) if head else ""
        # A dump-like name is enough; otherwise the content must show database
        # data (a bare gzip without a dump-like name is a cache, not a dump).
        if strength != "strong" and content not in sniff.DUMP_KINDS:
            return None
        if not content and head and sniff.is_query_file(head, st.st_size):
            return None  # a small file of SELECTs (a pack's own queries) is named like a dump but holds no data
        return {
            "path": path,
            "root": root,
            "size": st.st_size,
            "mtime": int(st.st_mtime),
            "ctime": int(st.st_ctime),
            "inode": st.st_ino,
            "uid": st.st_uid,
            "owner": accounts.name(st.st_uid),
            "mode": format(stat_mod.S_IMODE(st.st_mode), "04o"),
            "kind_by_name": strength,
            "kind_by_content": content,
            "truncated": 0,
        }

    def _exact(self, paths: list[str], roots: list[str], accounts: Accounts) -> list[Row]:
        """`path = X`: look at X alone (no recency window), if it lies under a root."""
        rows: list[Row] = []
        for path in dict.fromkeys(paths):
            path = os.path.normpath(path)
            root = next((r for r in roots if _under(path, r)), None)
            if root is None:
                continue
            # No symlink anywhere below the root: `/tmp/link/x.sql` with
            # /tmp/link -> /etc must not reach /etc.
            relative = os.path.relpath(path, root)
            if os.path.realpath(path) != os.path.normpath(os.path.join(os.path.realpath(root), relative)):
                continue
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat_mod.S_ISREG(st.st_mode):
                row = self._row(path, root, st, accounts, name_strength(os.path.basename(path)))
                if row:
                    rows.append(row)
        return rows

    def _walk(self, roots: list[str], since: float, prefixes: list[tuple[str, str, bool]], accounts: Accounts,
              deadline: Deadline, truncation: _Truncation) -> list[Row]:
        walker = _Walker(self, since, prefixes, accounts, deadline)
        for root in roots:
            try:
                fd = os.open(root, _DIR_FLAGS)  # an admin-configured root may itself be a symlink
            except OSError:
                continue
            try:
                st = os.fstat(fd)
                key = (st.st_dev, st.st_ino)
                if key in walker.seen_dirs or not walker.wanted(root, True):
                    continue
                walker.seen_dirs.add(key)
                walker.root, walker.root_dev = root, st.st_dev
                walker.directory(fd, root.rstrip("/"), 0)
            except _Stop as stop:
                truncation.add(root, str(stop))
                break
            finally:
                os.close(fd)
        for root in walker.depth_cut:
            truncation.add(root, f"max_depth {self.limits.max_depth}: deeper directories skipped")
        return walker.rows

    # -- writers

    @staticmethod
    def _add_writers(rows: list[Row], deadline: Deadline) -> None:
        """The process (if any) holding each file open for writing: /proc/*/fd + fdinfo flags."""
        wanted = {row["path"]: row for row in rows}
        if not wanted:
            return
        for pid in procfs.pids():
            if deadline.expired():
                return
            for fd, target in procfs.fd_targets(pid):
                row = wanted.get(target)
                if row is None or "writer_pid" in row:
                    continue
                if procfs.fd_open_for_write(pid, fd):
                    st = procfs.stat(pid)
                    row["writer_pid"] = pid
                    row["writer_name"] = st.comm if st else None
