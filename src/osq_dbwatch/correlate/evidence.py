"""Evidence: the one record of something seen, and the OCSF objects a finding shows of it.

An Evidence is one of:
- FILE: a dump-like file written lately (dump_file_events), kept a while to
  link to chains that open after it;
- CONNECT: a successful connect to an external address (db_egress);
- UPLOAD: a transfer tool's upload to an external destination (transfer_exec);
- LINKED: an entry of a chain, whose `ocsf` is the OCSF evidence object the
  finding shows (access, dump, staging or egress).
Each kind keeps the JSON form its place in the host state has always had
(HostState.files, HostState.egress, Chain.evidences), so state files written
by earlier versions load unchanged and are written back byte for byte.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

from ..cmdline import basename, redact_text
from .rows import ExecRow

FILE: Final = 1
CONNECT: Final = 2
UPLOAD: Final = 3
LINKED: Final = 4


def ms(t: int) -> int:
    """Event seconds as OCSF milliseconds."""
    return int(t) * 1000


class Evidence:
    """One piece of evidence (see the module docstring for its kinds); fields a kind does not use keep their defaults.

    Built for nearly every file and external connect row: file() and connect() build one with positional
    arguments, which interpreted cost about half of a keyword call (a class called with keywords packs them into
    a dict); `__slots__` halves the attribute stores again (compiled, a native class has its own layout).
    """

    __slots__ = ("action", "address", "files", "id", "kind", "ocsf", "owner", "path", "pid", "port", "ppid", "process",
                  "query", "sha256", "size", "status", "t", "tool", "user", "writer_pid")

    def __init__(self, kind: int, id: str, t: int, query: str = "", tool: str = "", pid: int = 0, user: str = "",
                 path: str = "", files: tuple[str, ...] = (), address: str = "", port: int | None = None,
                 owner: str = "", size: int | None = None, sha256: str = "", writer_pid: int = 0, action: str = "",
                 process: dict[str, Any] | None = None, ocsf: dict[str, Any] | None = None, ppid: int = 0,
                 status: str = "") -> None:
        self.kind = kind
        self.id = id  # identity within a chain ("" for a FILE: its chain entry is "f|" + path)
        self.t = t  # event time, seconds
        self.query = query
        self.tool = tool
        self.pid = pid
        self.user = user
        self.path = path  # FILE: the file; CONNECT: the connecting process's executable
        self.files = files  # UPLOAD: the local files it reads
        self.address = address  # CONNECT: the remote IP; UPLOAD: the destination
        self.port = port
        self.owner = owner
        self.size = size
        self.sha256 = sha256
        self.writer_pid = writer_pid
        self.action = action
        self.process = process  # UPLOAD: the OCSF process of its exec row
        self.ocsf = ocsf  # LINKED: the OCSF evidence object
        self.ppid = ppid  # UPLOAD: the parent's pid (a pipeline's runs share it); 0 when unknown
        self.status = status  # CONNECT: socket status ("in_progress", "succeeded"; "" from older agents)

    # -- JSON forms (state files) ---------------------------------------------

    def to_json(self) -> dict[str, Any]:
        if self.kind == LINKED:
            return {"_id": self.id, "_t": self.t, **(self.ocsf or {})}
        if self.kind == FILE:
            return {"t": self.t, "path": self.path, "owner": self.owner, "size": self.size, "sha256": self.sha256,
                    "writer_pid": self.writer_pid, "query": self.query, "action": self.action}
        if self.kind == CONNECT:
            data = {"_id": self.id, "t": self.t, "pid": self.pid, "user": self.user, "files": self.files,
                    "tool": self.tool, "ip": self.address, "port": self.port, "query": self.query, "path": self.path}
            if self.status:
                data["status"] = self.status
            return data
        data = {"_id": self.id, "t": self.t, "pid": self.pid, "user": self.user, "files": self.files, "tool": self.tool,
                "dest": self.address, "port": self.port, "query": self.query, "process": self.process}
        if self.ppid:
            data["ppid"] = self.ppid
        return data


def file(t: int, path: str, owner: str, size: int | None, sha256: str, writer_pid: int, query: str,
         action: str) -> Evidence:
    """A FILE: a dump-like file written lately."""
    return Evidence(FILE, "", t, query, "", 0, "", path, (), "", None, owner, size, sha256, writer_pid, action)


def connect(id: str, t: int, query: str, tool: str, pid: int, user: str, path: str, address: str, port: int | None,
            status: str) -> Evidence:
    """A CONNECT: a made connect to an external address."""
    return Evidence(CONNECT, id, t, query, tool, pid, user, path, (), address, port, "", None, "", 0, "", None, None, 0,
                    status)


def history_id(user: str, file: str, command: str) -> str:
    """The identity of a client history entry, with no form of a secret in it.

    Snapshots of db_client_history repeat every entry, so entries are keyed;
    the raw command may hold a password (`ALTER USER .. IDENTIFIED BY 'pw'`),
    and the key is kept in the state, so it is a hash of the redacted text.
    """
    digest = hashlib.sha256(redact_text(command).encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"h#{user}|{file}|{digest}"


def upgrade_history_id(key: str) -> str:
    """A 0.1 state's raw `h|user|file|command` key in today's form (other keys unchanged)."""
    if not key.startswith("h|"):
        return key
    parts = key.split("|", 3)
    return history_id(parts[1], parts[2], parts[3]) if len(parts) == 4 else key


def linked_from_json(data: dict[str, Any]) -> Evidence:
    """A chain's evidence entry as saved: the OCSF object with its "_id" and "_t"."""
    return Evidence(LINKED, upgrade_history_id(data["_id"]), data["_t"],
                    ocsf={k: v for k, v in data.items() if k not in ("_id", "_t")})


