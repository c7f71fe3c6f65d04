"""Entry point of the one-file bundle dist/osq_dbwatch.ext.

osqueryd execs the bundle with --socket/--timeout/--interval: it runs the
extension server. `osq_dbwatch.ext <sub-command> ...` (tables, correlate,
pack, ...) runs the osq-dbwatch command line instead, so a hunter on a host
without Python can still use it.
"""

import sys

from osq_dbwatch.cli import SUBCOMMANDS, main as cli_main
from osq_dbwatch.tables.server import main as extension_main

if __name__ == "__main__":
    args = sys.argv[1:]
    if args and (args[0] in SUBCOMMANDS or args[0] in ("-h", "--help", "--version")):
        sys.exit(cli_main(args))
    sys.exit(extension_main(args))
