#!/usr/bin/env bash
# Stop the cluster that start-s3.sh built in S3_DIR and delete it. Kills only the PIDs recorded in
# S3_DIR/pids, so other Ceph processes on the machine are left alone. Safe when nothing runs.
set -euo pipefail

S3_DIR=${S3_DIR:-/tmp/amber-ceph-s3}
log() { echo "stop-s3: $*" >&2; }

# A zombie or a PID reused by another program counts as gone.
ours() { [[ $(cat "/proc/$1/comm" 2>/dev/null) == "$2" ]] && ! grep -q '^State:.Z' "/proc/$1/status"; }

alive() {
  local pid name
  [[ -f $S3_DIR/pids ]] || return 0
  while read -r pid name; do
    if ours "$pid" "$name"; then echo "$pid"; fi
  done <"$S3_DIR/pids"
}

pids=$(alive)
if [[ -n $pids ]]; then
  log "stopping pids" $pids
  kill -TERM $pids 2>/dev/null || true
  # radosgw often takes more than 2 s to exit on TERM; the data is disposable, so do not wait long.
  for _ in $(seq 50); do
    pids=$(alive); [[ -z $pids ]] && break
    sleep 0.1
  done
  if [[ -n $pids ]]; then
    log "killing pids" $pids
    kill -KILL $pids 2>/dev/null || true
    for _ in $(seq 20); do [[ -z $(alive) ]] && break; sleep 0.1; done
  fi
fi

if [[ -d $S3_DIR ]]; then
  # Guard against a mistyped S3_DIR: only delete what start-s3.sh made (or an empty directory).
  [[ -f $S3_DIR/ceph.conf || -f $S3_DIR/pids || -z $(ls -A "$S3_DIR") ]] ||
    { log "error: $S3_DIR was not made by start-s3.sh; not deleting it"; exit 1; }
  rm -rf -- "$S3_DIR"
  log "removed $S3_DIR"
fi
