#!/usr/bin/env bash
# The optional compiled build (mypyc), checked: build it into a venv of its own (not editable),
# run the unit tests and the scenario replays against it from outside the checkout, and compare
# bench/replay_identity.py's digest with the plain install's. Prints each step's time.
#
#   bench/compiled_build.sh [PLAIN_PYTHON]     # PLAIN_PYTHON: a plain install's python (the
#                                              # checkout's own venv by default: ./.venv or $VIRTUAL_ENV)
#
# CAREPATH_COMPILED_VENV (default: a temporary directory) keeps the built venv for a later run.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
plain="${1:-${VIRTUAL_ENV:-$root/.venv}/bin/python}"
work="$(mktemp -d)"
venv="${CAREPATH_COMPILED_VENV:-$work/venv}"
trap 'rm -rf "$work"' EXIT
step() { echo "== $1 ($(( SECONDS - t ))s)"; t=$SECONDS; }
t=$SECONDS

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
CAREPATH_COMPILE=1 "$venv/bin/pip" install --quiet "$root[dev]"
step "built and installed (compiled)"

# The tests from a copy, so that the checkout is not on sys.path (pyproject puts "." first).
cp -r "$root/tests" "$root/README.md" "$root/pyproject.toml" "$work/"
cat > "$work/conftest.py" <<'EOF'
import pathway.compiled
import pathway.work

assert pathway.work.__file__.endswith(".so"), f"not the compiled core: {pathway.work.__file__}"
EOF
cd "$work"
"$venv/bin/python" -c "import pathway.compiled as c; print('compiled:', ', '.join(c.compiled_modules()))"
tests=0  # a failed test run is reported at the end: the identity comparison still runs
"$venv/bin/pytest" -p no:cacheprovider -o pythonpath= tests/unit tests/e2e > "$work/tests.log" || tests=$?
tail -1 "$work/tests.log"
step "tests/unit and tests/e2e against the compiled core"

a="$("$plain" "$root/bench/replay_identity.py" --patients 1000 | tail -1)"
b="$("$venv/bin/python" "$root/bench/replay_identity.py" --patients 1000 | tail -1)"
echo "plain:    $a"
echo "compiled: $b"
[ "$a" = "$b" ] || { echo "FAIL: the compiled core wrote other audit entries"; exit 1; }
step "same audit entries (replay_identity.py), plain and compiled"
[ "$tests" = 0 ] || { grep -E "^(FAILED|ERROR)" "$work/tests.log" | head -20; echo "FAIL: tests against the compiled core (exit $tests)"; exit 1; }
