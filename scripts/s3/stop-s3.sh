#!/usr/bin/env bash
# Stop the cluster that start-s3.sh built in S3_DIR and delete it. Only the PIDs recorded in
# S3_DIR/pids are signalled, so other Ceph processes on the machine are left alone.
# Safe to call when nothing runs.
set -euo pipefail

S3_DIR=${S3_DIR:-/tmp/amber-ceph-s3}
log() { echo "stop-s3: $*" >&2; }

# Still our daemon? A PID reused by another program, or a zombie not yet reaped, counts as gone.
running() {
  local comm stat
  read -r comm 2>/dev/null <"/proc/$1/comm" && [[ $comm == "$2" ]] || return 1
  read -r stat 2>/dev/null <"/proc/$1/stat" && [[ ${stat##*) } != Z* ]]
}

pids=() names=()
if [[ -f $S3_DIR/pids ]]; then
  while read -r pid name; do
    if running "$pid" "$name"; then pids=("$pid" "${pids[@]}") names=("$name" "${names[@]}"); fi
  done <"$S3_DIR/pids"
fi

# Newest first (radosgw, OSD, mon): radosgw hangs on TERM once the OSD is gone, because it still
# tries to write to RADOS. One shared 5 s grace period; the data is disposable, so then KILL.
deadline=$((SECONDS + 5))
for i in "${!pids[@]}"; do
  log "stopping ${names[i]} (pid ${pids[i]})"
  kill -TERM "${pids[i]}" 2>/dev/null || true
  while running "${pids[i]}" "${names[i]}" && ((SECONDS < deadline)); do sleep 0.05; done
done
for i in "${!pids[@]}"; do
  if running "${pids[i]}" "${names[i]}"; then
    log "killing ${names[i]} (pid ${pids[i]})"
    kill -KILL "${pids[i]}" 2>/dev/null || true
  fi
done
for i in "${!pids[@]}"; do
  while running "${pids[i]}" "${names[i]}"; do sleep 0.05; done
done

if [[ -d $S3_DIR ]]; then
  # Guard against a mistyped S3_DIR: delete only what start-s3.sh made, or an empty directory.
  [[ -f $S3_DIR/ceph.conf || -f $S3_DIR/pids || -z $(ls -A "$S3_DIR") ]] ||
    { log "error: $S3_DIR was not made by start-s3.sh; not deleting it"; exit 1; }
  rm -rf -- "$S3_DIR"
  log "removed $S3_DIR"
fi
