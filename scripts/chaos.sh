#!/usr/bin/env bash
# The chaos suite of RELIABILITY.md, one case after another, each bounded and self-stopping (real
# `octo`, real Chromium or str0m peers, loopback and network namespaces of its own). Prints each
# case's verdict, time and the figures it printed; exits 1 if any failed.
#
#   scripts/chaos.sh [CASE...]        # cases: hung killed server other-rooms loss path shaped flood
#
# Needs root (namespaces, nftables, tc) and Debian's chromium, nftables and iproute2, as the test
# command does. The flood case uses a release build of the load generator (built here).
set -uo pipefail
cd "$(dirname "$0")/.."

# Each test case: its test binary, the test name filter, and what its figure line contains.
declare -A case=(
  [hung]='web_e2e|hung_worker_replaced|replaced after'
  [killed]='web_e2e|worker_killed_tiles_kept|media flowing again'
  [server]='web_e2e|server_killed_and_restarted|call back'
  [other-rooms]='worker_death|a_killed_worker_costs|room B across it'
  [loss]='web_e2e|five_percent_loss|"who"'
  [path]='web_e2e|ice_restart_after_a_broken_path|video back both ways'
  [shaped]='web_e2e|a_downlink_at_half|Lia behind'
)
order=(hung killed server other-rooms loss path shaped flood)
cases=("$@")
[ ${#cases[@]} -eq 0 ] && cases=("${order[@]}")

cargo build --workspace --bins -q || exit 1
mkdir -p target/chaos
failed=0
summary=()
for c in "${cases[@]}"; do
  log="target/chaos/$c.log"
  start=$(date +%s)
  if [ "$c" = flood ]; then
    # 100,000 garbage datagrams/s at the media port under a 100-viewer call: loss must stay < 1 %.
    cargo build --release -q -p octo-loadgen -p octo-controller -p octo-worker || exit 1
    json="target/chaos/flood.json"
    if ./target/release/octo-loadgen --settle-ms 3000 --window-ms 10000 --flood-pps 100000 --json "$json" \
        webinar --subscribers 100 >"$log" 2>&1 \
      && python3 -c "import json,sys; s=json.load(open('$json'))['steps'][-1]; sys.exit(0 if s['loss_percent'] < 1 else 1)"; then
      verdict=pass
    else
      verdict=FAIL
    fi
    line=$(python3 -c "
import json; s=json.load(open('$json'))['steps'][-1]; f=s['flood']
print(f\"{f['sent_per_s']:.0f} garbage/s, {f['worker_drops']} dropped by the worker; call loss {s['loss_percent']:.3f} %, p99 {s['latency_p99_ms']:.1f} ms\")" 2>/dev/null || echo "no figures")
  else
    [ -n "${case[$c]:-}" ] || { echo "unknown case $c (cases: ${order[*]})"; exit 2; }
    IFS='|' read -r binary name fig <<<"${case[$c]}"
    # --include-ignored: the shaped case is too heavy for the CI runner's test command.
    if cargo test -q -p octo-tests --test "$binary" -- --nocapture --include-ignored "$name" >"$log" 2>&1; then
      verdict=pass
    else
      verdict=FAIL
    fi
    line=$(grep -v '^\[octo\]' "$log" | grep -m2 -- "$fig" | tr '\n' ' ' || true)
  fi
  [ "$verdict" = pass ] || failed=1
  summary+=("$(printf '%-12s %-5s %4ss  %s' "$c" "$verdict" "$(($(date +%s) - start))" "${line:-(no figure line; see $log)}")")
done
echo
printf '%-12s %-5s %5s  %s\n' case result time figures
printf '%s\n' "${summary[@]}"
echo "logs: target/chaos/"
exit $failed
