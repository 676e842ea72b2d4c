#!/usr/bin/env bash
# One-node Ceph RADOS Gateway (S3, SigV4-checked) for Stackwright's tests.
#
#   .ci/ceph-rgw.sh [start]   install if needed, build + start mon/osd/rgw, create test user
#   .ci/ceph-rgw.sh stop      stop gateway, then OSD, then monitor
#   .ci/ceph-rgw.sh status    report; exit 0 only if the gateway works with the test user
#   .ci/ceph-rgw.sh env       print `export STACKWRIGHT_S3_*=...` lines (eval "$(... env)")
#
# Everything (config, mon/osd/rgw data, logs, pid files, sockets) lives under
# STACKWRIGHT_CEPH_DIR (default /var/tmp/stackwright-ceph). The OSD uses memstore,
# so data does not survive a stop: `start` after `stop` rebuilds the cluster from
# scratch (15-25 s). `start` on a working gateway is a no-op (<0.1 s).
# Needs root (apt-get, ports), Debian 12 apt repositories, no internet.
set -euo pipefail

DIR="${STACKWRIGHT_CEPH_DIR:-/var/tmp/stackwright-ceph}"
CONF="$DIR/ceph.conf"
HOST=127.0.0.1
PORT=7480
ENDPOINT="http://$HOST:$PORT"
ACCESS_KEY=stackwright-test
SECRET_KEY=stackwright-test-secret-key
S3_UID=stackwright
# RGW accepts any region in the SigV4 scope (us-east-1, default, eu-west-1 all
# verified, also as CreateBucket LocationConstraint); us-east-1 is what SDKs expect.
REGION=us-east-1
TIMEOUT="${STACKWRIGHT_CEPH_TIMEOUT:-120}"   # seconds to wait for each phase
DAEMONS=(rgw osd mon)                         # stop order
PKGS=(radosgw ceph-mon ceph-osd)

log() { printf '[ceph-rgw] %s\n' "$*" >&2; }
die() { printf '[ceph-rgw] ERROR: %s\n' "$*" >&2; exit 1; }

ceph_cli() { timeout 30 ceph -c "$CONF" --connect-timeout 20 "$@"; }

# ---------------------------------------------------------------- health checks
http_code() { # [curl args...] -> prints HTTP status of GET / (000 if nothing answers)
  curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" "$ENDPOINT/" 2>/dev/null || true
}
gateway_answers() { [[ "$(http_code)" =~ ^[1-5][0-9][0-9]$ ]]; }
# A SigV4-signed ListBuckets with the test key: 200 only if the user exists and the key is right.
# (curl 7.88 does not add x-amz-content-sha256 itself; RGW rejects SigV4 without it.)
EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
user_works() {
  [[ "$(http_code -H "x-amz-content-sha256: $EMPTY_SHA256" \
        --aws-sigv4 "aws:amz:$REGION:s3" --user "$ACCESS_KEY:$SECRET_KEY")" == 200 ]]
}
signed() { # method, path -> HTTP status of a SigV4-signed empty-body request
  curl -s -o /dev/null -w '%{http_code}' --max-time 60 -X "$1" \
    -H "x-amz-content-sha256: $EMPTY_SHA256" -H "Content-Length: 0" \
    --aws-sigv4 "aws:amz:$REGION:s3" --user "$ACCESS_KEY:$SECRET_KEY" "$ENDPOINT$2" 2>/dev/null || true
}
warm_up() { # the data pool is also created lazily, on the first object
  local b=/stackwright-warm-up
  [[ "$(signed PUT $b)" == 200 && "$(signed PUT $b/o)" == 200 \
     && "$(signed DELETE $b/o)" == 204 && "$(signed DELETE $b)" == 204 ]]
}
# Ours and whole: the gateway alone keeps answering for a while after the monitor dies.
healthy() {
  command -v curl >/dev/null && gateway_answers && user_works \
    && daemon_alive mon && daemon_alive osd && daemon_alive rgw
}

# ---------------------------------------------------------------- processes
pid_of() { # daemon short name -> pid of our running daemon (or nothing)
  local f pid
  case "$1" in
    mon) f="$DIR/run/mon.a.pid" ;; osd) f="$DIR/run/osd.0.pid" ;; rgw) f="$DIR/run/client.rgw.a.pid" ;;
  esac
  if [[ -s "$f" ]]; then
    pid="$(<"$f")"
    if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$CONF"; then
      echo "$pid"; return
    fi
  fi
  # No (valid) pid file, e.g. a half-started attempt: look for a process of that
  # program started with *our* config file.
  local exe
  case "$1" in mon) exe=ceph-mon ;; osd) exe=ceph-osd ;; rgw) exe=radosgw ;; esac
  for p in /proc/[0-9]*; do
    [[ -r $p/cmdline ]] || continue
    local cmd; cmd="$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)" || continue
    [[ "$cmd" == *"$exe "* && "$cmd" == *"-c $CONF "* ]] && { echo "${p#/proc/}"; return 0; }
  done
  return 0
}

