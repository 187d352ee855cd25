#!/usr/bin/env bash
# testbed.sh: real VNC peers on loopback for Bascule's tests and demo (Debian 12, as root, no systemd).
# Run `scripts/testbed.sh --help` for usage.
set -Eeuo pipefail

TB_DIR=${TB_DIR:-/tmp/bascule-testbed}
TB_DISPLAY=${TB_DISPLAY:-5}
TB_X11VNC_PORT=${TB_X11VNC_PORT:-5905}
TB_TIGER_DISPLAY=${TB_TIGER_DISPLAY:-6}
TB_TIGER_PORT=${TB_TIGER_PORT:-5906}
TB_VNC_PASS=${TB_VNC_PASS:-vncpass}
TB_SKIP_INSTALL=${TB_SKIP_INSTALL:-0}
TB_TIMEOUT=${TB_TIMEOUT:-20}   # seconds to wait for each peer

# x11-apps (xwd) and x11-xserver-utils (xsetroot) are used by crates/desktop.
PACKAGES=(xvfb xauth x11-utils x11-apps x11-xserver-utils xdotool openbox xterm xfonts-base
  fonts-dejavu-core imagemagick x11vnc tigervnc-standalone-server tigervnc-tools chromium
  procps iproute2 netcat-openbsd)

LOGS=$TB_DIR/logs
PIDS=$TB_DIR/pids
ENVF=$TB_DIR/env
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH

now_ds() { local t=${EPOCHREALTIME/./}; echo $(( t / 100000 )); }   # tenths of a second
T0=$(now_ds)
say() { local e=$(( $(now_ds) - T0 )); printf '[testbed %3d.%ds] %s\n' $(( e / 10 )) $(( e % 10 )) "$*"; }

