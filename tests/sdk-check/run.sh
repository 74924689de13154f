#!/usr/bin/env bash
# Points the platforms' official Python SDKs at threadsmith's fakes, each run as its
# standalone binary, and checks that the SDKs accept the fakes' answers and turn their errors
# into the SDKs' typed errors with the right codes. Needs PyPI (it installs requirements.txt
# into a virtualenv); not part of the README's test command.
#
#   tests/sdk-check/run.sh [slack|discord|github|model ...]   (default: all four)
#
# SDK_CHECK_VENV: where the virtualenv lives (default: $CARGO_TARGET_DIR/sdk-check-venv).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
venv="${SDK_CHECK_VENV:-$target/sdk-check-venv}"
fakes=("$@")
[ ${#fakes[@]} -gt 0 ] || fakes=(slack discord github model)

echo "== building the fakes' binaries"
(cd "$root" && cargo build --quiet -p threadsmith-tests --bins)

if [ ! -x "$venv/bin/python" ]; then
    echo "== making a virtualenv in $venv"
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"

work="$(mktemp -d)"
pid=""
cleanup() {
    if [ -n "$pid" ]; then kill -INT "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# start NAME ARGS...: runs target/debug/fake-NAME until it prints READY; exports what it printed
# (KEY=VALUE lines; a key printed more than once keeps its first value).
start() {
    local name="$1"
    shift
    "$target/debug/fake-$name" "$@" >"$work/$name.out" 2>"$work/$name.err" &
    pid=$!
    for _ in $(seq 1 300); do
        if grep -qx READY "$work/$name.out"; then
            while IFS='=' read -r key value; do
                if [ -n "$value" ] && [ -z "${seen[$key]:-}" ]; then
                    export "$key=$value"
                    seen[$key]=1
                fi
            done <"$work/$name.out"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then break; fi
        sleep 0.1
    done
    echo "fake-$name did not start:" >&2
    cat "$work/$name.out" "$work/$name.err" >&2
    return 1
}

# stop NAME: Ctrl-C, and the binary must exit 0.
stop() {
    kill -INT "$pid"
    local rc=0
    wait "$pid" || rc=$?
    pid=""
    if [ "$rc" -ne 0 ]; then
        echo "fake-$1 exited $rc after Ctrl-C:" >&2
        cat "$work/$1.err" >&2
        return 1
    fi
    echo "fake-$1 stopped cleanly on Ctrl-C"
}

failed=()
for fake in "${fakes[@]}"; do
    declare -A seen=()
    echo "== $fake"
    case "$fake" in
        slack) start slack --user-message "C0SDK=please fix the build" ;;
        discord) start discord --user-message "1300000000000000001=<@1100000000000000001> please fix the build" ;;
        github) start github --demo-repo acme/widgets ;;
        model) start model --script "$here/model_script.json" ;;
        *) echo "unknown fake: $fake" >&2; exit 2 ;;
    esac
    if ! (cd "$here" && "$venv/bin/python" "${fake}_check.py"); then
        failed+=("$fake")
    fi
    stop "$fake" || failed+=("$fake (shutdown)")
    unset seen
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "SDK checks failed: ${failed[*]}"
    exit 1
fi
echo "SDK checks passed: ${fakes[*]}"
