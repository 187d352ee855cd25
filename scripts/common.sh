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
  # No package may start a service (PostgreSQL's main cluster, xrdp on 0.0.0.0): the scripts
  # start what they need themselves, on loopback.
  local guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && guard=1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" || {
    [ -z "$guard" ] || rm -f /usr/sbin/policy-rc.d
    die "apt-get install ${missing[*]} failed"
  }
  [ -z "$guard" ] || rm -f /usr/sbin/policy-rc.d
}

install_toolchain() {
  step "build tools"
  # nasm: openh264 (H.264 for video regions) builds its assembly with it, about twice as fast.
  apt_install ca-certificates build-essential pkg-config nasm
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
  # The reference VNC viewer of the thin-link benchmark (bascule-bench thin-link).
  apt_install tigervnc-viewer
}

install_node() {
  step "Node.js and the npm devDependencies"
  command -v node >/dev/null 2>&1 || apt_install nodejs npm
  (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error)
}

# start_postgres DIR : starts a throw-away PostgreSQL cluster in DIR (as user postgres, trust
# authentication, TCP on 127.0.0.1 on a free port, its socket in DIR too), and exports
# BASCULE_TEST_POSTGRES_URL for the bascule-store tests. stop_postgres stops it.
# Installs the Debian package if missing (never starts its service).
start_postgres() {
  local dir=$1 bin port
  apt_install postgresql
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -x "$bin/initdb" ] || die "PostgreSQL binaries not found under /usr/lib/postgresql/*/bin"
  id postgres >/dev/null 2>&1 || die "the postgres system user is missing (the postgresql package creates it)"
  # A free port: the first of a few random ones where nothing answers.
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    port=$((20000 + RANDOM % 30000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
  done
  mkdir -p "$dir"
  # mktemp -d makes the parent 0700; the postgres user must be able to traverse it.
  chmod a+x "$(dirname "$dir")"
  chown postgres: "$dir"
  chmod 700 "$dir"
  if [ ! -f "$dir/PG_VERSION" ]; then
    runuser -u postgres -- "$bin/initdb" -D "$dir" -A trust -U postgres >"$dir.initdb.log" 2>&1 \
      || { cat "$dir.initdb.log" >&2; die "initdb failed"; }
  fi
  if runuser -u postgres -- "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
    port=$(sed -n 4p "$dir/postmaster.pid") # already running (start_postgres called twice)
  else
    runuser -u postgres -- "$bin/pg_ctl" -D "$dir" -o "-h 127.0.0.1 -p $port -k $dir" \
      -l "$dir/log" -w -t 60 start >/dev/null \
      || { cat "$dir/log" >&2 2>/dev/null || true; die "PostgreSQL did not start"; }
  fi
  PG_DIR=$dir PG_BIN=$bin
  export BASCULE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
  echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data in $dir)"
}

stop_postgres() {
  [ -n "${PG_DIR:-}" ] && [ -f "$PG_DIR/postmaster.pid" ] || return 0
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR" -m fast -w stop >/dev/null 2>&1 || true
}
