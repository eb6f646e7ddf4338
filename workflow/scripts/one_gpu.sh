#!/usr/bin/env bash
# one_gpu.sh COMMAND [ARG ...]: run COMMAND on one GPU of this machine that no other training holds.
#
# Snakemake's `gpu` resource caps how many trainings run at once (--resources gpu=N) but does not
# say which GPU each one takes: without this, every training would land on GPU 0. Each GPU has a
# lock file; COMMAND runs with CUDA_VISIBLE_DEVICES set to the first GPU whose lock it could take
# and keeps that lock, through an inherited file descriptor, until it and its children exit.
# The GPUs are those of CUDA_VISIBLE_DEVICES if set, else every GPU `nvidia-smi -L` lists.
# Under Slurm the allocation already pins the job's GPUs, so COMMAND runs as it is.
set -euo pipefail

if [[ -n "${SLURM_JOB_ID:-}" ]]; then
  exec "$@"
fi
if [[ -n "${CUDA_VISIBLE_DEVICES:-}" ]]; then
  IFS=, read -ra gpus <<< "$CUDA_VISIBLE_DEVICES"
else
  mapfile -t gpus < <(nvidia-smi -L 2>/dev/null | sed -n 's/^GPU \([0-9][0-9]*\):.*/\1/p')
fi
if [[ ${#gpus[@]} -eq 0 ]]; then
  exec "$@"  # no GPU listed: nothing to choose; dqn.train says that CUDA is missing
fi
lock_dir="${DQN_GPU_LOCK_DIR:-${TMPDIR:-/tmp}/dqn-gpu-locks-$(id -u)}"
mkdir -p "$lock_dir"
# With no free GPU, wait for one: without --resources gpu=N, Snakemake may start more trainings
# than there are GPUs, and the extra ones queue here, so at most one training runs per GPU.
# DQN_GPU_WAIT_SECONDS bounds the wait (default: forever).
waited=0
limit="${DQN_GPU_WAIT_SECONDS:-}"
while :; do
  for gpu in "${gpus[@]}"; do
    exec {lock_fd}>"$lock_dir/gpu-${gpu// /}.lock"
    if flock --nonblock "$lock_fd"; then
      export CUDA_VISIBLE_DEVICES="${gpu// /}"
      exec "$@"
    fi
    exec {lock_fd}>&-
  done
  if [[ ${#gpus[@]} -eq 0 ]] || [[ -n "$limit" && "$waited" -ge "$limit" ]]; then
    echo "one_gpu.sh: every GPU (${gpus[*]:-none}) is held by another training;" \
      "give snakemake --resources gpu=N with N at most ${#gpus[@]}" >&2
    exit 1
  fi
  if [[ "$waited" -eq 0 ]]; then
    echo "one_gpu.sh: every GPU (${gpus[*]}) is held by another training; waiting for one" >&2
  fi
  sleep 1
  waited=$((waited + 1))
done
