#!/bin/sh
# Build dist/osq_dbwatch.ext: the extension as one self-contained executable
# (PyInstaller --onefile: Python, osq-dbwatch, osquery SDK, thrift,
# PyYAML and tzdata inside), so hosts need no Python of their own.
#
#   deploy/build-bundle.sh            (PYTHON=... DIST=... to override)
#
# Needs PyInstaller in that Python: pip install -e '.[bundle]'. The bundle
# runs on Linux hosts of the build machine's architecture with a glibc at
# least as new as the build machine's (build on the oldest distribution you
# deploy to).
set -eu

here=$(cd -- "$(dirname -- "$0")" && pwd -P)
repo=$(dirname -- "$here")
python=${PYTHON:-$repo/.venv/bin/python}
dist=${DIST:-$repo/dist}
work=${WORK:-$repo/build/pyinstaller}

if ! "$python" -c 'import PyInstaller' 2>/dev/null; then
    echo "build-bundle.sh: PyInstaller is missing in $python (pip install -e '.[bundle]')" >&2
    exit 1
fi

# mypyc's shared library (setup.py compiles the correlator's hot modules) is
# imported from C by the compiled modules, where PyInstaller cannot see it.
hidden=
for lib in "$repo"/src/*__mypyc.*.so; do
    [ -e "$lib" ] || continue
    name=$(basename -- "$lib")
    hidden="$hidden --hidden-import ${name%%.*}"
done

mkdir -p "$dist" "$work"
# shellcheck disable=SC2086 # $hidden is a list of words
"$python" -m PyInstaller $hidden \
    --noconfirm --clean --onefile --log-level WARN \
    --name osq_dbwatch.ext \
    --distpath "$dist" --workpath "$work" --specpath "$work" \
    --paths "$repo/src" \
    --collect-submodules osq_dbwatch \
    --collect-data osq_dbwatch \
    --collect-data tzdata \
    "$here/bundle_entry.py"

out="$dist/osq_dbwatch.ext"
chmod 0755 "$out"
echo "built $out ($(wc -c < "$out") bytes)"
