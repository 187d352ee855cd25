# Shared by scripts/test.sh and scripts/demo.sh: install what the project needs, idempotently.
# shellcheck shell=bash

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
T0=${T0:-$(date +%s)}
step() { printf '\n==> [%4ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }
die() { printf '\nERROR: %s\n' "$*" >&2; exit 1; }

need_root_for_apt() {
  [ "$(id -u)" = 0 ] || die "installing Debian packages needs root: run as root (or sudo)"
}

# apt_install PKG... : installs the packages that are missing, never starts services.
apt_install() {
  local missing=() p
  for p in "$@"; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" = "install ok installed" ] || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  need_root_for_apt
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

install_toolchain() {
  step "build tools"
  apt_install ca-certificates build-essential pkg-config
  if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
  fi
  command -v cargo >/dev/null 2>&1 || die "Rust is missing: install rustup (https://rustup.rs, or apt-get install rustup on Debian 13), then 'rustup default stable' (1.95 or newer)"
  local version
  version=$(rustc --version | awk '{print $2}')
  printf 'rustc %s\n' "$version"
  case "$version" in
    1.[0-8][0-9].*|1.9[0-4].*) die "rustc $version is too old: this project needs 1.95 or newer (rustup update stable)";;
  esac
}

install_desktop_packages() {
  step "desktop, VNC and browser packages (scripts/testbed.sh install)"
  "$ROOT/scripts/testbed.sh" install
}

install_node() {
  step "Node.js and the npm devDependencies"
  command -v node >/dev/null 2>&1 || apt_install nodejs npm
  (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error)
}
