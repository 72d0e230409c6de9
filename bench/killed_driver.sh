#!/bin/bash
# What a kill -9 of an analyze driver leaves behind on an embedded Ray, and whether a rerun at once
# works (docs/PIPELINE.md, "A killed driver"). Watches only the processes this driver started.
#
#   bash bench/killed_driver.sh [VIDEO ...]      (default: two of the shared clips)
set -u
cd "$(dirname "$0")/.."
videos=("$@")
[ ${#videos[@]} -eq 0 ] && videos=(../shared/data/videos/single_face.mp4 ../shared/data/videos/WolfgangLanger_Pexels.mp4)
out=$(mktemp -d)
run() { python jobs/analyze_lectures.py --input "${videos[@]}" --output "$out/records" --quiet; }
descendants() {
  local kid
  for kid in $(ps -eo pid=,ppid= | awk -v p="$1" '$2==p{print $1}'); do echo "$kid"; descendants "$kid"; done
}
name() { ps -o args= -p "$1" 2>/dev/null | sed -E 's#^\S*/(python[0-9.]*|[a-z_]+) (-u )?##; s#\S*site-packages/ray/##' | cut -c1-40; }

python jobs/analyze_lectures.py --input "${videos[@]}" --output "$out/records" --quiet >"$out/first.log" 2>&1 &
driver=$!  # the python process itself: Ray's processes are its children
for _ in $(seq 60); do  # until its raylet is up
  ps -eo ppid=,args= | awk -v p=$driver '$1==p' | grep -q raylet && break
  sleep 1
done
sleep 5  # work under way
pids=$(descendants $driver)
echo "driver $driver started:"; for p in $pids; do echo "  $p $(name "$p")"; done
kill -9 $driver
t0=$(date +%s)
sleep 1
echo "rerun, 1 s after the kill:"
run 2>&1 | grep -E "^run |^records" | sed 's/^/  /'
echo "  exit ${PIPESTATUS[0]}"
while :; do
  alive=""
  for p in $pids; do
    [ -n "$(ps -o stat= -p "$p" 2>/dev/null | grep -v Z)" ] && alive="$alive $p[$(name "$p")]"
  done
  echo "+$(($(date +%s) - t0)) s after the kill, still running:${alive:- none}"
  [ -z "$alive" ] && break
  sleep 5
done
rm -rf "$out"