def file_from_json(data: dict[str, Any]) -> Evidence:
    return file(data["t"], data["path"], data["owner"], data["size"], data["sha256"], data["writer_pid"], data["query"],
                data["action"])


def egress_from_json(data: dict[str, Any]) -> Evidence:
    """A remembered connect (it has "ip") or upload (it has "dest")."""
    if "ip" in data:
        return Evidence(CONNECT, data["_id"], data["t"], query=data["query"], tool=data["tool"], pid=data["pid"],
                        user=data["user"], path=data["path"], files=tuple(data["files"]), address=data["ip"],
                        port=data["port"], status=str(data.get("status") or ""))
    return Evidence(UPLOAD, data["_id"], data["t"], query=data["query"], tool=data["tool"], pid=data["pid"],
                    user=data["user"], files=tuple(data["files"]), address=data["dest"], port=data["port"],
                    process=data["process"], ppid=int(data.get("ppid") or 0))


# ---------------------------------------------------------------------------
# OCSF objects


def _file_object(path: str) -> dict[str, Any]:
    return {"path": path, "name": basename(path), "type_id": 1, "type": "Regular File"}


def exec_process(row: ExecRow, redacted: str, redacted_parent: str) -> dict[str, Any]:
    """The OCSF process of an exec row (command lines already redacted)."""
    process: dict[str, Any] = {
        "pid": row.pid,
        "cmd_line": redacted,
        "file": _file_object(row.path),
        "created_time": ms(row.time),
        "user": {"name": row.username, **({"uid": str(row.uid)} if row.uid is not None else {})},
    }
    if row.cwd:
        process["working_directory"] = row.cwd
    if row.parent_pid or row.parent_path or row.parent_cmdline:
        parent: dict[str, Any] = {"pid": row.parent_pid}
        if row.parent_cmdline:
            parent["cmd_line"] = redacted_parent
        if row.parent_path:
            parent["file"] = _file_object(row.parent_path)
        process["parent_process"] = parent
    return process


def linked_file(f: Evidence) -> Evidence:
    """A chain's entry for a dump-like file."""
    file_obj = _file_object(f.path)
    if f.size is not None:
        file_obj["size"] = f.size
    if f.owner:
        file_obj["owner"] = {"name": f.owner}
    if f.sha256:
        file_obj["hashes"] = [{"algorithm_id": 3, "algorithm": "SHA-256", "value": f.sha256}]
    return Evidence(LINKED, "f|" + f.path, f.t, ocsf={"file": file_obj,
                                                     "data": {"stage": "dump", "query": f.query, "action": f.action}})


def grow_file(e: Evidence, size: int | None) -> None:
    """A chain's file entry takes the largest size seen (inotify's CREATED row says 0 bytes)."""
    if size is None or e.ocsf is None:
        return
    file_obj = e.ocsf.get("file")
    if type(file_obj) is dict and (type(file_obj.get("size")) is not int or file_obj["size"] < size):
        file_obj["size"] = size


def linked_egress(e: Evidence) -> Evidence:
    """A chain's entry for a connect or an upload."""
    process = e.process
    if process is None:  # a connect: its process object is built when it joins a chain
        process = {"pid": e.pid}
        if e.path:
            process["file"] = {"path": e.path, "name": e.tool, "type_id": 1, "type": "Regular File"}
        if e.user:
            process["user"] = {"name": e.user}
    endpoint: dict[str, Any]
    data: dict[str, Any] = {"stage": "egress", "query": e.query, "tool": e.tool}
    if e.kind == CONNECT:
        endpoint = {"ip": e.address}
        if e.port is not None:
            endpoint["port"] = e.port
        if e.status:
            # osquery's socket status: in_progress is a non-blocking connect the kernel accepted (made, not yet
            # known to be answered); succeeded a completed one. Rows of older agents only say success = 1.
            data["connect_status"] = e.status
    else:
        endpoint = {"hostname": e.address}
    return Evidence(LINKED, e.id, e.t, ocsf={"process": process, "data": data, "dst_endpoint": endpoint})


def linked(id: str, t: int, ocsf: dict[str, Any]) -> Evidence:
    """A chain's entry for an access or a staging run."""
    return Evidence(LINKED, id, t, ocsf=ocsf)
