"""Build script: pyproject.toml holds the metadata; this file only adds the
optional mypyc compilation of the correlator's hot modules.

The same sources run as plain Python; mypyc (from the `mypy` package, a
build-time requirement only) turns the modules below into C extensions that
Python then imports in preference to the .py files beside them.

    OSQ_DBWATCH_COMPILE=0            build pure Python, no compiler needed
    OSQ_DBWATCH_REQUIRE_COMPILED=1   a failed compile is an error (CI sets it)

Otherwise a failed compile (no C compiler, a module that mypyc rejects) warns
in one line and installs pure Python. An editable install (`make setup`) puts
the extensions beside the sources in src/: one small .so per module plus the
modules' shared library, `src/<hash>__mypyc.*.so` (all git-ignored;
deploy/build-bundle.sh hands that library to PyInstaller).
"""

from __future__ import annotations

import os
import sys

# The modules compiled with mypyc, relative to src/. The one list: the
# Makefile, tests/conftest.py and tests/test_compiled.py all read it from here.
COMPILED_MODULES = [
    "osq_dbwatch/correlate/fastpath.py",
    "osq_dbwatch/correlate/engine.py",
    "osq_dbwatch/correlate/hoststate.py",
    "osq_dbwatch/correlate/residents.py",
    "osq_dbwatch/correlate/classify.py",
    "osq_dbwatch/correlate/addresses.py",
    "osq_dbwatch/correlate/evidence.py",
    "osq_dbwatch/correlate/scoring.py",
    "osq_dbwatch/correlate/baseline.py",
    "osq_dbwatch/correlate/rows.py",
    "osq_dbwatch/cmdline.py",
]



def _flag(name: str) -> str:
    return os.environ.get(name, "").strip().lower()


COMPILE = _flag("OSQ_DBWATCH_COMPILE") not in ("0", "false", "no", "off")
REQUIRE = _flag("OSQ_DBWATCH_REQUIRE_COMPILED") in ("1", "true", "yes", "on")

if __name__ == "__main__" and sys.argv[1:] == ["--compiled-sources"]:
    # For the Makefile (any python3, before setuptools exists): one path a line.
    print("\n".join("src/" + path for path in COMPILED_MODULES))
    raise SystemExit(0)

if __name__ == "__main__" and sys.argv[1:] == ["--compiled-status"]:
    # For the Makefile, after the install: one line saying what got imported
    # (pip shows nothing of a build that succeeded, warnings included).
    import importlib
    from importlib.machinery import ExtensionFileLoader

    modules = [path[:-3].replace("/", ".") for path in COMPILED_MODULES]
    pure = [m for m in modules if not isinstance(importlib.import_module(m).__loader__, ExtensionFileLoader)]
    if not pure:
        print(f"osq-dbwatch: mypyc-compiled {len(modules)} correlator modules")
        raise SystemExit(0)
    why = "OSQ_DBWATCH_COMPILE=0" if not COMPILE else "compile failed; `pip install -v -e .` shows why"
    print(f"WARNING: osq-dbwatch: correlator modules run as pure Python ({why}): {', '.join(pure)}", file=sys.stderr)
    raise SystemExit(1 if REQUIRE else 0)

if REQUIRE and not COMPILE:
    raise SystemExit("setup.py: OSQ_DBWATCH_REQUIRE_COMPILED=1 contradicts OSQ_DBWATCH_COMPILE=0")

import glob  # noqa: E402
import sysconfig  # noqa: E402

from setuptools import Extension, setup  # noqa: E402
from setuptools.command.build_ext import build_ext  # noqa: E402
from setuptools.command.build_py import build_py  # noqa: E402
from setuptools.errors import BaseError, CCompilerError  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "src")
EXT_SUFFIX = sysconfig.get_config_var("EXT_SUFFIX") or ".so"


def _warn(message: str) -> None:
    print(f"WARNING: osq-dbwatch: {message}; installing the correlator as pure Python", file=sys.stderr)


def _one_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[-1] if lines else type(error).__name__


def _fail(message: str) -> SystemExit:
    return SystemExit(f"error: osq-dbwatch: {message} (OSQ_DBWATCH_REQUIRE_COMPILED=1)")


