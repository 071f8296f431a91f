#!/bin/sh
# turbovid-fleetsim end to end on the committed workloads (few jobs): run (text and JSON), trace
# and read back, sweep with an SVG that must be well-formed XML, and a bad flag's error.
# Usage: fleetsim_cli_test.sh TURBOVID_FLEETSIM SOURCE_DIR
set -eu
sim=$1
src=$2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cd "$src"
w=bench/fleetsim/workloads
"$sim" run --workload $w/mixed-bursty.yaml --jobs 2000 --fleet h100=6,rtx5090=6 \
  --autoscale-sample 60 > "$out/run.txt"
grep -q "2000 completed" "$out/run.txt"
grep -q "^rtx5090 " "$out/run.txt"
"$sim" run --workload $w/batch-trace.csv --jobs 500 --fleet h100=2,rtx5090=4 --json \
  > "$out/run.json"
/usr/bin/python3 -c "import json,sys; r=json.load(open(sys.argv[1])); \
assert r['completed'] == 500 and len(r['classes']) == 2, r" "$out/run.json"
"$sim" trace --workload $w/interactive-1.3b.yaml --jobs 300 --out "$out/t.csv"
"$sim" run --workload "$out/t.csv" --fleet h100=2 | grep -q "300 completed"
"$sim" sweep --workload $w/interactive-1.3b.yaml --jobs 1000 --slo 10 \
  --max rtx5090=24,h100=8 --grid 3 --svg "$out/f.svg" > "$out/sweep.txt"
grep -q "cheapest mix meeting the SLO" "$out/sweep.txt"
/usr/bin/python3 -c "import sys, xml.etree.ElementTree as E; \
r=E.parse(sys.argv[1]).getroot(); assert r.tag.endswith('svg'), r.tag; \
assert any(e.tag.endswith('polyline') for e in r.iter())" "$out/f.svg"
if "$sim" run --workload $w/interactive-1.3b.yaml --fleet h100=x 2> "$out/err.txt"; then
  echo "a bad --fleet was accepted" >&2
  exit 1
fi
grep -q -- "--fleet" "$out/err.txt"
echo "fleetsim_cli: ok"
