#!/usr/bin/env bash
# tree.sh COMMIT: print the path of a checkout of COMMIT with its own .venv (torch CPU build) and the
# C++ layer compiled, making it first if needed (/work/trees/<commit>). A study runs from one fixed
# commit, so main can move on while its sweeps run; a queue item starts with `cd $(bash tree.sh C)`.
set -euo pipefail
commit=$1
repo=${REPO:-/work/main}
tree=/work/trees/$commit
mkdir -p /work/trees
exec 9> "/work/trees/.$commit.lock"
flock 9                                   # two workers asking for the same tree: one makes it
# the build folder is not a change to the code: commits before .gitignore named it would record every job
# as dirty (`git status --porcelain` lists untracked files); info/exclude is shared by every worktree
exclude="$(git -C "$repo" rev-parse --git-common-dir)/info/exclude"
grep -qx '.ext/' "$exclude" 2>/dev/null || { mkdir -p "$(dirname "$exclude")"; echo '.ext/' >> "$exclude"; }
if [ ! -e "$tree/.venv/.installed-stamp" ]; then
  [ -d "$tree" ] || git -C "$repo" worktree add --detach "$tree" "$commit" >&2
  make -C "$tree" setup >&2
  # built where the queue items look for it (each exports LSTM_ABLATION_EXT_DIR=$PWD/.ext)
  (cd "$tree" && LSTM_ABLATION_EXT_DIR="$tree/.ext" .venv/bin/python -c "from lstm_ablation import fast; assert fast.extension() is not None") >&2
fi
echo "$tree"
