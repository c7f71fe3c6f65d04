"""What the tables need from outside: the config, and a way to ask osquery core.

The extension must keep serving with a bad or missing config, so the config
is loaded here with its error kept (dbwatch_coverage reports it) and the
defaults used instead. The file is re-read when it changes on disk.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

from ..config import DEFAULT_CONFIG_PATH, Config, ConfigError, load_config
from .accounts import Accounts

CONFIG_ENV = "OSQ_DBWATCH_CONFIG"

# Runs one SQL statement on osquery core; returns rows or raises CoreQueryError.
CoreQuery = Callable[[str], list[dict[str, str]]]


class CoreQueryError(Exception):
    """osquery core refused or failed a query (one line)."""


@dataclass(frozen=True)
class ConfigState:
    config: Config
    path: str  # the file read, or "" when defaults are used
    error: str  # one line, "" when the config loaded


def config_path_from_env() -> str | None:
    value = os.environ.get(CONFIG_ENV, "").strip()
    return value or None


class ConfigHolder:
    """Loads the config once and again whenever the file's identity or mtime changes."""

    def __init__(self, path: str | None = None, log: Callable[[str], None] | None = None) -> None:
        self.path = path  # None: the default path when it exists, else defaults
        self._log = log or (lambda line: print(line, file=sys.stderr))
        self._stamp: tuple[int, int, int, int] | None = None
        self._state: ConfigState | None = None
        self._lock = threading.Lock()

    def _file(self) -> str | None:
        if self.path is not None:
            return self.path
        return DEFAULT_CONFIG_PATH if os.path.lexists(DEFAULT_CONFIG_PATH) else None

    def get(self) -> ConfigState:
        with self._lock:
            path = self._file()
            stamp: tuple[int, int, int, int] | None
            try:
                st = os.stat(path) if path else None
                stamp = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size) if st else None
            except OSError:
                stamp = (-1, -1, -1, -1)
            if self._state is not None and stamp == self._stamp and path == self._state.path:
                return self._state
            self._stamp = stamp
            if path is None:
                self._state = ConfigState(Config(), "", "")
                return self._state
            try:
                self._state = ConfigState(load_config(path), path, "")
            except ConfigError as exc:
                message = str(exc).splitlines()[0] if str(exc) else "invalid config"
                self._log(f"osq-dbwatch: config error, using defaults: {message}")
                self._state = ConfigState(Config(), path, message)
            return self._state


class TableEnv:
    """Shared by the tables of one extension process (or one CLI run)."""

    def __init__(
        self,
        config: ConfigHolder | None = None,
        core_query: CoreQuery | None = None,
        hostname: str | None = None,
        passwd_path: str = "/etc/passwd",
        group_path: str = "/etc/group",
    ) -> None:
        self.config_holder = config or ConfigHolder(config_path_from_env())
        self.core_query = core_query
        self.hostname = hostname or socket.gethostname()
        self.passwd_path = passwd_path
        self.group_path = group_path

    def accounts(self) -> Accounts:
        return Accounts.load(self.passwd_path, self.group_path)

    @property
    def config_state(self) -> ConfigState:
        return self.config_holder.get()

    @property
    def config(self) -> Config:
        return self.config_holder.get().config
