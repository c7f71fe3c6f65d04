"""dbwatch_coverage: one row per blind-spot check of this host's telemetry.

osquery core is asked first (ExtensionManager.query on the extension's own
connection: osquery_flags and osquery_events); when core refuses or is not
there (`osq-dbwatch tables`), the checks fall back to what the host shows
(kernel audit status over netlink, /proc, PATH) and say so in `detail`.
"""

from __future__ import annotations

import os
import socket
import stat as stat_mod
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from .. import catalog, procfs
from .base import TEXT, Deadline, QueryContext, Row, Table
from .env import CoreQueryError

OK, DEGRADED, BLIND = "ok", "degraded", "blind"
NETLINK_AUDIT = 9
AUDIT_GET = 1000
STANDARD_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
MAX_WATCH_COUNT = 100_000  # directories counted under the dump roots for the inotify check
COUNT_BUDGET_S = 0.5

FLAG_NAMES = (
    "disable_audit", "audit_allow_config", "audit_persist", "audit_allow_process_events",
    "audit_allow_sockets", "enable_file_events", "enable_bpf_events", "audit_allow_fim_events",
    "disable_events", "events_expiry", "events_max",
)


@dataclass(frozen=True)
class KernelAudit:
    enabled: int
    pid: int  # the process the kernel sends audit records to; 0 = none


def kernel_audit_status() -> KernelAudit | None:
    """AUDIT_GET over NETLINK_AUDIT (read-only); None where the kernel or namespace refuses."""
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT)
    except OSError:
        return None
    try:
        sock.settimeout(1.0)
        sock.bind((0, 0))
        sock.send(struct.pack("=IHHII", 16, AUDIT_GET, 1, 1, 0))  # NLM_F_REQUEST
        data = sock.recv(8192)
        if len(data) < 16 + 16:
            return None
        _, msg_type, _, _, _ = struct.unpack_from("=IHHII", data)
        if msg_type != AUDIT_GET:
            return None
        _mask, enabled, _failure, pid = struct.unpack_from("=4I", data, 16)
        return KernelAudit(enabled, pid)
    except OSError:
        return None
    finally:
        sock.close()


@dataclass
class CoreView:
    """What osquery core told us (None fields: it did not)."""

    flags: dict[str, str] | None = None
    events: dict[str, dict[str, str]] | None = None
    error: str = ""


def _process_label(pid: int) -> str:
    st = procfs.stat(pid)
    return f"{st.comm} (pid {pid})" if st else f"pid {pid}"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


