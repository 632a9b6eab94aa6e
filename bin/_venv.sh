# Shared by bin/serve and bin/test: create .venv and install the project when pyproject changes.
# Sourced, not run. Usage: ensure_venv "" | ensure_venv dev

find_python() {
    # Python 3.11: the CPU build of PyTorch these machines install is a cp311 wheel.
    for candidate in "${VALENCE_PYTHON:-}" python3.11 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    echo "Python 3.11 is required (set VALENCE_PYTHON to its path)." >&2
    return 1
}

ensure_venv() {
    local extras="$1" spec="." stamp
    [ -n "$extras" ] && spec=".[$extras]"
    if [ ! -x .venv/bin/python ]; then
        echo "==> creating .venv"
        "$(find_python)" -m venv .venv
    fi
    stamp="$(cat pyproject.toml bin/_venv.sh | sha256sum | cut -c1-16)-$extras"
    if ! grep -qx -- "$stamp" .venv/.valence-installed 2>/dev/null; then
        echo "==> installing $spec into .venv"
        .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
        .venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$spec"
        echo "$stamp" >>.venv/.valence-installed
    fi
}
