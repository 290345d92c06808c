#!/usr/bin/env bash
# device_run.sh NAME LSTM_ABLATE_ARGS...: on the lent GPU machine, one multirun with every job at once on GPU 0
# (independent jobs only: a check's seeds, not a tuned sweep's chain), returned as $OUT/NAME.tgz (checkpoints left
# out) with its log. Run through the device tool from main's root, the tree sent without reports/ (64 MiB limit):
#   git sparse-checkout set --no-cone '/*' '!/reports/'
#   run(command="bash sweeps/device_run.sh NAME task=... seed=1,2,...,10", carry=[".whl"], timeout_s=590)
#   git sparse-checkout disable; tar xzf /work/.device/<n>/NAME.tgz -C /work/s19/checks
# The wheels: sweeps/device_wheels.sh, here, first. DEADLINE_S (default 535): SIGTERM to the jobs then, so that
# what ran comes back (cut jobs record `interrupted`).
set -uo pipefail
name=$1; shift
export PYTHONUNBUFFERED=1
t0=$(date +%s)
echo "git: $(git rev-parse HEAD 2>&1 | head -1)"; nvidia-smi -L; echo "cores: $(nproc)"
python3 -m pip install -q --no-index --no-deps --no-compile .whl/*.whl 2>&1 | grep -v -i warning | tail -3
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . 2>&1 | grep -v -i warning | tail -3
python3 -c "import torch, pytorch_lightning as pl, hydra, wandb, optuna, submitit; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" || exit 3
sweep=/tmp/$name
"$(dirname "$(command -v python3)")/lstm-ablate" -m "$@" trainer=gpu hydra/launcher=local hydra.launcher.tasks_per_node=1 \
  hydra.launcher.gpus_per_node=1 hydra.sweep.dir="$sweep" > /tmp/multirun.log 2>&1 &
pid=$!
deadline=$((t0 + ${DEADLINE_S:-535})); cut=0
while kill -0 $pid 2>/dev/null; do
  sleep 15
  echo "t=$(( $(date +%s) - t0 )) s, metrics rows: $(for f in "$sweep"/*/metrics.csv; do [ -f "$f" ] && printf '%s ' "$(wc -l < "$f")"; done)"
  if [ "$(date +%s)" -ge $deadline ] && [ $cut = 0 ]; then
    echo "deadline: SIGTERM"; cut=1; pkill -TERM -f "lstm-ablate -m|submitit.core._submit" || true
  fi
done
wait $pid; rc=$?
echo "multirun rc=$rc after $(( $(date +%s) - t0 )) s"; tail -5 /tmp/multirun.log
cp /tmp/multirun.log "$OUT/"
tar czf "$OUT/$name.tgz" --exclude='*.ckpt' -C /tmp "$name"
exit $rc
