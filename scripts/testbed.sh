#!/usr/bin/env bash
# testbed.sh: real VNC and RDP peers on loopback for Bascule's tests and demo (Debian 12, as root, no systemd).
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
TB_WITH_SHADOW=${TB_WITH_SHADOW:-1}
TB_WITH_XRDP=${TB_WITH_XRDP:-1}
TB_SHADOW_TLS_PORT=${TB_SHADOW_TLS_PORT:-3390}
TB_SHADOW_NLA_PORT=${TB_SHADOW_NLA_PORT:-3392}
TB_XRDP_PORT=${TB_XRDP_PORT:-3389}
TB_USER=${TB_USER:-testuser}
TB_PASS=${TB_PASS:-testpass}
TB_WITH_SLAPD=${TB_WITH_SLAPD:-1}
TB_LDAP_PORT=${TB_LDAP_PORT:-389}
TB_LDAPS_PORT=${TB_LDAPS_PORT:-636}
TB_LDAP_ADMIN_PASS=${TB_LDAP_ADMIN_PASS:-adminpass}
LDAP_BASE=dc=example,dc=org
LDAP_ADMIN_DN=cn=admin,$LDAP_BASE
# xrdp reads the sesman port from /etc/xrdp/sesman.ini whatever --config says, so it stays 3350.
SESMAN_PORT=3350

# x11-apps (xwd) and x11-xserver-utils (xsetroot) are used by crates/desktop.
PACKAGES=(xvfb xauth x11-utils x11-apps x11-xserver-utils xdotool openbox xterm xfonts-base
  fonts-dejavu-core imagemagick x11vnc tigervnc-standalone-server tigervnc-tools chromium
  procps iproute2 netcat-openbsd xclip
  freerdp2-shadow-x11 freerdp2-x11 winpr-utils xrdp xorgxrdp ssl-cert
  slapd ldap-utils openssl)

LOGS=$TB_DIR/logs
PIDS=$TB_DIR/pids
ENVF=$TB_DIR/env
XRDP_USER_FILE=$TB_DIR/xrdp-user   # the user whose xrdp sessions `down` ends
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH

now_ds() { local t=${EPOCHREALTIME/./}; echo $(( t / 100000 )); }   # tenths of a second
T0=$(now_ds)
say() { local e=$(( $(now_ds) - T0 )); printf '[testbed %3d.%ds] %s\n' $(( e / 10 )) $(( e % 10 )) "$*"; }

usage() {
  cat <<EOF
Usage: scripts/testbed.sh install|up|down|status|--help

  install  apt-get install the packages below that are missing (policy-rc.d keeps services such as xrdp
           from starting on 0.0.0.0 during the install)
  up       install (unless TB_SKIP_INSTALL=1), then start on loopback:
             Xvfb :$TB_DISPLAY 1280x800x24 + openbox + xterm "office", shared by x11vnc on 127.0.0.1:$TB_X11VNC_PORT
             Xtigervnc :$TB_TIGER_DISPLAY 1280x800 on 127.0.0.1:$TB_TIGER_PORT + openbox + xterm "office"
               both with VncAuth password \$TB_VNC_PASS
             freerdp-shadow-cli sharing :$TB_DISPLAY on 127.0.0.1:$TB_SHADOW_TLS_PORT, TLS, no authentication
             freerdp-shadow-cli sharing :$TB_DISPLAY on 127.0.0.1:$TB_SHADOW_NLA_PORT, NLA only, SAM file with \$TB_USER/\$TB_PASS
             xrdp + xrdp-sesman on 127.0.0.1:$TB_XRDP_PORT (sesman on [::1]:$SESMAN_PORT), TLS, no NLA; logging in as the
               local unix user \$TB_USER (created if missing; its password is set to \$TB_PASS) starts a per-user
               Xorg session (:10 and up) running ~/startwm.sh = openbox + xterm "xrdp-session" (the session
               ends when that xterm exits). Credentials sent with INFO_AUTOLOGON skip xrdp's login screen and
               land in that Xorg session (xrdp.ini copy: autorun=Xorg). Sessions survive disconnects.
             OpenLDAP slapd (unless TB_WITH_SLAPD=0) on ldap://127.0.0.1:$TB_LDAP_PORT (StartTLS too) and
               ldaps://127.0.0.1:$TB_LDAPS_PORT, self-signed certificate \$TB_DIR/ldap/tls/cert.pem (CN=localhost,
               SAN IP 127.0.0.1), base $LDAP_BASE, rootdn $LDAP_ADMIN_DN / \$TB_LDAP_ADMIN_PASS, memberof
               overlay; loaded with ldapadd: uid=alice (alicepass) and uid=bob (bobpass) in ou=people,
               groupOfNames cn=admins (alice) and cn=staff (alice, bob) in ou=groups. Wiped on every up.
           exits 0 once the VNC ports answer "RFB 003.008" and the RDP ports answer an X.224 Connection
           Request with a reply starting 03 00
  down     stop exactly the processes listed in \$TB_DIR/pids and their process groups (TERM, then KILL after
           3 s), then every process of the xrdp test user (the user named in \$TB_DIR/xrdp-user; never root)
  status   probe every peer that up started, print ok/FAIL, exit non-zero if any FAIL