stop_daemon() { # name -> SIGTERM, wait up to 20 s, then SIGKILL
  local pid; pid="$(pid_of "$1")"
  [[ -n "$pid" ]] || return 0
  log "stopping $1 (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 200); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  log "$1 did not exit after SIGTERM; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  die "could not stop $1 (pid $pid)"
}

daemon_alive() { [[ -n "$(pid_of "$1")" ]]; }

stop_all() { for d in "${DAEMONS[@]}"; do stop_daemon "$d"; done; }

# ---------------------------------------------------------------- install
install_packages() {
  local need=()
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
  done
  command -v curl >/dev/null || need+=(curl)
  [[ ${#need[@]} -eq 0 ]] && return 0
  log "installing ${need[*]} (apt prints 'Failed to connect to bus' without systemd: harmless)"
  export DEBIAN_FRONTEND=noninteractive
  local out
  if ! out="$(apt-get install -y --no-install-recommends "${need[@]}" 2>&1)"; then
    if grep -qE 'Unable to locate package|has no installation candidate|404 +Not Found|Failed to fetch' <<<"$out"; then
      log "apt-get install failed for lack of package lists; running apt-get update"
      apt-get update -q >&2 || die "apt-get update failed"
      apt-get install -y --no-install-recommends "${need[@]}" >&2 || die "apt-get install ${need[*]} failed"
    else
      printf '%s\n' "$out" | tail -n 30 >&2
      die "apt-get install ${need[*]} failed"
    fi
  fi
}

# ---------------------------------------------------------------- build + start
tail_log() { # file -> print its tail to stderr
  if [[ -s "$1" ]]; then
    echo "----- last 40 lines of $1 -----" >&2; tail -n 40 "$1" >&2; echo "-----" >&2
  else
    echo "(log $1 is empty or missing)" >&2
  fi
}
fail() { # message, log file
  log "ERROR: $1"; tail_log "$2"
  [[ -s "$DIR/log/daemons.out" ]] && { echo "----- daemons' own output ($DIR/log/daemons.out) -----" >&2; tail -n 20 "$DIR/log/daemons.out" >&2; }
  log "leaving the half-started cluster in $DIR; the next 'start' cleans it up"
  exit 1
}

write_conf() {
  local fsid; fsid="$(cat /proc/sys/kernel/random/uuid)"
  cat >"$CONF" <<EOF
# Written by .ci/ceph-rgw.sh: one-node test cluster, no auth, all state in $DIR.
[global]
fsid = $fsid
auth cluster required = none
auth service required = none
auth client required = none
mon host = v2:$HOST:3300
public addr = $HOST
ms bind ipv6 = false
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
pid file = $DIR/run/\$name.pid
log file = $DIR/log/\$name.log
crash dir = $DIR/crash
keyring = $DIR/keyring
mon data = $DIR/mon/\$name
osd data = $DIR/osd/\$name
rgw data = $DIR/rgw/\$name
osd objectstore = memstore
memstore device bytes = 2147483648
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
osd crush chooseleaf type = 0
mon warn on pool no redundancy = false

[client.rgw.a]
rgw frontends = beast endpoint=$HOST:$PORT
# With auth "none" the gateway still insists on a secure mon connection and
# loops on "get_initial_auth_request returned -13"; allow crc.
ms mon client mode = crc secure
# The OSD keeps data in memory (2 GiB); reclaim deleted objects within a minute rather than the
# default two hours, so repeated test and benchmark runs do not fill it.
rgw gc obj min wait = 30
rgw gc processor period = 30
EOF
}

wait_for() { # description, timeout, log file, command...
  local what="$1" limit="$2" logf="$3"; shift 3
  local t0=$SECONDS
  until "$@" >/dev/null 2>&1; do
    (( SECONDS - t0 >= limit )) && fail "timed out after ${limit}s waiting for $what" "$logf"
    sleep 0.5
  done
  log "$what ($((SECONDS - t0))s)"
}

osd_up() { ceph_cli osd dump 2>/dev/null | grep -qE '^osd\.0 up +in'; }

start() {
  if healthy; then
    log "gateway already running at $ENDPOINT with user $S3_UID; nothing to do"
    return 0
  fi
  local t0=$SECONDS
  install_packages
  command -v curl >/dev/null || die "curl is required"

  # Anything of ours left over (half-started attempt, or a stopped memstore
  # cluster whose data is gone): stop it and rebuild from scratch.
  stop_all
  if gateway_answers; then
    die "something else already answers on $ENDPOINT (not our gateway with user $S3_UID)"
  fi
  if [[ -d "$DIR" && -n "$(ls -A "$DIR")" && ! -e "$DIR/.stackwright-ceph" ]]; then
    die "$DIR is not empty and was not made by this script; refusing to wipe it (set STACKWRIGHT_CEPH_DIR)"
  fi
  rm -rf "$DIR"
  mkdir -p "$DIR" && touch "$DIR/.stackwright-ceph"
  mkdir -p "$DIR"/{run,log,crash,mon,osd,rgw}
  write_conf
  log "building one-node cluster in $DIR"

  # Monitor
  ceph-authtool --create-keyring "$DIR/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  monmaptool --create --fsid "$(sed -n 's/^fsid = //p' "$CONF")" \
    --addv a "[v2:$HOST:3300]" "$DIR/monmap" >/dev/null
  mkdir -p "$DIR/mon/mon.a"
  ceph-mon -c "$CONF" -i a --mkfs --monmap "$DIR/monmap" --keyring "$DIR/mon.keyring" \
    >"$DIR/log/mon-mkfs.out" 2>&1 || fail "ceph-mon --mkfs failed" "$DIR/log/mon-mkfs.out"
  ceph-mon -c "$CONF" -i a </dev/null >>"$DIR/log/daemons.out" 2>&1 \
    || fail "ceph-mon did not start" "$DIR/log/mon.a.log"
  wait_for "monitor up" "$TIMEOUT" "$DIR/log/mon.a.log" ceph_cli mon stat

  # OSD (memstore)
  local uuid id
  uuid="$(cat /proc/sys/kernel/random/uuid)"
  id="$(ceph_cli osd create "$uuid")" || fail "ceph osd create failed" "$DIR/log/mon.a.log"
  [[ "$id" == 0 ]] || fail "expected OSD id 0, got '$id'" "$DIR/log/mon.a.log"
  mkdir -p "$DIR/osd/osd.0"
  ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$uuid" >"$DIR/log/osd-mkfs.out" 2>&1 \
    || fail "ceph-osd --mkfs failed" "$DIR/log/osd-mkfs.out"
  ceph-osd -c "$CONF" -i 0 </dev/null >>"$DIR/log/daemons.out" 2>&1 \
    || fail "ceph-osd did not start" "$DIR/log/osd.0.log"
  wait_for "OSD up" "$TIMEOUT" "$DIR/log/osd.0.log" osd_up

  # Gateway
  mkdir -p "$DIR/rgw/client.rgw.a"
  radosgw -c "$CONF" -n client.rgw.a </dev/null >>"$DIR/log/daemons.out" 2>&1 \
    || fail "radosgw did not start" "$DIR/log/client.rgw.a.log"
  wait_for "gateway answers HTTP on $ENDPOINT" "$TIMEOUT" "$DIR/log/client.rgw.a.log" gateway_answers

  # Test user with fixed credentials
  radosgw-admin -c "$CONF" user create --uid="$S3_UID" --display-name="Stackwright tests" \
    --access-key="$ACCESS_KEY" --secret="$SECRET_KEY" >"$DIR/log/user-create.out" 2>&1 \
    || fail "radosgw-admin user create failed" "$DIR/log/user-create.out"
  wait_for "test user accepted (SigV4)" 30 "$DIR/log/client.rgw.a.log" user_works
  # The gateway creates its bucket pools lazily, which makes the first CreateBucket
  # and the first PutObject take seconds; do both here (and prove writes work)
  # rather than in somebody's test.
  wait_for "warm-up bucket+object written and deleted" "$TIMEOUT" "$DIR/log/client.rgw.a.log" warm_up

  log "ready in $((SECONDS - t0))s: $ENDPOINT (access key $ACCESS_KEY, region $REGION)"
}

status() {
  local ok=0
  for d in mon osd rgw; do
    local pid; pid="$(pid_of "$d")"
    if [[ -n "$pid" ]]; then echo "$d: running (pid $pid)"; else echo "$d: not running"; ok=1; fi
  done
  if command -v curl >/dev/null && gateway_answers; then
    echo "http: $ENDPOINT answers"
    if user_works; then echo "user: $S3_UID accepted (SigV4, region $REGION)"; else echo "user: $S3_UID NOT accepted"; ok=1; fi
  else
    echo "http: nothing answers on $ENDPOINT"; ok=1
  fi
  echo "dir: $DIR"
  return $ok
}

print_env() {
  cat <<EOF
export STACKWRIGHT_S3_ENDPOINT=$ENDPOINT
export STACKWRIGHT_S3_ACCESS_KEY=$ACCESS_KEY
export STACKWRIGHT_S3_SECRET_KEY=$SECRET_KEY
export STACKWRIGHT_S3_REGION=$REGION
EOF
}

case "${1:-start}" in
  start) start ;;
  stop) stop_all; log "stopped" ;;
  status) status ;;
  env) print_env ;;
  *) echo "usage: $0 [start|stop|status|env]" >&2; exit 2 ;;
esac
