#!/usr/bin/env bash
# checkpoint.sh: pack every sweep below the work root and the queue into sweeps/ while the workers run on
# (the items running now go into the packed queue with resume=<their sweep dir>; their jobs without a record
# yet are left out and run again). Then commit sweeps/: a session or machine that ends before stop.sh loses
# only what ran since. Work root: $WORK_ROOT (default /work/s19).
set -euo pipefail
root=${WORK_ROOT:-/work/s19}
here=$(cd "$(dirname "$0")" && pwd)
# every sweep below the work root, finished ones too: a study's cells travel together until its report lands
mapfile -t sweeps < <(find "$root" -name multirun.yaml -not -path '*/.submitit/*' -printf '%h\n' | sort)
python3 "$here/carry.py" pack "${sweeps[@]}"