def _inplace_artifacts() -> list[str]:
    """Extensions an earlier editable build left in src/: module shims and the shared mypyc library.

    A shim only counts when its .py is beside it, so nothing else is touched."""
    found = glob.glob(os.path.join(SRC, "**", "*__mypyc" + EXT_SUFFIX), recursive=True)
    for path in glob.glob(os.path.join(SRC, "osq_dbwatch", "**", "*" + EXT_SUFFIX), recursive=True):
        if os.path.exists(path[: -len(EXT_SUFFIX)] + ".py"):
            found.append(path)
    return sorted(set(found))


def _remove_inplace_artifacts(keep: frozenset[str] = frozenset()) -> None:
    # A stale extension would shadow its .py: an editable build that does not
    # (re)compile a module must not leave that module's old .so behind.
    for path in _inplace_artifacts():
        if os.path.abspath(path) not in keep:
            os.remove(path)


class BuildPy(build_py):
    def run(self) -> None:
        if getattr(self, "editable_mode", False) and not COMPILE:
            _remove_inplace_artifacts()
        super().run()


class BuildExt(build_ext):
    """Runs mypyc only when extensions are really built (not for metadata), and
    turns a failed compile into a warning unless it is required."""

    def finalize_options(self) -> None:
        # egg_info finalizes build_ext to list sources; a build finalizes it
        # (once) before it runs. Only a build pays for mypyc.
        if [ext.name for ext in self.distribution.ext_modules or []] == [PLACEHOLDER_NAME]:
            metadata_only = set(self.distribution.commands) <= {"egg_info", "dist_info", "sdist"}
            self.distribution.ext_modules = [] if metadata_only else _mypycify()
        super().finalize_options()

    def run(self) -> None:
        inplace = self.inplace or getattr(self, "editable_mode", False)
        if self.extensions:
            try:
                super().run()
                return
            except (BaseError, CCompilerError, OSError) as error:  # compile or link error, no compiler
                if REQUIRE:
                    raise _fail(f"compiling {', '.join(COMPILED_MODULES)} failed: {error}") from error
                _warn(f"C compile failed ({_one_line(error)})")
                self.extensions = []
        if inplace:
            _remove_inplace_artifacts()

    def copy_extensions_to_source(self) -> None:
        super().copy_extensions_to_source()
        # Stamp the in-place copies now: copy_file keeps the build's mtime, and an
        # extension that did not need relinking keeps an old one, which the test
        # suite's staleness check (tests/conftest.py) would take for a stale build.
        build_py_cmd = self.get_finalized_command("build_py")
        keep: set[str] = set()
        for ext in self.extensions:
            inplace_file, _ = self._get_inplace_equivalent(build_py_cmd, ext)
            keep.add(os.path.abspath(inplace_file))
            if os.path.exists(inplace_file):
                os.utime(inplace_file)
        _remove_inplace_artifacts(frozenset(keep))  # modules dropped from COMPILED_MODULES


def _mypycify() -> list[Extension]:
    try:
        from mypyc.build import mypycify
    except ImportError as error:
        if REQUIRE:
            raise _fail(f"mypyc is not installed ({error})") from error
        _warn("mypyc is not installed")
        return []
    paths = [os.path.join("src", path) for path in COMPILED_MODULES]
    # Only the compiled modules must type-check: the modules they import are
    # read for their types, their own errors (and untyped third-party imports)
    # are not mypyc's business.
    options = ["--follow-imports=silent", "--ignore-missing-imports"]
    try:
        return mypycify(options + paths, opt_level="3", target_dir=os.path.join("build", "mypyc"))
    except SystemExit as error:  # mypyc prints the type errors, then exits
        if REQUIRE:
            raise _fail(f"mypyc rejected the modules ({error})") from error
        _warn(f"mypyc rejected the modules (exit {error.code}; errors above)")
        return []


# Stands for the mypyc extensions until build_ext runs: a platform wheel, and
# no type-check or C generation for metadata-only invocations of this file.
PLACEHOLDER_NAME = "osq_dbwatch._mypyc_pending"

setup(
    ext_modules=[Extension(PLACEHOLDER_NAME, sources=[])] if COMPILE else [],
    cmdclass={"build_py": BuildPy, "build_ext": BuildExt},
)
