#!/usr/bin/env bash
# Start a throwaway single-node Ceph cluster (1 mon, 1 memstore OSD, radosgw, no mgr) on
# 127.0.0.1, so the integration tests run against a real S3 server that enforces Object Lock.
#
#   eval "$(scripts/s3/start-s3.sh)" && export S3_ENDPOINT S3_ACCESS_KEY S3_SECRET_KEY S3_REGION
#   ...tests...; S3_DIR=... scripts/s3/stop-s3.sh
#
# stdout carries only the S3_* lines (so it can be eval'ed); progress and errors go to stderr.
# Needs Debian/Ubuntu; installs the Ceph packages with apt (as root) if they are missing.
set -euo pipefail

S3_DIR=${S3_DIR:-/tmp/amber-ceph-s3}
S3_PORT=${S3_PORT:-7480}
S3_MON_PORT=${S3_MON_PORT:-13300}
S3_MEM_BYTES=${S3_MEM_BYTES:-2147483648}
S3_ACCESS_KEY=${S3_ACCESS_KEY:-OBJLOCKTESTACCESSKEY}
S3_SECRET_KEY=${S3_SECRET_KEY:-objlockTestSecretKey0000000000000000000000}
S3_START_TIMEOUT=${S3_START_TIMEOUT:-120}
export S3_DIR

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { echo "start-s3: $*" >&2; }
die() { echo "start-s3: error: $*" >&2; exit 1; }

have() { local b; for b; do command -v "$b" >/dev/null || return 1; done; }

