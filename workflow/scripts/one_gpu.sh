#!/usr/bin/env bash
# one_gpu.sh [--trainings-per-gpu N] COMMAND [ARG ...]: run COMMAND on a GPU of this machine that
# fewer than N other trainings hold (N = 1 by default: a GPU of its own).
#
# Snakemake's `gpu` resource caps how many trainings run at once (--resources gpu=N) but does not
# say which GPU each one takes: without this, every training would land on GPU 0. Each GPU has N
# lock files (places); COMMAND runs with CUDA_VISIBLE_DEVICES set to the GPU of the first place
# whose lock it could take, and keeps that lock, through an inherited file descriptor, until it
# and its children exit. Places are tried place by place across the GPUs (the first place of
# every GPU, then the second, ...), so trainings spread over the GPUs before they share one.
# The GPUs are those of CUDA_VISIBLE_DEVICES if set, else every GPU `nvidia-smi -L` lists.
# Under Slurm the allocation already pins the job's GPU, which its trainings share.
set -euo pipefail

per_gpu=1
if [[ "${1:-}" == "--trainings-per-gpu" ]]; then
  per_gpu="${2:-}"
  shift 2 || true
  if ! [[ "$per_gpu" =~ ^[1-9][0-9]*$ ]]; then
    echo "error: one_gpu.sh --trainings-per-gpu needs a whole number of at least 1, got '${per_gpu}'" >&2
    exit 2
  fi
fi
if [[ $# -eq 0 ]]; then
  echo "error: one_gpu.sh needs a command to run" >&2
  exit 2
fi
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
# With no free place, wait for one: without --resources gpu=N (and always with N trainings per GPU,
# whose trainings hold no `gpu` unit: see workflow/rules/common.smk), Snakemake may start more
# trainings than there are places, and the extra ones queue here, each holding a core, so at most
# N trainings run per GPU. DQN_GPU_WAIT_SECONDS bounds the wait (default: forever).
waited=0
limit="${DQN_GPU_WAIT_SECONDS:-}"
while :; do
  for ((place = 0; place < per_gpu; place++)); do
    for gpu in "${gpus[@]}"; do
      gpu="${gpu// /}"
      # The first place keeps the lock name of one training per GPU.
      name="gpu-${gpu}.lock"
      if [[ $place -gt 0 ]]; then name="gpu-${gpu}-place${place}.lock"; fi
      exec {lock_fd}>"$lock_dir/$name"
      if flock --nonblock "$lock_fd"; then
        export CUDA_VISIBLE_DEVICES="$gpu"
        exec "$@"
      fi
      exec {lock_fd}>&-
    done
  done
  if [[ -n "$limit" && "$waited" -ge "$limit" ]]; then
    advice="give snakemake --resources gpu=N with N at most ${#gpus[@]}"
    if [[ $per_gpu -gt 1 ]]; then advice="run at most $(( ${#gpus[@]} * per_gpu )) trainings at once"; fi
    echo "one_gpu.sh: every GPU (${gpus[*]}) already runs ${per_gpu} training(s); ${advice}" >&2
    exit 1
  fi
  if [[ "$waited" -eq 0 ]]; then
    echo "one_gpu.sh: every GPU (${gpus[*]}) already runs ${per_gpu} training(s); waiting for a place" >&2
  fi
  sleep 1
  waited=$((waited + 1))
done
