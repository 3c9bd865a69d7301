# Sourced by scripts/*: make sure .venv exists and holds exactly requirements/lock.txt (every
# dependency pinned with its hashes) plus the project itself, installed editable without deps.
# The venv is made anew whenever the lock or pyproject.toml changed since it was made, so it
# never keeps a package the lock dropped. With BOSUN_LATEST=1 the same happens in
# .venv-latest from pyproject.toml's ranges alone, at the newest versions they allow
# (scripts/test --latest).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCK="$ROOT/requirements/lock.txt"
PY="${BOSUN_PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "Bosun needs Python >= 3.11 (found: $("$PY" --version 2>&1)); set BOSUN_PYTHON" >&2
    exit 2
fi
if [ "${BOSUN_LATEST:-0}" = 1 ]; then
    VENV="$ROOT/.venv-latest"
    WANT="latest-$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)-$(date +%F)"
else
    VENV="$ROOT/.venv"
    WANT="$(cat "$LOCK" "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)"
fi
STAMP="$VENV/.bosun-installed"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
    rm -rf "$VENV"
    echo "==> creating $VENV" >&2
    "$PY" -m venv "$VENV"
    # (a machine's pip.conf may name index folders that do not exist: pip warns per package)
    pip_install() {
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$@" \
            2> >(grep -v "^WARNING: Location '.*' is ignored" >&2)
    }
    if [ "${BOSUN_LATEST:-0}" = 1 ]; then
        echo "==> installing bosun[test,demo] at the newest versions pyproject.toml allows" >&2
        pip_install --upgrade pip setuptools wheel
        pip_install --upgrade --upgrade-strategy eager -e "$ROOT[test,demo]"
    else
        echo "==> installing requirements/lock.txt (hash-checked) into $VENV" >&2
        pip_install --require-hashes --no-deps -r "$LOCK"
        # the build backend comes from the lock too: nothing unpinned is fetched
        pip_install --no-deps --no-build-isolation -e "$ROOT"
    fi
    echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
