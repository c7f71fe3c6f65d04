"""Entry point of the one-file bundle dist/osq_dbwatch.ext.

osqueryd execs the bundle with --socket/--timeout/--interval: it runs the
extension server. `osq_dbwatch.ext <sub-command> ...` (tables, correlate,
pack, ...) runs the osq-dbwatch command line instead, so a hunter on a host
without Python can still use it.
"""

import os
import signal
import sys

from osq_dbwatch.cli import SUBCOMMANDS, main as cli_main
from osq_dbwatch.tables.server import main as extension_main

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> None:
    """PyInstaller --onefile runs this code in a child of its bootloader, and
    the bootloader is the process osqueryd launched, watches and kills. A
    SIGKILL cannot be forwarded, so ask the kernel to kill us with it instead
    of leaving an orphaned extension behind."""
    if not getattr(sys, "frozen", False) or not sys.platform.startswith("linux"):
        return
    import ctypes

    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the bootloader died before prctl took effect
        os._exit(1)


if __name__ == "__main__":
    die_with_parent()
    args = sys.argv[1:]
    if args and (args[0] in SUBCOMMANDS or args[0] in ("-h", "--help", "--version")):
        sys.exit(cli_main(args))
    sys.exit(extension_main(args))
