#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets) for SECONDS each (default 60), one after another, and
# prints each target's runs and whether it crashed; exits 1 if any did. See RELIABILITY.md.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# The committed corpus (fuzz/corpus/<target>) seeds each run; what a run discovers goes to
# fuzz/runs/<target> (not committed: minimise it into the corpus with `cargo fuzz cmin` if wanted).
# A crash's input is in fuzz/artifacts/<target>/. On this stable toolchain RUSTC_BOOTSTRAP=1 lets
# cargo-fuzz pass its -Z flags; FUZZ_SANITIZER=none builds without AddressSanitizer (faster, and
# for toolchains without the sanitizer runtime).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
sanitizer=${FUZZ_SANITIZER:-address}
export RUSTC_BOOTSTRAP=1

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cargo fuzz build -O --sanitizer "$sanitizer"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi

mkdir -p fuzz/runs fuzz/logs
failed=0
summary=()
for target in "${targets[@]}"; do
  mkdir -p "fuzz/runs/$target" "fuzz/corpus/$target"
  log="fuzz/logs/$target.log"
  status=ok
  # -max_len: seeds are at most a few datagrams; -timeout: a single input slower than this is a bug.
  if ! cargo fuzz run -O --sanitizer "$sanitizer" "$target" "fuzz/runs/$target" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -max_len=4096 -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
    status=CRASH
    failed=1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  line=$(printf '%-18s %8ss %12s runs  %s' "$target" "$seconds" "${runs:-?}" "$status")
  if [ "$status" = CRASH ]; then
    line="$line  ($(grep -o 'Test unit written to .*' "$log" | head -1 || echo "see $log"))"
  fi
  echo "$line"
  summary+=("$line")
done

echo
echo "fuzz summary ($sanitizer sanitizer, ${seconds}s per target):"
printf '%s\n' "${summary[@]}"
exit "$failed"
