#!/usr/bin/env bash
# Runs every test of the project, after installing what they need (idempotent).
#
#   scripts/test.sh
#
# Order: type-check and unit-test the browser code, build, start the testbed peers
# (scripts/testbed.sh) and a throw-away PostgreSQL (for bascule-store), run the Rust tests (unit,
# integration against real x11vnc and TigerVNC, SQLite and PostgreSQL, fuzz-corpus replay), then
# the end-to-end tests in headless Chromium.
set -Eeuo pipefail
T0=$(date +%s)
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"

install_toolchain
install_desktop_packages
install_node

LOG_DIR=$(mktemp -d /tmp/bascule-test-XXXXXX)
passed=0; failed=0
count_cargo() { # sums "test result: ... N passed; M failed" lines of a cargo test log
  local p f
  p=$(grep -Eo '[0-9]+ passed' "$1" | awk '{s+=$1} END {print s+0}')
  f=$(grep -Eo '[0-9]+ failed' "$1" | awk '{s+=$1} END {print s+0}')
  passed=$((passed + p)); failed=$((failed + f))
}
count_node() { # sums "# pass N" / "# fail N" of a node --test log
  local p f
  p=$(grep -E '^# pass [0-9]+' "$1" | awk '{s+=$3} END {print s+0}')
  f=$(grep -E '^# fail [0-9]+' "$1" | awk '{s+=$3} END {print s+0}')
  passed=$((passed + p)); failed=$((failed + f))
}

step "type-check the browser code (tsc)"
npx tsc -p tsconfig.json

step "browser unit tests (node --test web/test/)"
node --test web/test/ 2>&1 | tee "$LOG_DIR/web.log" | tail -n 8
count_node "$LOG_DIR/web.log"

step "build (cargo build --workspace --all-targets)"
cargo build --workspace --all-targets --locked

# One EXIT trap stops whatever was started: the testbed peers and PostgreSQL.
cleanup() {
  stop_postgres
  [ -z "${TB_DIR:-}" ] || "$ROOT/scripts/testbed.sh" down >/dev/null 2>&1 || true
}
trap cleanup EXIT

step "start the testbed peers (scripts/testbed.sh up)"
export TB_DIR="$LOG_DIR/testbed"
TB_SKIP_INSTALL=1 "$ROOT/scripts/testbed.sh" up

step "start PostgreSQL for the bascule-store tests"
start_postgres "$LOG_DIR/pg"

step "Rust tests (cargo test --workspace)"
status=0
cargo test --workspace --locked 2>&1 | tee "$LOG_DIR/cargo.log" | grep -E '^(test result|running|error|failures:|---- )|FAILED|panicked' || true
[ "${PIPESTATUS[0]}" = 0 ] || status=1
count_cargo "$LOG_DIR/cargo.log"

step "end-to-end tests in headless Chromium (node --test e2e/)"
BASCULE_BIN="$ROOT/target/debug/bascule" node --test --test-concurrency=1 e2e/ 2>&1 | tee "$LOG_DIR/e2e.log" | grep -Ev '^\s+(duration_ms|\.\.\.|---)' || true
[ "${PIPESTATUS[0]}" = 0 ] || status=1
count_node "$LOG_DIR/e2e.log"

step "done in $(( $(date +%s) - T0 )) s (logs in $LOG_DIR)"
echo "total: $passed passed, $failed failed"
[ "$status" = 0 ] && [ "$failed" = 0 ] || exit 1