class DbwatchCoverage(Table):
    name = "dbwatch_coverage"
    description = "What osquery and this host can and cannot see for database access, dumps and egress."
    COLUMNS = (
        ("check_name", TEXT, "which check (audit_process_events, file_events_dump_roots, ...)"),
        ("status", TEXT, "ok, degraded or blind"),
        ("detail", TEXT, "one line: what was found and how to fix it"),
        ("source", TEXT, "core (osquery answered) or host (read from the host)"),
    )

    def generate(self, ctx: QueryContext) -> Iterable[Row]:
        core = self._ask_core()
        audit = kernel_audit_status()
        process = self._process_events(core, audit)
        rows = [
            process,
            self._socket_events(core, audit),
            self._file_events(core),
            self._competing_auditd(audit),
            self._clients_without_telemetry(process, self._tool_names()),
            self._config(),
        ]
        return rows

    # -- core

    def _ask_core(self) -> CoreView:
        query = self.env.core_query
        if query is None:
            return CoreView(error="not running under osquery")
        view = CoreView()
        names = ", ".join(f"'{n}'" for n in FLAG_NAMES)
        try:
            view.flags = {r.get("name", ""): r.get("value", "") for r in query(
                f"SELECT name, value FROM osquery_flags WHERE name IN ({names})")}
            view.events = {r.get("name", ""): r for r in query(
                "SELECT name, publisher, type, subscriptions, events, active FROM osquery_events")}
        except CoreQueryError as exc:
            view.error = str(exc)
        return view

    @staticmethod
    def _event(core: CoreView, name: str) -> tuple[bool, str]:
        """Whether an event table's subscriber is active in core, and a short description."""
        row = (core.events or {}).get(name)
        if row is None:
            return False, f"{name} not in osquery_events"
        active = _truthy(row.get("active"))
        return active, f"{name} active={row.get('active', '')} events={row.get('events', '')}"

    def _audit_host_fallback(self, check: str, core: CoreView, audit: KernelAudit | None, what: str) -> Row:
        if audit is None:
            return {"check_name": check, "status": BLIND, "source": "host",
                    "detail": f"cannot ask osquery core ({core.error}) and the kernel audit netlink socket is "
                              f"unavailable here: {what} cannot be collected"}
        holder = _process_label(audit.pid) if audit.pid else "nobody"
        return {"check_name": check, "status": DEGRADED, "source": "host",
                "detail": f"cannot ask osquery core ({core.error}); host: kernel audit enabled={audit.enabled}, "
                          f"records go to {holder}"}

    def _process_events(self, core: CoreView, audit: KernelAudit | None) -> Row:
        check = "audit_process_events"
        if core.flags is None:
            return self._audit_host_fallback(check, core, audit, "process_events")
        flags = core.flags
        active, desc = self._event(core, "process_events")
        bpf_active, bpf_desc = self._event(core, "bpf_process_events")
        audit_on = not _truthy(flags.get("disable_audit", "true")) and _truthy(flags.get("audit_allow_config"))
        if audit_on and active and not _truthy(flags.get("disable_events")):
            return {"check_name": check, "status": OK, "source": "core",
                    "detail": f"disable_audit=false audit_allow_config=true; {desc}"}
        if bpf_active and _truthy(flags.get("enable_bpf_events")):
            return {"check_name": check, "status": DEGRADED, "source": "core",
                    "detail": f"only BPF process events ({bpf_desc}); bpf tables are removed upstream: "
                              "enable audit (--disable_audit=false --audit_allow_config=true)"}
        if audit_on:
            return {"check_name": check, "status": DEGRADED, "source": "core",
                    "detail": f"audit flags on but {desc}: check --disable_events and that auditd does not hold the socket"}
        return {"check_name": check, "status": BLIND, "source": "core",
                "detail": f"disable_audit={flags.get('disable_audit', '?')} audit_allow_config="
                          f"{flags.get('audit_allow_config', '?')}: no process_events; set --disable_audit=false "
                          "--audit_allow_config=true --audit_persist=true"}

    def _socket_events(self, core: CoreView, audit: KernelAudit | None) -> Row:
        check = "audit_socket_events"
        if core.flags is None:
            return self._audit_host_fallback(check, core, audit, "socket_events")
        flags = core.flags
        active, desc = self._event(core, "socket_events")
        bpf_active, bpf_desc = self._event(core, "bpf_socket_events")
        audit_on = not _truthy(flags.get("disable_audit", "true")) and _truthy(flags.get("audit_allow_config"))
        if audit_on and _truthy(flags.get("audit_allow_sockets")) and active:
            return {"check_name": check, "status": OK, "source": "core", "detail": f"audit_allow_sockets=true; {desc}"}
        if bpf_active and _truthy(flags.get("enable_bpf_events")):
            return {"check_name": check, "status": DEGRADED, "source": "core",
                    "detail": f"only BPF socket events ({bpf_desc}); enable --audit_allow_sockets"}
        return {"check_name": check, "status": BLIND, "source": "core",
                "detail": f"audit_allow_sockets={flags.get('audit_allow_sockets', '?')}, {desc}: egress after a "
                          "dump is not seen; set --audit_allow_sockets=true"}

    def _file_events(self, core: CoreView) -> Row:
        check = "file_events_dump_roots"
        roots = list(self.env.config.dump_roots)
        dirs, counted_all = _count_dirs(roots, MAX_WATCH_COUNT)
        watches = _read_int("/proc/sys/fs/inotify/max_user_watches")
        watch_note = ""
        if watches is not None and dirs > watches:
            watch_note = f"; {dirs}{'' if counted_all else '+'} directories under the roots exceed " \
                         f"fs.inotify.max_user_watches={watches}"
        if core.flags is None:
            return {"check_name": check, "status": DEGRADED, "source": "host",
                    "detail": f"cannot ask osquery core ({core.error}); roots {','.join(roots)}: "
                              f"{dirs}{'' if counted_all else '+'} directories{watch_note}"}
        active, desc = self._event(core, "file_events")
        subs = (core.events or {}).get("file_events", {}).get("subscriptions", "0")
        if _truthy(core.flags.get("enable_file_events")) and active and subs not in ("", "0"):
            status = DEGRADED if watch_note else OK
            return {"check_name": check, "status": status, "source": "core",
                    "detail": f"enable_file_events=true; {desc} subscriptions={subs}; roots {','.join(roots)} "
                              f"must be in file_paths{watch_note}"}
        fim = self._event(core, "process_file_events")[0] and _truthy(core.flags.get("audit_allow_fim_events"))
        if fim:
            return {"check_name": check, "status": DEGRADED, "source": "core",
                    "detail": "only audit FIM (process_file_events, reported flaky); set --enable_file_events=true"}
        return {"check_name": check, "status": BLIND, "source": "core",
                "detail": f"enable_file_events={core.flags.get('enable_file_events', '?')}, {desc}: dump files are "
                          "seen only by dump_like_files snapshots; set --enable_file_events=true and file_paths"}

    @staticmethod
    def _competing_auditd(audit: KernelAudit | None) -> Row:
        check = "competing_auditd"
        core_pid = _core_pid()
        if audit is not None and audit.pid:
            if core_pid and audit.pid == core_pid:
                return {"check_name": check, "status": OK, "source": "host",
                        "detail": f"the audit netlink socket is held by osquery core (pid {core_pid})"}
            holder = procfs.stat(audit.pid)
            name = holder.comm if holder else "?"
            if name.startswith("osquery"):
                return {"check_name": check, "status": OK, "source": "host",
                        "detail": f"the audit netlink socket is held by {name} (pid {audit.pid})"}
            return {"check_name": check, "status": BLIND, "source": "host",
                    "detail": f"{name} (pid {audit.pid}) holds the audit netlink socket: osquery's process_events "
                              "and socket_events get nothing; stop it or forward through audisp"}
        others = [p for p in procfs.pids() if (st := procfs.stat(p)) is not None and st.comm in ("auditd", "go-audit", "auditbeat")]
        if others:
            return {"check_name": check, "status": DEGRADED, "source": "host",
                    "detail": f"{', '.join(_process_label(p) for p in others[:3])} running; the kernel audit status "
                              "could not be read to see who holds the socket"}
        if audit is None:
            return {"check_name": check, "status": DEGRADED, "source": "host",
                    "detail": "no auditd process; the kernel audit status could not be read (container or no CONFIG_AUDIT)"}
        return {"check_name": check, "status": OK, "source": "host",
                "detail": f"no process holds the audit netlink socket (audit enabled={audit.enabled})"}

    def _tool_names(self) -> set[str]:
        config = self.env.config
        return set(catalog.db_tools_with_extras(config.extra_db_clients, config.extra_dump_tools))

    @staticmethod
    def _clients_without_telemetry(process: Row, names: set[str]) -> Row:
        check = "db_clients_without_telemetry"
        found = _installed_tools(names)
        if not found:
            return {"check_name": check, "status": OK, "source": "host", "detail": "no DB clients or dump tools in PATH"}
        listed = ", ".join(found[:12]) + (f" and {len(found) - 12} more" if len(found) > 12 else "")
        if process["status"] == OK:
            return {"check_name": check, "status": OK, "source": "host",
                    "detail": f"installed: {listed}; their executions are in process_events"}
        return {"check_name": check, "status": BLIND if process["status"] == BLIND else DEGRADED, "source": "host",
                "detail": f"installed: {listed}; without process telemetry only db_cli_sessions snapshots see them"}

    def _config(self) -> Row:
        check = "config_readable"
        state = self.env.config_state
        if state.error:
            return {"check_name": check, "status": BLIND, "source": "host",
                    "detail": f"{state.error}; using defaults (no admins, service accounts, windows or allow rules)"}
        if not state.path:
            return {"check_name": check, "status": DEGRADED, "source": "host",
                    "detail": "no config file (OSQ_DBWATCH_CONFIG or /etc/osq-dbwatch/config.yml); using defaults"}
        return {"check_name": check, "status": OK, "source": "host", "detail": f"loaded {state.path}"}