Files: \$TB_DIR/pids ("name pid"), \$TB_DIR/env (TB_X11VNC_ADDR=..., TB_TIGER_PASS=..., TB_SHADOW_TLS_ADDR=...,
  TB_SHADOW_NLA_ADDR=..., TB_XRDP_ADDR=..., TB_RDP_USER=..., TB_RDP_PASS=..., TB_LDAP_URL=..., TB_LDAPS_URL=...,
  TB_LDAP_BASE=..., TB_LDAP_ADMIN_DN=..., TB_LDAP_ADMIN_PASS=..., TB_LDAP_CA=...; the lines of a disabled peer are
  left out), \$TB_DIR/logs/*.log, \$TB_DIR/xrdp/{xrdp,sesman}.ini (copies; /etc/xrdp is never edited),
  \$TB_DIR/shadow-{tls,nla}-home (HOME of each freerdp-shadow-cli: its certificate), \$TB_DIR/shadow.sam,
  \$TB_DIR/ldap/{slapd.conf,data.ldif,db/,tls/}
Environment (defaults): TB_DIR ($TB_DIR) TB_DISPLAY (5) TB_X11VNC_PORT (5905) TB_TIGER_DISPLAY (6)
  TB_TIGER_PORT (5906) TB_VNC_PASS (vncpass) TB_SKIP_INSTALL (0) TB_TIMEOUT (20 s per peer)
  TB_WITH_SHADOW (1; 0 = no freerdp-shadow-cli) TB_SHADOW_TLS_PORT (3390) TB_SHADOW_NLA_PORT (3392)
  TB_WITH_XRDP (1; 0 = no xrdp) TB_XRDP_PORT (3389) TB_USER (testuser; not root) TB_PASS (testpass)
  TB_WITH_SLAPD (1; 0 = no slapd) TB_LDAP_PORT (389) TB_LDAPS_PORT (636) TB_LDAP_ADMIN_PASS (adminpass)
  Displays: keep TB_DISPLAY and TB_TIGER_DISPLAY below 10 (xrdp sessions take :10 and up).
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
  # slapd: no default database from the postinst (the testbed runs its own slapd.conf)
  echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
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
# x224_ok PORT: an X.224 Connection Request carrying an RDP Negotiation Request (TLS | CredSSP) gets a
# reply that starts with the TPKT header 03 00
x224_ok() {
  local got
  got=$(timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1
    printf '\x03\x00\x00\x13\x0e\xe0\x00\x00\x00\x00\x00\x01\x00\x08\x00\x03\x00\x00\x00' >&3
    head -c 2 <&3" 2>/dev/null | od -An -tx1 | tr -d ' \n') || return 1
  [ "$got" = 0300 ]
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

# ------------------------------------------------------------------ RDP peers
# start_shadows DISPLAY: freerdp-shadow-cli twice (TLS without authentication; NLA with a SAM file). Each
# gets its own HOME, where it writes its self-signed certificate (~/.config/freerdp/shadow/) on first start.
start_shadows() {
  local d=$1 h
  for h in tls nla; do mkdir -p "$TB_DIR/shadow-$h-home"; done
  winpr-hash -u "$TB_USER" -p "$TB_PASS" -f sam > "$TB_DIR/shadow.sam" 2> "$LOGS/winpr-hash.log" \
    || fail "winpr-hash failed" winpr-hash
  chmod 600 "$TB_DIR/shadow.sam"
  h=$TB_DIR/shadow-tls-home
  DISPLAY=$d HOME=$h XDG_CONFIG_HOME=$h/.config start shadow-tls freerdp-shadow-cli \
    /bind-address:127.0.0.1 "/port:$TB_SHADOW_TLS_PORT" -auth /sec:tls
  h=$TB_DIR/shadow-nla-home
  DISPLAY=$d HOME=$h XDG_CONFIG_HOME=$h/.config start shadow-nla freerdp-shadow-cli \
    /bind-address:127.0.0.1 "/port:$TB_SHADOW_NLA_PORT" +auth /sec:nla "/sam-file:$TB_DIR/shadow.sam"
  wait_until "freerdp-shadow (TLS, no auth) X.224 on 127.0.0.1:$TB_SHADOW_TLS_PORT" shadow-tls x224_ok "$TB_SHADOW_TLS_PORT"
  wait_until "freerdp-shadow (NLA, $TB_USER) X.224 on 127.0.0.1:$TB_SHADOW_NLA_PORT" shadow-nla x224_ok "$TB_SHADOW_NLA_PORT"
}

# setup_test_user: the unix user xrdp logs in, with ~/startwm.sh = openbox + an xterm that ends the session
setup_test_user() {
  if ! id "$TB_USER" >/dev/null 2>&1; then
    useradd -m -s /bin/bash "$TB_USER" || fail "useradd $TB_USER failed"
    say "created unix user $TB_USER"
  fi
  printf '%s:%s\n' "$TB_USER" "$TB_PASS" | chpasswd || fail "chpasswd for $TB_USER failed"
  local home
  home=$(getent passwd "$TB_USER" | cut -d: -f6)
  [ -d "$home" ] || fail "home directory of $TB_USER ($home) does not exist"
  cat > "$home/startwm.sh" <<'EOS'
#!/bin/sh
# Written by Bascule's scripts/testbed.sh; xrdp-sesman runs it (UserWindowManager=startwm.sh).
openbox &
# -name/allowTitleOps: the window keeps class and title "xrdp-session" (bash -l would retitle it).
exec xterm -name xrdp-session -title xrdp-session -xrm '*allowTitleOps: false' -fa Monospace -fs 11 \
  -geometry 90x25+40+40 -e bash -l
EOS
  chmod 755 "$home/startwm.sh"
  chown "$TB_USER:" "$home/startwm.sh"
}

# start_xrdp: xrdp + xrdp-sesman in the foreground, with copies of their configuration under $TB_DIR/xrdp
# clear_stale_x_locks: sesman gives sessions displays :10..:60 and refuses a login when every one
# has a lock file; a session X server that was killed leaves its lock (and socket) behind. Remove
# only those whose recorded process is gone.
clear_stale_x_locks() {
  local n lock pid cleared=0
  for n in $(seq 10 60); do
    lock=/tmp/.X$n-lock
    [ -f "$lock" ] || continue
    pid=$(tr -dc '0-9' < "$lock")
    if [ -n "$pid" ] && alive "$pid"; then continue; fi
    rm -f "$lock" "/tmp/.X11-unix/X$n" && cleared=$((cleared + 1))
  done
  [ "$cleared" = 0 ] || say "xrdp: removed $cleared stale X display lock(s) in :10..:60 (their X servers are gone)"
}

start_xrdp() {
  local x=$TB_DIR/xrdp
  clear_stale_x_locks
  setup_test_user
  echo "$TB_USER" > "$XRDP_USER_FILE"
  mkdir -p "$x"
  # xrdp.ini: loopback port, absolute log file (not xrdp.log: that one gets stdout), and autorun=Xorg, so that a client that sends its
  # credentials with INFO_AUTOLOGON lands in the Xorg session whatever domain it sends.
  sed -e "s|^port=3389\$|port=tcp://127.0.0.1:$TB_XRDP_PORT|" \
      -e "s|^LogFile=.*|LogFile=$LOGS/xrdp-logfile.log|" -e 's|^EnableSyslog=.*|EnableSyslog=false|' \
      -e 's|^autorun=.*|autorun=Xorg|' /etc/xrdp/xrdp.ini > "$x/xrdp.ini"
  grep -qx "port=tcp://127.0.0.1:$TB_XRDP_PORT" "$x/xrdp.ini" || fail "could not set port= in $x/xrdp.ini"
  grep -qx 'autorun=Xorg' "$x/xrdp.ini" || fail "could not set autorun=Xorg in $x/xrdp.ini"
  # The first session section is also the default when autorun= is empty: check that it is [Xorg].
  [ "$(grep -o '^\[[^]]*\]' "$x/xrdp.ini" | grep -vixE '\[(globals|logging|loggingperlogger|channels)\]' | head -1)" = '[Xorg]' ] \
    || fail "[Xorg] is not the first session in $x/xrdp.ini"
  sed -e "s|^LogFile=.*|LogFile=$LOGS/xrdp-sesman-logfile.log|" -e 's|^EnableSyslog=.*|EnableSyslog=false|' \
      -e 's|^EnableUserWindowManager=.*|EnableUserWindowManager=true|' \
      -e 's|^UserWindowManager=.*|UserWindowManager=startwm.sh|' \
      -e 's|^ListenPort=.*|ListenPort=3350|' /etc/xrdp/sesman.ini > "$x/sesman.ini"
  grep -qx 'EnableUserWindowManager=true' "$x/sesman.ini" && grep -qx 'UserWindowManager=startwm.sh' "$x/sesman.ini" \
    || fail "could not set UserWindowManager in $x/sesman.ini"
  sh /usr/share/xrdp/socksetup > "$LOGS/xrdp-socksetup.log" 2>&1 || fail "socksetup failed" xrdp-socksetup
  start xrdp-sesman xrdp-sesman --nodaemon --config "$x/sesman.ini"
  wait_until "xrdp-sesman on port $SESMAN_PORT" xrdp-sesman listening "$SESMAN_PORT"
  start xrdp xrdp --nodaemon --config "$x/xrdp.ini"
  wait_until "xrdp X.224 on 127.0.0.1:$TB_XRDP_PORT" xrdp x224_ok "$TB_XRDP_PORT"
}
listening() { [ -n "$(port_holder "$1")" ]; }

# ------------------------------------------------------------------ LDAP
ldap_url() { echo "ldap://127.0.0.1:$TB_LDAP_PORT"; }
ldaps_url() { echo "ldaps://127.0.0.1:$TB_LDAPS_PORT"; }
# ldap_bind_ok URL DN PASS [ldapwhoami options]: a simple bind as DN succeeds (TLS trusts only our certificate)
ldap_bind_ok() {
  local url=$1 dn=$2 pw=$3; shift 3
  LDAPTLS_CACERT=$TB_DIR/ldap/tls/cert.pem LDAPTLS_REQCERT=demand timeout 5 \
    ldapwhoami -x -o nettimeout=3 -H "$url" -D "$dn" -w "$pw" "$@" | grep -qi "^dn:$dn\$"
}
ldap_root_ok() { ldap_bind_ok "$(ldap_url)" "$LDAP_ADMIN_DN" "$TB_LDAP_ADMIN_PASS"; }
alice_ok() { ldap_bind_ok "$1" "uid=alice,ou=people,$LDAP_BASE" alicepass "${@:2}"; }

# start_slapd: slapd in the foreground (-d 0) with $TB_DIR/ldap/slapd.conf and a fresh database, then the test
# entries through ldapadd (so that the memberof overlay fills memberOf)
start_slapd() {
  local l=$TB_DIR/ldap hash
  rm -rf "$l"
  mkdir -p "$l/db" "$l/tls"
  cat > "$l/tls/openssl.cnf" <<EOF
[req]
prompt = no
distinguished_name = dn
x509_extensions = ext
[dn]
CN = localhost
[ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
EOF
  openssl req -x509 -newkey rsa:2048 -nodes -days 365 -config "$l/tls/openssl.cnf" \
    -keyout "$l/tls/key.pem" -out "$l/tls/cert.pem" > "$LOGS/slapd-openssl.log" 2>&1 \
    || fail "openssl req (slapd certificate) failed" slapd-openssl
  chmod 600 "$l/tls/key.pem"
  hash=$(slappasswd -s "$TB_LDAP_ADMIN_PASS") || fail "slappasswd failed"
  cat > "$l/slapd.conf" <<EOF
# Written by Bascule's scripts/testbed.sh
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
pidfile $l/slapd.pid
argsfile $l/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
TLSCertificateFile $l/tls/cert.pem
TLSCertificateKeyFile $l/tls/key.pem
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
database mdb
maxsize 104857600
suffix "$LDAP_BASE"
rootdn "$LDAP_ADMIN_DN"
rootpw $hash
directory $l/db
index objectClass eq
index uid eq
index member eq
overlay memberof
EOF
  slaptest -Q -u -f "$l/slapd.conf" > "$LOGS/slaptest.log" 2>&1 || fail "slaptest rejected $l/slapd.conf" slaptest
  start slapd slapd -d 0 -f "$l/slapd.conf" -h "$(ldap_url)/ $(ldaps_url)/"
  wait_until "slapd rootdn bind on $(ldap_url)" slapd ldap_root_ok
  local p=ou=people,$LDAP_BASE g=ou=groups,$LDAP_BASE
  cat > "$l/data.ldif" <<EOF
dn: $LDAP_BASE
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: $p
objectClass: organizationalUnit
ou: people

dn: $g
objectClass: organizationalUnit
ou: groups

dn: uid=alice,$p
objectClass: inetOrgPerson
objectClass: posixAccount
uid: alice
cn: Alice Martin
sn: Martin
givenName: Alice
displayName: Alice Martin
mail: alice@example.org
uidNumber: 10001
gidNumber: 10001
homeDirectory: /home/alice
loginShell: /bin/bash
userPassword: alicepass

dn: uid=bob,$p
objectClass: inetOrgPerson
objectClass: posixAccount
uid: bob
cn: Bob Durand
sn: Durand
givenName: Bob
mail: bob@example.org
uidNumber: 10002
gidNumber: 10002
homeDirectory: /home/bob
loginShell: /bin/bash
userPassword: bobpass

dn: cn=admins,$g
objectClass: groupOfNames
cn: admins
member: uid=alice,$p

dn: cn=staff,$g
objectClass: groupOfNames
cn: staff
member: uid=alice,$p
member: uid=bob,$p
EOF
  ldapadd -x -H "$(ldap_url)" -D "$LDAP_ADMIN_DN" -w "$TB_LDAP_ADMIN_PASS" -f "$l/data.ldif" \
    > "$LOGS/slapd-ldapadd.log" 2>&1 || fail "ldapadd of $l/data.ldif failed" slapd-ldapadd
  wait_until "ldapwhoami as alice on $(ldap_url)" slapd alice_ok "$(ldap_url)"
  wait_until "ldapwhoami as alice on $(ldaps_url)" slapd alice_ok "$(ldaps_url)"
  wait_until "ldapwhoami as alice with StartTLS on $(ldap_url)" slapd alice_ok "$(ldap_url)" -ZZ
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
  local ports=("$TB_X11VNC_PORT" "$TB_TIGER_PORT")
  [ "$TB_WITH_SHADOW" = 1 ] && ports+=("$TB_SHADOW_TLS_PORT" "$TB_SHADOW_NLA_PORT")
  if [ "$TB_WITH_XRDP" = 1 ]; then
    ports+=("$TB_XRDP_PORT" "$SESMAN_PORT")
    [ "$TB_USER" != root ] || { say "FAIL: TB_USER=root is not allowed (up sets its password, down kills its processes)"; exit 1; }
  fi
  [ "$TB_WITH_SLAPD" = 1 ] && ports+=("$TB_LDAP_PORT" "$TB_LDAPS_PORT")
  for p in "${ports[@]}"; do
    why=$(port_holder "$p")
    [ -z "$why" ] || { say "FAIL: port $p is taken: $why (override with TB_*_PORT; sesman's $SESMAN_PORT is fixed)"; exit 1; }
  done
  say "displays $d $td and ports ${ports[*]} are free"
  mkdir -p "$LOGS"
  : > "$PIDS"
  rm -f "$ENVF"
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

  # 3. freerdp-shadow-cli sharing the x11vnc desktop; 4. xrdp with per-user Xorg sessions
  if [ "$TB_WITH_SHADOW" = 1 ]; then start_shadows "$d"; fi
  if [ "$TB_WITH_XRDP" = 1 ]; then start_xrdp; fi
  # 5. OpenLDAP slapd
  if [ "$TB_WITH_SLAPD" = 1 ]; then start_slapd; fi

  cat > "$ENVF" <<EOF
TB_X11VNC_ADDR=127.0.0.1:$TB_X11VNC_PORT
TB_X11VNC_PASS=$TB_VNC_PASS
TB_X11VNC_DISPLAY=$d
TB_TIGER_ADDR=127.0.0.1:$TB_TIGER_PORT
TB_TIGER_PASS=$TB_VNC_PASS
TB_TIGER_DISPLAY=$td
EOF
  if [ "$TB_WITH_SHADOW" = 1 ]; then
    printf 'TB_SHADOW_TLS_ADDR=127.0.0.1:%s\nTB_SHADOW_NLA_ADDR=127.0.0.1:%s\n' \
      "$TB_SHADOW_TLS_PORT" "$TB_SHADOW_NLA_PORT" >> "$ENVF"
  fi
  if [ "$TB_WITH_XRDP" = 1 ]; then echo "TB_XRDP_ADDR=127.0.0.1:$TB_XRDP_PORT" >> "$ENVF"; fi
  if [ "$TB_WITH_SHADOW" = 1 ] || [ "$TB_WITH_XRDP" = 1 ]; then
    printf 'TB_RDP_USER=%s\nTB_RDP_PASS=%s\n' "$TB_USER" "$TB_PASS" >> "$ENVF"
  fi
  if [ "$TB_WITH_SLAPD" = 1 ]; then
    cat >> "$ENVF" <<EOF
TB_LDAP_URL=$(ldap_url)
TB_LDAPS_URL=$(ldaps_url)
TB_LDAP_BASE=$LDAP_BASE
TB_LDAP_ADMIN_DN=$LDAP_ADMIN_DN
TB_LDAP_ADMIN_PASS=$TB_LDAP_ADMIN_PASS
TB_LDAP_CA=$TB_DIR/ldap/tls/cert.pem
EOF
  fi
  trap - ERR
  say "up: $(wc -l < "$PIDS") processes in $PIDS, endpoints in $ENVF"
}

# ------------------------------------------------------------------ down
do_down() {
  if [ ! -f "$PIDS" ] && [ ! -f "$XRDP_USER_FILE" ]; then say "down: nothing to stop ($PIDS not found)"; return 0; fi
  local name pid left=() i
  if [ -f "$PIDS" ]; then
    while read -r name pid; do
      [ -n "${pid:-}" ] || continue
      if alive "$pid"; then
        # Each was started with setsid, so its process group holds its children too (xrdp forks one
        # process per connection; xterm runs bash).
        if [ "$(ps -o pgid= -p "$pid" | tr -d ' ')" = "$pid" ]; then kill -TERM -- "-$pid" 2>/dev/null || true; fi
        kill -TERM "$pid" 2>/dev/null || true
        left+=("$pid")
      fi
    done < <(tac "$PIDS")
  fi
  for i in $(seq 30); do
    local still=()
    for pid in "${left[@]}"; do alive "$pid" && still+=("$pid"); done
    left=("${still[@]}")
    [ ${#left[@]} -eq 0 ] && break
    sleep 0.1
  done
  for pid in "${left[@]}"; do say "pid $pid ignored TERM; sending KILL"; kill -KILL -- "-$pid" "$pid" 2>/dev/null || true; done
  rm -f "$PIDS"
  stop_xrdp_sessions
  say "down: stopped"
}

# stop_xrdp_sessions: xrdp sessions (Xorg, chansrv, startwm.sh, openbox, xterm) run as the test user, in
# their own sessions, so they are not in any recorded process group: end every process of that user.
stop_xrdp_sessions() {
  [ -f "$XRDP_USER_FILE" ] || return 0
  local user pids i
  user=$(cat "$XRDP_USER_FILE")
  if [ -z "$user" ] || [ "$user" = root ] || ! id -u "$user" >/dev/null 2>&1 || [ "$(id -u "$user")" = 0 ]; then
    say "down: not killing the processes of '$user' (empty, root or unknown)"
    rm -f "$XRDP_USER_FILE"; return 0
  fi
  pids=$(pgrep -u "$user" || true)
  if [ -n "$pids" ]; then
    say "down: ending the xrdp sessions of $user (pids $(echo $pids))"
    kill -TERM $pids 2>/dev/null || true
    for i in $(seq 30); do pgrep -u "$user" >/dev/null || break; sleep 0.1; done
    pids=$(pgrep -u "$user" || true)
    if [ -n "$pids" ]; then say "down: KILL to $user's pids $(echo $pids)"; kill -KILL $pids 2>/dev/null || true; fi
  fi
  rm -f "$XRDP_USER_FILE"
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
  # RDP peers: those that up wrote to the env file
  local addr
  addr=$(sed -n 's/^TB_SHADOW_TLS_ADDR=//p' "$ENVF" 2>/dev/null)
  [ -z "$addr" ] || chk "freerdp-shadow TLS $addr" x224_ok "${addr##*:}"
  addr=$(sed -n 's/^TB_SHADOW_NLA_ADDR=//p' "$ENVF" 2>/dev/null)
  [ -z "$addr" ] || chk "freerdp-shadow NLA $addr" x224_ok "${addr##*:}"
  addr=$(sed -n 's/^TB_XRDP_ADDR=//p' "$ENVF" 2>/dev/null)
  if [ -n "$addr" ]; then
    chk "xrdp-sesman port $SESMAN_PORT"       listening "$SESMAN_PORT"
    chk "xrdp $addr"                          x224_ok "${addr##*:}"
  fi
  addr=$(sed -n 's/^TB_LDAP_URL=//p' "$ENVF" 2>/dev/null)
  [ -z "$addr" ] || chk "slapd $addr (bind as alice)" alice_ok "$addr"
  addr=$(sed -n 's/^TB_LDAPS_URL=//p' "$ENVF" 2>/dev/null)
  [ -z "$addr" ] || chk "slapd $addr (bind as alice)" alice_ok "$addr"
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
