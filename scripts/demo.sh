#!/usr/bin/env bash
# Installs what the demo needs (idempotent), builds Bascule, and runs `bascule demo`:
# a real Linux desktop behind the gateway, at the https://127.0.0.1 URL it prints with the login.
#
#   scripts/demo.sh [--listen 127.0.0.1:8443] [--data-dir .bascule-data]
set -Eeuo pipefail
T0=$(date +%s)
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"

install_toolchain
install_desktop_packages
step "build (cargo build --release -p bascule)"
cargo build --release --locked -p bascule
step "start the demo"
exec "$ROOT/target/release/bascule" demo "$@"
