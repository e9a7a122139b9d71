#!/usr/bin/env bash
# The real-GPU proof of the verify suite (issue 7), prepared to run in ONE call on a lent GPU
# machine that has PyTorch and nvidia-ml-py but no MXNet and no package index:
#
#   run(command="bash tests/gpu/device-run.sh", carry=[".venv/lib/python3.11/site-packages/yaml"])
#
# It records a snapshot, runs the NVML checks and the torch workload checks on every GPU, and
# leaves the JSON/JUnit reports and the snapshot under $OUT (or ./artifacts/gpu when unset).
# Then the burn-in (issue 13): DEVICE_RUN_BURN_IN_MINUTES (2) of load on every GPU at once with
# torch, its JSON as $OUT/real-<gpu model>.burn-in.json, to commit as a real fixture under
# tests/fixtures/burn_in/ (plus the HTML page and the terminal output).
# DEVICE_RUN_CPU_ONLY=1 rehearses the same script on a machine without a GPU (the burn-in's JSON
# is then rehearsal-cpu.burn-in.json, never a real-* fixture); DEVICE_RUN_ONLY=burn-in runs
# the burn-in part alone (tests/unit/test_burn_in.py rehearses it that way).
set -u
cd "$(dirname "$0")/../.."
out="${OUT:-artifacts/gpu}"
mkdir -p "$out"
python="${PYTHON:-python3}"

# PyYAML may be missing there: the carried pure-Python copy is enough for the suite.
if ! "$python" -c 'import yaml' 2>/dev/null && [ -d .venv/lib/python3.11/site-packages/yaml ]; then
  mkdir -p "$out/.pylib" && cp -r .venv/lib/python3.11/site-packages/yaml "$out/.pylib/"
  export PYTHONPATH="$PWD/$out/.pylib${PYTHONPATH:+:$PYTHONPATH}"
fi

{
  date -u +"started %Y-%m-%dT%H:%M:%SZ"
  nvidia-smi --query-gpu=name,driver_version,pcie.link.gen.max,pcie.link.width.current --format=csv 2>&1
  "$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' 2>&1
} | tee "$out/device.txt"

mode=()
[ "${DEVICE_RUN_CPU_ONLY:-0}" = 1 ] && mode=(--cpu-only)
host="$(hostname)"
if [ "${DEVICE_RUN_ONLY:-}" != burn-in ]; then
  "$python" -m verify "${mode[@]}" --framework torch --host "$host" --no-color \
    --record-snapshot "$out/snapshot.json" --json "$out/report.json" --junit "$out/report.junit.xml" \
    2>&1 | tee "$out/terminal.txt"
  status=${PIPESTATUS[0]}
  echo "verify exit code: $status" | tee -a "$out/device.txt"
fi

# The fixture is named after the card (lower case, one dash between words) and how many there are.
# The memory test's patterns are made on the host: 8 GiB a pass keeps several passes in two
# minutes; a lab's own burn-in (make burn-in) tests 80 % of the free memory.
memory=(--memory-mib "${DEVICE_RUN_BURN_IN_MEMORY_MIB:-8192}")
if [ "${DEVICE_RUN_CPU_ONLY:-0}" = 1 ]; then
  fixture=rehearsal-cpu
  memory=()
else
  model="$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n1)"
  count="$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | grep -c .)"
  fixture="real-$(printf '%s' "${model:-unknown-gpu}" | tr 'A-Z' 'a-z' | tr -cs 'a-z0-9' '-' | sed 's/^-//; s/-$//')-x${count}"
fi
"$python" -m verify burn-in --minutes "${DEVICE_RUN_BURN_IN_MINUTES:-2}" "${mode[@]}" \
  --framework torch --host "$host" --no-color "${memory[@]}" \
  --json "$out/$fixture.burn-in.json" --html "$out/$fixture.burn-in.html" \
  2>&1 | tee "$out/burn-in.txt"
status=${PIPESTATUS[0]}
echo "burn-in exit code: $status ($out/$fixture.burn-in.json)" | tee -a "$out/device.txt"
# The exit code of the suite is data here (a failing floor is a finding, not a broken run).
exit 0