usage() {
  cat <<EOF
Usage: scripts/testbed.sh install|up|down|status|--help

  install  apt-get install the packages below that are missing (policy-rc.d keeps services from starting)
  up       install (unless TB_SKIP_INSTALL=1), then start on loopback:
             Xvfb :$TB_DISPLAY 1280x800x24 + openbox + xterm "office", shared by x11vnc on 127.0.0.1:$TB_X11VNC_PORT
             Xtigervnc :$TB_TIGER_DISPLAY 1280x800 on 127.0.0.1:$TB_TIGER_PORT + openbox + xterm "office"
           both with VncAuth password \$TB_VNC_PASS; exits 0 once both answer "RFB 003.008"
  down     stop exactly the processes listed in \$TB_DIR/pids (TERM, then KILL after 3 s)
  status   probe every peer, print ok/FAIL, exit non-zero if any FAIL

Files: \$TB_DIR/pids ("name pid"), \$TB_DIR/env (TB_X11VNC_ADDR=..., TB_TIGER_PASS=...), \$TB_DIR/logs/*.log
Environment (defaults): TB_DIR ($TB_DIR) TB_DISPLAY (5) TB_X11VNC_PORT (5905) TB_TIGER_DISPLAY (6)
  TB_TIGER_PORT (5906) TB_VNC_PASS (vncpass) TB_SKIP_INSTALL (0) TB_TIMEOUT (20 s per peer)
Packages: ${PACKAGES[*]}
EOF
}

# ------------------------------------------------------------------ install
do_install() (
  local missing=() p t0
  t0=$(now_ds)
  for p in "${PACKAGES[@]}"; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" = "install ok installed" ] || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then say "install: all ${#PACKAGES[@]} packages present"; return 0; fi
  say "install: missing: ${missing[*]}"
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  local e=$(( $(now_ds) - t0 ))
  say "install: installed ${missing[*]} in $(( e / 10 )).$(( e % 10 )) s"
)

# ------------------------------------------------------------------ helpers
# rfb_ok PORT: the server's first 12 bytes are exactly "RFB 003.008\n"
rfb_ok() {
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1; head -c 12 <&3" 2>/dev/null \
    | cmp -s - <(printf 'RFB 003.008\n')
}
alive() { kill -0 "$1" 2>/dev/null; }
port_holder() { ss -Hltnp "sport = :$1" 2>/dev/null | head -1; }
display_holder() {   # prints why display :$1 is taken, or nothing
  local n=$1 pid
  if [ -e "/tmp/.X$n-lock" ]; then
    pid=$(tr -d ' \n' < "/tmp/.X$n-lock" 2>/dev/null || true)
    if [ -n "$pid" ] && alive "$pid"; then
      echo "/tmp/.X$n-lock held by pid $pid ($(ps -o args= -p "$pid" | cut -c1-60))"
    else
      echo "stale /tmp/.X$n-lock (pid ${pid:-?} is gone; remove it and /tmp/.X11-unix/X$n)"
    fi
  elif [ -e "/tmp/.X11-unix/X$n" ]; then
    echo "socket /tmp/.X11-unix/X$n exists"
  fi
}

STARTED=0
# start NAME CMD...: run in the background, in its own session, logs to $LOGS/NAME.log
start() {
  local name=$1; shift
  setsid "$@" > "$LOGS/$name.log" 2>&1 < /dev/null &
  echo "$name $!" >> "$PIDS"
  STARTED=1
  eval "PID_${name//-/_}=$!"
}
pid_of() { local v="PID_${1//-/_}"; echo "${!v}"; }

# fail REASON [LOGNAME]: print reason and log tail, stop what was started, exit 1
fail() {
  say "FAIL: $1"
  if [ -n "${2:-}" ] && [ -f "$LOGS/$2.log" ]; then
    echo "---- tail of $LOGS/$2.log"; tail -n 15 "$LOGS/$2.log"; echo "----"
  fi
  [ "$STARTED" = 1 ] && do_down >/dev/null 2>&1
  exit 1
}

# wait_until WHAT LOGNAME CMD...: poll CMD until it succeeds; fail if the process LOGNAME dies or on timeout
wait_until() {
  local what=$1 name=$2; shift 2
  local end=$(( $(now_ds) + TB_TIMEOUT * 10 )) pid
  pid=$(pid_of "$name")
  until "$@" >/dev/null 2>&1; do
    alive "$pid" || fail "$name (pid $pid) exited while waiting for $what" "$name"
    [ "$(now_ds)" -lt "$end" ] || fail "timeout (${TB_TIMEOUT} s) waiting for $what" "$name"
    sleep 0.1
  done
  say "ok: $what"
}
wm_up() { xprop -display "$1" -root _NET_SUPPORTING_WM_CHECK | grep -q 'window id'; }
window_up() { DISPLAY=$1 xdotool search --classname '^office$' | grep -q .; }

# desktop_clients DISPLAY SUFFIX: openbox + xterm "office" on DISPLAY
desktop_clients() {
  local d=$1 s=$2
  DISPLAY=$d start "openbox$s" openbox
  wait_until "openbox on $d" "openbox$s" wm_up "$d"
  DISPLAY=$d start "xterm$s" xterm -name office -title office -xrm '*allowTitleOps: false' \
    -fa Monospace -fs 11 -geometry 100x30+40+40 -e bash
  if ! TB_TIMEOUT=10 wait_until_soft "xterm$s" window_up "$d"; then
    say "xterm on $d did not show up; starting it once more"
    kill "$(pid_of "xterm$s")" 2>/dev/null || true
    DISPLAY=$d start "xterm$s" xterm -name office -title office -xrm '*allowTitleOps: false' \
      -fa Monospace -fs 11 -geometry 100x30+40+40 -e bash
  fi
  wait_until "xterm window on $d" "xterm$s" window_up "$d"
}
# wait_until_soft NAME CMD...: like wait_until but returns 1 instead of failing
wait_until_soft() {
  local name=$1; shift
  local end=$(( $(now_ds) + TB_TIMEOUT * 10 )) pid
  pid=$(pid_of "$name")
  until "$@" >/dev/null 2>&1; do
    alive "$pid" && [ "$(now_ds)" -lt "$end" ] || return 1
    sleep 0.1
  done
}

# ------------------------------------------------------------------ up
do_up() {
  [ "$TB_SKIP_INSTALL" = 1 ] || do_install
  local p pid
  if [ -f "$PIDS" ]; then
    while read -r _ pid; do
      alive "$pid" && { say "FAIL: testbed already running (pid $pid in $PIDS); run: $0 down"; exit 1; }
    done < "$PIDS"
    rm -f "$PIDS"
  fi
  local d=":$TB_DISPLAY" td=":$TB_TIGER_DISPLAY" why
  for p in "$TB_DISPLAY" "$TB_TIGER_DISPLAY"; do
    why=$(display_holder "$p")
    [ -z "$why" ] || { say "FAIL: display :$p is taken: $why (override with TB_DISPLAY / TB_TIGER_DISPLAY)"; exit 1; }
  done
  for p in "$TB_X11VNC_PORT" "$TB_TIGER_PORT"; do
    why=$(port_holder "$p")
    [ -z "$why" ] || { say "FAIL: port $p is taken: $why (override with TB_X11VNC_PORT / TB_TIGER_PORT)"; exit 1; }
  done
  say "displays $d $td and ports $TB_X11VNC_PORT $TB_TIGER_PORT are free"
  mkdir -p "$LOGS"
  : > "$PIDS"
  trap 'fail "unexpected error at line $LINENO"' ERR

  # 1. Xvfb + openbox + xterm, shared by x11vnc
  start xvfb Xvfb "$d" -screen 0 1280x800x24 -nolisten tcp -ac -noreset
  wait_until "Xvfb $d" xvfb xdpyinfo -display "$d"
  xsetroot -display "$d" -solid '#1d4e89' 2>/dev/null || true
  desktop_clients "$d" ""
  rm -f "$TB_DIR/x11vnc.pass"
  x11vnc -storepasswd "$TB_VNC_PASS" "$TB_DIR/x11vnc.pass" > "$LOGS/x11vnc-storepasswd.log" 2>&1 \
    || fail "x11vnc -storepasswd failed" x11vnc-storepasswd
  start x11vnc x11vnc -display "$d" -localhost -rfbport "$TB_X11VNC_PORT" -rfbauth "$TB_DIR/x11vnc.pass" \
    -forever -shared -noxdamage
  wait_until "x11vnc on 127.0.0.1:$TB_X11VNC_PORT" x11vnc rfb_ok "$TB_X11VNC_PORT"

  # 2. Xtigervnc (its own X server) + openbox + xterm
  printf '%s\n' "$TB_VNC_PASS" | vncpasswd -f > "$TB_DIR/tigervnc.passwd"
  chmod 600 "$TB_DIR/tigervnc.passwd"
  start tigervnc Xtigervnc "$td" -geometry 1280x800 -depth 24 -rfbport "$TB_TIGER_PORT" -localhost \
    -nolisten tcp -SecurityTypes VncAuth -PasswordFile "$TB_DIR/tigervnc.passwd" -AlwaysShared
  wait_until "Xtigervnc $td" tigervnc xdpyinfo -display "$td"
  xsetroot -display "$td" -solid '#1d4e89' 2>/dev/null || true
  desktop_clients "$td" "-tiger"
  wait_until "Xtigervnc on 127.0.0.1:$TB_TIGER_PORT" tigervnc rfb_ok "$TB_TIGER_PORT"

  cat > "$ENVF" <<EOF
TB_X11VNC_ADDR=127.0.0.1:$TB_X11VNC_PORT
TB_X11VNC_PASS=$TB_VNC_PASS
TB_X11VNC_DISPLAY=$d
TB_TIGER_ADDR=127.0.0.1:$TB_TIGER_PORT
TB_TIGER_PASS=$TB_VNC_PASS
TB_TIGER_DISPLAY=$td
EOF
  trap - ERR
  say "up: $(wc -l < "$PIDS") processes in $PIDS, endpoints in $ENVF"
}

# ------------------------------------------------------------------ down
do_down() {
  if [ ! -f "$PIDS" ]; then say "down: nothing to stop ($PIDS not found)"; return 0; fi
  local name pid left=() i
  while read -r name pid; do
    [ -n "${pid:-}" ] || continue
    if alive "$pid"; then kill -TERM "$pid" 2>/dev/null || true; left+=("$pid"); fi
  done < <(tac "$PIDS")
  for i in $(seq 30); do
    local still=()
    for pid in "${left[@]}"; do alive "$pid" && still+=("$pid"); done
    left=("${still[@]}")
    [ ${#left[@]} -eq 0 ] && break
    sleep 0.1
  done
  for pid in "${left[@]}"; do say "pid $pid ignored TERM; sending KILL"; kill -KILL "$pid" 2>/dev/null || true; done
  rm -f "$PIDS"
  say "down: stopped"
}

# ------------------------------------------------------------------ status
do_status() {
  local rc=0 d=":$TB_DISPLAY" td=":$TB_TIGER_DISPLAY"
  chk() { if "${@:2}" >/dev/null 2>&1; then echo "ok    $1"; else echo "FAIL  $1"; rc=1; fi; }
  chk "Xvfb $d"                               xdpyinfo -display "$d"
  chk "office xterm on $d"                    window_up "$d"
  chk "x11vnc 127.0.0.1:$TB_X11VNC_PORT"      rfb_ok "$TB_X11VNC_PORT"
  chk "Xtigervnc $td"                         xdpyinfo -display "$td"
  chk "office xterm on $td"                   window_up "$td"
  chk "Xtigervnc 127.0.0.1:$TB_TIGER_PORT"    rfb_ok "$TB_TIGER_PORT"
  return $rc
}

case "${1:-}" in
  install) do_install ;;
  up) do_up ;;
  down) do_down ;;
  status) do_status ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
