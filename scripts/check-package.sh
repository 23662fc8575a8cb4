#!/usr/bin/env bash
# The package as a user gets it: `npm pack` (which builds dist/), the tarball's contents, then
# `npm install -g` of it into an empty prefix and a small init/backup/verify/restore round trip
# with the installed `amber`, on a Node that package.json's "engines" allows. Runs alone
# (`npm run check:package` or `bash scripts/check-package.sh`) and from .ci/run.
#
# The Node: AMBER_CHECK_NODE=/path/to/bin (a directory with `node`) if set; otherwise the machine's
# Node if "engines" allows it, else the Node 24 the project pins (node_modules/node/bin). A machine
# Node that "engines" does not allow must be refused by the installed `amber` with a clear error.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

tmp=$(mktemp -d "${TMPDIR:-/tmp}/amber-check-package.XXXXXX")
# The fs store makes protected objects immutable (chattr +i) where it may, as root: lift that first.
cleanup() {
  if command -v chattr >/dev/null; then chattr -R -i -a -- "$tmp" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "check-package: $*" >&2; exit 1; }
trap 'echo "check-package: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

# Mirrors "engines" ("^22.15.0 || >=23.8.0") and bin/amber.js; --engine-strict below makes npm
# refuse the install if the two ever disagree.
supported() {
  local major minor
  IFS=. read -r major minor _ <<<"$1"
  ((major > 23 || (major == 23 && minor >= 8) || (major == 22 && minor >= 15)))
}

# The machine's node: the first on PATH outside node_modules (`npm run` puts the pinned one first).
machine_node=
IFS=: read -ra path_dirs <<<"$PATH"
for dir in "${path_dirs[@]}"; do
  case $dir in */node_modules/*) continue ;; esac
  if [ -x "$dir/node" ]; then machine_node=$dir/node; break; fi
done
machine_version=$([ -n "$machine_node" ] && "$machine_node" -p process.versions.node || echo none)
if [ -n "${AMBER_CHECK_NODE:-}" ]; then
  node_dir=$AMBER_CHECK_NODE
elif [ -n "$machine_node" ] && supported "$machine_version"; then
  node_dir=$(dirname "$machine_node")
else
  node_dir=$root/node_modules/node/bin
fi
[ -x "$node_dir/node" ] || fail "no node in $node_dir (run npm ci)"
export PATH="$node_dir:$PATH"
echo "check-package: node $(node --version) from $node_dir (machine node: $machine_version)"

# 1. Pack: prepack builds dist/; the tarball holds what runs and its documentation, nothing else.
npm pack --silent --pack-destination "$tmp" >/dev/null
tarball=$(echo "$tmp"/amber-backup-*.tgz)
[ -f "$tarball" ] || fail "npm pack made no tarball"
tar -tzf "$tarball" | sed 's|^package/||' | sort >"$tmp/contents"
unexpected=$(grep -vE '^(package\.json|README\.md|LICENSE|bin/amber\.js|dist/.+\.js|docs/[^/]+\.md|deploy/(systemd/[^/]+\.service|prometheus/[^/]+\.yml)|schema/[^/]+\.schema\.json)$' "$tmp/contents" || true)
[ -z "$unexpected" ] || fail "unexpected files in the tarball: $unexpected"
! grep -qE '\.(test|bench)\.js$|^dist/testing/' "$tmp/contents" || fail "tests in the tarball: $(grep -E '\.(test|bench)\.js$|^dist/testing/' "$tmp/contents")"
grep -qx dist/cli/main.js "$tmp/contents" || fail "dist/cli/main.js is not in the tarball"
for worker in codec decode verify list scan; do
  grep -qx "dist/engine/$worker-worker.js" "$tmp/contents" || fail "dist/engine/$worker-worker.js is not in the tarball"
done
for shipped in deploy/systemd/amber-agent.service deploy/systemd/amber-vault.service deploy/prometheus/amber-alerts.yml schema/policy.schema.json; do
  grep -qx "$shipped" "$tmp/contents" || fail "$shipped is not in the tarball"
done
echo "check-package: $(basename "$tarball"): $(wc -l <"$tmp/contents") files, no tests"

# 2. Install into an empty prefix, as `npm install -g` does (dependencies from npm's cache or the registry).
npm install -g --engine-strict --prefer-offline --no-audit --no-fund --loglevel=error --prefix "$tmp/prefix" "$tarball" >/dev/null
amber=$tmp/prefix/bin/amber
[ ! -e "$tmp/prefix/lib/node_modules/amber-backup/src" ] || fail "the installed package has src/"
version=$("$amber" --version)
expected=$(node -p 'require("./package.json").version')
[ "$version" = "$expected" ] || fail "amber --version says $version, package.json $expected"
echo "check-package: installed amber $version"

# 3. A round trip with the installed amber; two workers, so the worker threads' files must resolve.
export AMBER_PASSWORD='check-package passphrase' AMBER_KDF_LOG_N=10 AMBER_CACHE_DIR="$tmp/cache" AMBER_WORKERS=2
source_dir=$tmp/source
mkdir -p "$source_dir/sub/deeper"
echo 'hello from the package check' >"$source_dir/hello.txt"
head -c 3000000 /dev/urandom >"$source_dir/sub/random.bin"
head -c 2000000 <(yes 'compressible line') >"$source_dir/sub/deeper/text.txt"
: >"$source_dir/empty"
repo=$tmp/repo
"$amber" init --repo "$repo" >/dev/null
"$amber" backup --repo "$repo" --quiet "$source_dir"
"$amber" verify --repo "$repo" --read-data --quiet
"$amber" restore latest --repo "$repo" --target "$tmp/restored" --quiet
diff -r "$source_dir" "$tmp/restored$source_dir" || fail "the restored tree differs from the source"
status=0
"$amber" snapshots --repo "$tmp/nonexistent" >/dev/null 2>&1 || status=$?
[ "$status" = 10 ] || fail "amber snapshots on a missing repository exited $status, not 10 (REPO_NOT_FOUND)"
echo "check-package: init, backup, verify --read-data and restore round trip: identical"

# 4. A machine Node below "engines" gets a clear error from the installed amber, not a stack trace.
if [ -n "$machine_node" ] && ! supported "$machine_version"; then
  status=0
  "$machine_node" "$amber" --version >/dev/null 2>"$tmp/old-node.err" || status=$?
  [ "$status" = 1 ] && grep -q 'needs Node.js 22.15 or later' "$tmp/old-node.err" ||
    fail "under Node $machine_version the installed amber exited $status with: $(cat "$tmp/old-node.err")"
  echo "check-package: under the machine's Node $machine_version: $(head -1 "$tmp/old-node.err")"
fi
echo "check-package: ok"
