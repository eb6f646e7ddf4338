#!/usr/bin/env bash
# Stop the one-node Slurm cluster that start_cluster.sh started: cancel its jobs, then end each
# daemon by the PID recorded at start (never by name), newest first, waiting for each process to
# exit. The state folder (configs, job history, database) is kept for the next start.
#
# Environment: DQN_SLURM_DIR, the state folder [/var/lib/dqn-slurm]
set -uo pipefail

STATE=${DQN_SLURM_DIR:-/var/lib/dqn-slurm}
PIDS=$STATE/pids
export SLURM_CONF=$STATE/etc/slurm.conf
EXIT_WAIT_SECONDS=30

source "$(dirname "${BASH_SOURCE[0]}")/pids.sh"

# Jobs would outlive slurmd (their slurmstepd is a separate process): cancel them first, while
# slurmctld can still do it, and give them KillWait to end.
if alive_pid slurmctld >/dev/null && [[ -n $(squeue -h -o %i 2>/dev/null) ]]; then
    scancel --full $(squeue -h -o %i) 2>/dev/null
    deadline=$((SECONDS + 40))
    while [[ -n $(squeue -h -o %i 2>/dev/null) ]] && ((SECONDS < deadline)); do sleep 0.5; done
fi

status=0
for name in slurmd slurmctld slurmdbd mariadbd munged; do
    pid=$(alive_pid "$name") || { rm -f "$PIDS/$name"; continue; }
    kill -TERM "$pid"
    deadline=$((SECONDS + EXIT_WAIT_SECONDS))
    while [[ -d /proc/$pid ]] && [[ $(cat /proc/"$pid"/stat 2>/dev/null | awk '{print $3}') != Z ]]; do
        if ((SECONDS >= deadline)); then
            echo "stop_cluster.sh: $name (PID $pid) did not exit after SIGTERM; sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null
            status=1
            sleep 0.5
            break
        fi
        sleep 0.2
    done
    rm -f "$PIDS/$name"
done
exit $status