def _core_pid() -> int:
    """osqueryd/osqueryi's pid: OSQUERY_EXTENSION is set by the process that execs us."""
    try:
        return int(os.environ.get("OSQUERY_EXTENSION", "0"))
    except ValueError:
        return 0


def _read_int(path: str) -> int | None:
    data = procfs.read_bytes(path, 64)
    try:
        return int(data.strip()) if data else None
    except ValueError:
        return None


def _count_dirs(roots: list[str], limit: int, budget_s: float = COUNT_BUDGET_S) -> tuple[int, bool]:
    """Directories under the roots (inotify needs a watch each), without following symlinks."""
    count = 0
    deadline = Deadline(budget_s)
    for root in roots:
        stack = [root]
        while stack:
            if deadline.expired():
                return count, False
            try:
                with os.scandir(stack.pop()) as entries:
                    for entry in entries:
                        try:
                            if entry.is_dir(follow_symlinks=False):
                                count += 1
                                if count >= limit:
                                    return count, False
                                stack.append(entry.path)
                        except OSError:
                            continue
            except OSError:
                continue
    return count, True


def _installed_tools(names: set[str]) -> list[str]:
    """DB tools (catalog plus config extras) present as executables in PATH or the standard bin directories."""
    dirs = list(dict.fromkeys([*os.environ.get("PATH", "").split(":"), *STANDARD_PATH]))
    found: list[str] = []
    for directory in dirs:
        if not directory.startswith("/"):
            continue
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    if entry.name in names and entry.name not in found:
                        try:
                            st = entry.stat()  # symlinks to the real binary are normal here
                        except OSError:
                            continue
                        if stat_mod.S_ISREG(st.st_mode) and st.st_mode & 0o111:
                            found.append(entry.name)
        except OSError:
            continue
    return sorted(found)
