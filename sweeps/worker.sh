#!/usr/bin/env bash
# worker.sh NAME: take queue items in name order (atomic mv), run each, log start/end/rc.
# Stop: touch queue/STOP (the running item finishes first; SIGTERM its lstm-ablate to cut it).
cd /work/s19
W=$1
while true; do
  [ -e queue/STOP ] && { echo "$(date -u +%FT%TZ) $W stop" >> queue_times.log; exit 0; }
  item=$(ls queue | grep -v '^STOP$' | sort | head -1)
  [ -z "$item" ] && { echo "$(date -u +%FT%TZ) $W empty" >> queue_times.log; exit 0; }
  mv "queue/$item" "running/$item.$W" 2>/dev/null || continue
  echo "$(date -u +%FT%TZ) $W start $item" >> queue_times.log
  bash "running/$item.$W" > "logs/$item.log" 2>&1
  rc=$?
  echo "$(date -u +%FT%TZ) $W end $item rc=$rc" >> queue_times.log
  mv "running/$item.$W" "done/$item"
done
