#!/usr/bin/env bash
# The real-GPU proof of the verify suite (issue 7), prepared to run in ONE call on a lent GPU
# machine that has PyTorch and nvidia-ml-py but no MXNet and no package index:
#
#   run(command="bash tests/gpu/device-run.sh", carry=[".venv/lib/python3.11/site-packages/yaml"])
#
# It records a snapshot, runs the NVML checks and the torch workload checks on every GPU, and
# leaves the JSON/JUnit reports and the snapshot under $OUT (or ./artifacts/gpu when unset).
# DEVICE_RUN_CPU_ONLY=1 rehearses the same script on a machine without a GPU.
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
"$python" -m verify "${mode[@]}" --framework torch --host "$host" --no-color \
  --record-snapshot "$out/snapshot.json" --json "$out/report.json" --junit "$out/report.junit.xml" \
  2>&1 | tee "$out/terminal.txt"
status=${PIPESTATUS[0]}
echo "verify exit code: $status" | tee -a "$out/device.txt"
# The exit code of the suite is data here (a failing floor is a finding, not a broken run).
exit 0
