#!/usr/bin/env bash
# stop.sh: end a session's study work cleanly. Stops the workers (queue/STOP), sends SIGTERM to each
# running sweep and its jobs (they write `interrupted` records and exit), waits for them, puts each
# cut item back in the queue with ` resume=<its sweep dir>` (once), then packs every sweep below the
# work root and the queue into sweeps/ (carry.py pack). Then commit sweeps/. Work root: $WORK_ROOT (default /work/s19).
set -euo pipefail
root=${WORK_ROOT:-/work/s19}
here=$(cd "$(dirname "$0")" && pwd)
touch "$root/queue/STOP"
mine="lstm-ablate -m .*hydra.sweep.dir=$root/|submitit.core._submit $root/"   # this work root's sweeps and jobs only
pkill -TERM -f "$mine" || true
for _ in $(seq 1 120); do pgrep -f "$mine" > /dev/null || break; sleep 1; done
pgrep -f "$mine" > /dev/null && { echo "stop.sh: sweeps still running after 120 s" >&2; exit 1; }
sleep 2                                     # the workers log the end and move the items to done/
for item in "$root"/done/* "$root"/running/*; do
  [ -e "$item" ] || continue
  dir=$(grep -o 'hydra.sweep.dir=[^ ]*' "$item" | head -1 | cut -d= -f2)
  [ -n "$dir" ] && [ -e "$dir/multirun.yaml" ] || continue
  # cut by this stop (rc 143, or no end logged yet) goes back; one that ended on its own (0, or a failure
  # to look at: its log is logs/<item>.log) stays in done/
  name=$(basename "$item"); name=${name%.[AB]}
  rc=$( (grep " end $name rc=" "$root/queue_times.log" 2>/dev/null || true) | tail -1 | sed 's/.*rc=//')   # none: the worker itself was killed
  [ -z "$rc" ] || [ "$rc" = 143 ] || continue
  grep -q "resume=" "$item" || sed -i '$ s|$| resume='"$dir"'|' "$item"
  mv "$item" "$root/queue/$name"
done
rm -f "$root/queue/STOP"
bash "$here/checkpoint.sh"