install_ceph() {
  # Ask apt only for what is missing: naming an installed package would upgrade it as a side effect.
  local pkgs=()
  have ceph ceph-mon ceph-osd radosgw radosgw-admin monmaptool ||
    pkgs+=(ceph-mon ceph-osd radosgw ceph-base ceph-common)
  have curl || pkgs+=(curl)
  have ss || pkgs+=(iproute2)
  ((${#pkgs[@]})) || return 0
  have apt-get || die "need ${pkgs[*]}, and there is no apt-get to install them"
  [[ $(id -u) == 0 ]] || die "need ${pkgs[*]}; run as root or install them first"
  log "installing ${pkgs[*]} (about a minute the first time)"
  export DEBIAN_FRONTEND=noninteractive
  # --no-install-recommends keeps ceph-mgr and its large Python stack out; we do not need a mgr.
  # apt-get update only on failure: the package lists on CI images are usually fresh enough.
  apt-get install -y -q --no-install-recommends "${pkgs[@]}" >&2 ||
    { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends "${pkgs[@]}" >&2; } ||
    die "apt-get could not install ${pkgs[*]}"
}

port_busy() { [[ -n $(ss -Hltn "sport = :$1") ]]; }

# Daemons run in the foreground (-f) in their own session, so Ctrl-C or the end of a CI step does
# not reach them and $! is the daemon itself. Their stdio must not be our stdout, or
# "$(start-s3.sh)" would wait for them forever. "pid name" lets stop-s3.sh skip reused PIDs.
spawn() {
  local name=$1; shift
  setsid "$@" -f </dev/null >"$S3_DIR/log/$name.out" 2>&1 &
  echo "$! $(basename "$1")" >>"$S3_DIR/pids"
}

# Every step that talks to the cluster is bounded by what is left of S3_START_TIMEOUT.
left() { local s=$((deadline - SECONDS)); echo $((s > 1 ? s : 1)); }
ceph_cmd() { timeout "$(left)" "$@" -c "$S3_DIR/ceph.conf"; }

# Our children stay zombies until we exit, and kill -0 succeeds on a zombie.
exited() { local stat; read -r stat 2>/dev/null <"/proc/$1/stat" || return 0; [[ ${stat##*) } == Z* ]]; }

s3_status() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
    --aws-sigv4 "aws:amz:us-east-1:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
    -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "http://127.0.0.1:$S3_PORT/" || true
}

on_exit() {
  local rc=$?
  trap - EXIT
  ((rc == 0)) && return
  if [[ -f $S3_DIR/pids ]]; then
    ((SECONDS < deadline)) || log "not ready within S3_START_TIMEOUT=${S3_START_TIMEOUT}s"
    log "failed while $step (exit $rc); last lines of the logs in $S3_DIR/log:"
    tail -n 10 "$S3_DIR"/log/* >&2 || true
    "$here/stop-s3.sh" >&2 || true
  fi
  exit 1
}

install_ceph

step="removing the previous cluster in $S3_DIR"
"$here/stop-s3.sh" >&2
for port in "$S3_PORT" "$S3_MON_PORT"; do
  port_busy "$port" && die "127.0.0.1:$port is already in use by a process this script did not start:
$(ss -Hltnp "sport = :$port")"
done

mkdir -p "$S3_DIR"/{log,run,mon,osd,crash}
S3_DIR=$(cd "$S3_DIR" && pwd)   # ceph.conf needs absolute paths
: >"$S3_DIR/pids"
deadline=$((SECONDS + S3_START_TIMEOUT))
trap on_exit EXIT
trap 'exit 1' INT TERM HUP
fsid=$(cat /proc/sys/kernel/random/uuid)

cat >"$S3_DIR/ceph.conf" <<CONF
[global]
fsid = $fsid
mon_host = [v2:127.0.0.1:$S3_MON_PORT]
# Bind the OSD's public and cluster messengers to loopback as well, not to every interface.
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
# A disposable test cluster: no keyrings to manage.
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
# radosgw defaults to "secure" mode towards the mon, which with auth=none loops on error -13.
ms_mon_client_mode = crc secure
ms_client_mode = crc secure
# radosgw creates ~7 pools, one osdmap commit each; the default 1 s paxos interval makes that ~15 s.
paxos_propose_interval = 0.05
paxos_min_wait = 0.01
# One OSD: pools must live with a single replica and a small PG count.
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_max_pg_per_osd = 1000
mon_warn_on_pool_no_redundancy = false
# Keep every file of the cluster inside S3_DIR so stop-s3.sh can throw it all away.
run_dir = $S3_DIR/run
admin_socket = $S3_DIR/run/\$name.asok
pid_file = $S3_DIR/run/\$name.pid
log_file = $S3_DIR/log/\$name.log
mon_cluster_log_file = $S3_DIR/log/cluster.log
crash_dir = $S3_DIR/crash
mon_data = $S3_DIR/mon
osd_data = $S3_DIR/osd
# Memstore keeps objects in the OSD's RAM: fast, and nothing to clean up on disk.
osd_objectstore = memstore
memstore_device_bytes = $S3_MEM_BYTES
# On TERM the OSD waits up to 5 s for the mon to ack "mark me down", in vain if the mon is gone.
osd_fast_shutdown_notify_mon = false

[client.rgw]
rgw_frontends = beast endpoint=127.0.0.1:$S3_PORT
rgw_data = $S3_DIR/rgw
CONF

step="creating the monitor"
log "building a new cluster in $S3_DIR"
monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$S3_MON_PORT]" "$S3_DIR/monmap" >&2
ceph-mon -c "$S3_DIR/ceph.conf" -i a --mkfs --monmap "$S3_DIR/monmap" >&2
spawn mon.a ceph-mon -c "$S3_DIR/ceph.conf" -i a

step="creating the OSD"
osd_uuid=$(cat /proc/sys/kernel/random/uuid)
osd_id=$(ceph_cmd ceph osd new "$osd_uuid")
ceph-osd -c "$S3_DIR/ceph.conf" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" >&2
spawn "osd.$osd_id" ceph-osd -c "$S3_DIR/ceph.conf" -i "$osd_id"

step="starting radosgw"
spawn rgw radosgw -c "$S3_DIR/ceph.conf" -n client.rgw

step="creating the S3 user"
ceph_cmd radosgw-admin user create --uid amber-test --display-name "Amber tests" \
  --access-key "$S3_ACCESS_KEY" --secret-key "$S3_SECRET_KEY" >/dev/null

step="waiting for a signed ListBuckets to answer 200"
until [[ $(s3_status) == 200 ]]; do
  ((SECONDS < deadline)) || exit 1
  while read -r pid name; do
    exited "$pid" && die "$name (pid $pid) exited"
  done <"$S3_DIR/pids"
  sleep 0.2
done
log "ready after ${SECONDS}s"

printf '%s\n' "S3_ENDPOINT=http://127.0.0.1:$S3_PORT" "S3_ACCESS_KEY=$S3_ACCESS_KEY" \
  "S3_SECRET_KEY=$S3_SECRET_KEY" "S3_REGION=us-east-1" "S3_DIR=$S3_DIR"
