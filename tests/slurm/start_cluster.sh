#!/usr/bin/env bash
# Start a real one-node Slurm cluster on this machine for the Slurm tests: munged, MariaDB,
# slurmdbd, slurmctld and slurmd, each started here (no systemd needed) with its PID recorded
# under the state folder, so that stop_cluster.sh ends exactly these processes.
#
# Needs root (it runs the daemons) and Debian's Slurm packages (bash .ci/install-system-deps).
# Idempotent: a second run finds the recorded daemons alive and only waits for the node.
#
# Environment (all optional):
#   DQN_SLURM_DIR        state folder (configs, spool, database, logs, PIDs) [/var/lib/dqn-slurm]
#   DQN_SLURM_CPUS       CPUs the node advertises [16, or the machine's if more]
#   DQN_SLURM_MEMORY_MB  memory the node advertises [64000, or the machine's if more]
#   DQN_SLURM_GPUS       GPUs the node advertises [2]; backed by character devices made here,
#                        because Slurm drops a GPU without a device file
# The node advertises a typical GPU node whatever the machine: jobs then run side by side on a
# small CI machine and a profile's requests are accepted as on a real cluster (Slurm here
# enforces no CPU binding and no memory limit, so the advertised resources are bookkeeping).
# Partitions sharing the node: cpu (the default) and gpu, as on a typical cluster, and urgent,
# whose jobs preempt (requeue) the others'.
#
# The configs live in $DQN_SLURM_DIR/etc; /etc/slurm/slurm.conf is made a link to slurm.conf there
# (Slurm's default path, which jobs' nested srun needs), so sinfo, sbatch and sacct need no setup.
set -euo pipefail

STATE=${DQN_SLURM_DIR:-/var/lib/dqn-slurm}
PARTITIONS=(cpu gpu)
CLUSTER=dqn
WAIT_SECONDS=60

die() { echo "start_cluster.sh: $*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "needs root: it runs the Slurm daemons; run it with sudo"

check_packages() {
    local cmd
    for cmd in munged mariadbd mariadb-install-db slurmdbd slurmctld slurmd sbatch sacct; do
        command -v "$cmd" >/dev/null || die "$cmd is missing: install the Slurm packages with: bash .ci/install-system-deps"
    done
}

check_packages

NODE=$(hostname -s)
read -r REAL_CPUS REAL_MEMORY_MB < <(slurmd -C | awk '
    /^NodeName=/ { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
                   print v["CPUs"], v["RealMemory"] }')
CPUS=${DQN_SLURM_CPUS:-$((REAL_CPUS > 16 ? REAL_CPUS : 16))}
MEMORY_MB=${DQN_SLURM_MEMORY_MB:-$((REAL_MEMORY_MB > 64000 ? REAL_MEMORY_MB : 64000))}
GPUS=${DQN_SLURM_GPUS:-2}
[[ $CPUS =~ ^[1-9][0-9]*$ ]] || die "DQN_SLURM_CPUS must be a positive integer, got '$CPUS'"
[[ $MEMORY_MB =~ ^[1-9][0-9]*$ ]] || die "DQN_SLURM_MEMORY_MB must be a positive integer, got '$MEMORY_MB'"
[[ $GPUS =~ ^[0-9]+$ ]] || die "DQN_SLURM_GPUS must be a non-negative integer, got '$GPUS'"

ETC=$STATE/etc
PIDS=$STATE/pids
LOG=$STATE/log
# munged serves the default socket: Slurm's client commands talking to slurmdbd ignore
# AuthInfo=socket=... in 22.05. A munged already serving it (same key) is used as is.
MUNGE_RUN=/run/munge
MUNGE_SOCKET=$MUNGE_RUN/munge.socket.2
DB_DIR=$STATE/mariadb
DB_SOCKET=$DB_DIR/mysqld.sock
export SLURM_CONF=$ETC/slurm.conf

# The order daemons start in; stop_cluster.sh stops them in reverse.
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)

source "$(dirname "${BASH_SOURCE[0]}")/pids.sh"

# True while a process exists and is not a zombie (its program may still be exec'ing).
running() { [[ -r /proc/$1/stat ]] && [[ $(awk '{print $3}' /proc/"$1"/stat) != Z ]]; }

any_alive() {
    local name
    for name in "${DAEMONS[@]}"; do alive_pid "$name" >/dev/null && return 0; done
    return 1
}

# Runs a daemon in the foreground of its own session, detached from this script's
# stdin/stdout (a caller capturing our output must not wait on the daemons), and records its PID.
STARTED=()
launch() {
    local name=$1; shift
    if alive_pid "$name" >/dev/null; then return; fi
    setsid "$@" </dev/null >>"$LOG/$name.out" 2>&1 &
    echo $! >"$PIDS/$name"
    STARTED+=("$name")
}

# Waits until a check passes for a daemon launched here; fails at once if the daemon died.
wait_for() {
    local name=$1 logfile=$2; shift 2
    local deadline=$((SECONDS + WAIT_SECONDS))
    until "$@" >/dev/null 2>&1; do
        running "$(<"$PIDS/$name")" || die "$name exited at start; see $logfile and $LOG/$name.out"
        ((SECONDS < deadline)) || die "$name not ready after ${WAIT_SECONDS} s; see $logfile"
        sleep 0.3
    done
}

write_configs() {
    mkdir -p "$ETC" "$PIDS" "$LOG" "$STATE/ctld" "$STATE/slurmd" "$STATE/dev"
    chmod 755 "$STATE"

    local gres_node="" gres_types=""
    : >"$ETC/gres.conf"
    if ((GPUS > 0)); then
        local i
        for ((i = 0; i < GPUS; i++)); do
            # Same device numbers as /dev/null: a harmless file for the job's GPU binding.
            [[ -c $STATE/dev/gpu$i ]] || mknod "$STATE/dev/gpu$i" c 1 3
        done
        gres_types="GresTypes=gpu"
        gres_node="Gres=gpu:$GPUS"
        echo "NodeName=$NODE Name=gpu File=$STATE/dev/gpu[0-$((GPUS - 1))]" >"$ETC/gres.conf"
    fi

    cat >"$ETC/slurm.conf" <<EOF
# Written by tests/slurm/start_cluster.sh; rewritten on every cold start.
ClusterName=$CLUSTER
# Addresses given, not looked up: the host name may not resolve in a container.
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups without systemd: plain process tracking, no CPU binding (the node may advertise
# more CPUs than the machine has).
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
ReturnToService=2
MpiDefault=none
MailProg=/bin/true
SwitchType=switch/none
# A job without --mem would otherwise take all of the node's memory and run alone.
DefMemPerCPU=1000
KillWait=30
MinJobAge=300
$gres_types
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageTRES=gres/gpu
# sacct shows each job's --comment (Snakemake writes the rule and wildcards there).
AccountingStoreFlags=job_comment
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS Boards=1 SocketsPerBoard=1 CoresPerSocket=$CPUS ThreadsPerCore=1 RealMemory=$MEMORY_MB $gres_node State=UNKNOWN
PartitionName=${PARTITIONS[0]} Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
PartitionName=${PARTITIONS[1]} Nodes=$NODE Default=NO MaxTime=INFINITE State=UP
# A job in urgent preempts jobs of the other partitions, which Slurm requeues (as a cluster
# with PreemptMode=REQUEUE does), e.g.: sbatch -p urgent -c $CPUS --mem 1000 --wrap 'sleep 10'
PartitionName=urgent Nodes=$NODE Default=NO MaxTime=INFINITE State=UP PriorityTier=2
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
EOF

    # slurmdbd refuses a config readable by others (it holds the database password).
    (umask 077 && cat >"$ETC/slurmdbd.conf" <<EOF
# Written by tests/slurm/start_cluster.sh.
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
PidFile=$STATE/slurmdbd.pid
LogFile=$LOG/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageLoc=slurm_acct_db
StorageUser=slurm
StoragePass=slurmdbd
EOF
    )
}

# Snakemake's job step drops SLURM_CONF from the environment of the srun it runs inside each job,
# so the config must also be where Slurm looks by default.
link_default_config() {
    local default=/etc/slurm/slurm.conf
    if [[ -L $default && $(readlink "$default") == "$ETC/slurm.conf" ]]; then return; fi
    [[ ! -e $default && ! -L $default ]] || die "$default exists and is not this test cluster's; this machine has a Slurm config of its own, which the test cluster would replace"
    mkdir -p /etc/slurm
    ln -s "$ETC/slurm.conf" "$default"
}

munge_ok() { munge -n --socket="$MUNGE_SOCKET" | unmunge --socket="$MUNGE_SOCKET"; }
db() { mariadb --no-defaults --socket="$DB_SOCKET" -u root "$@"; }
slurmctld_up() { scontrol ping | grep -q UP; }
node_state() { sinfo -h -n "$NODE" -o %T 2>/dev/null | head -1; }
node_ready() { [[ $(node_state) =~ ^(idle|mixed|allocated|completing)$ ]]; }

if ! any_alive; then
    write_configs
fi
mkdir -p "$PIDS" "$LOG"
link_default_config

if ! munge_ok >/dev/null 2>&1; then
    [[ -s /etc/munge/munge.key ]] || die "/etc/munge/munge.key is missing; create it with: mungekey --create && chown munge: /etc/munge/munge.key"
    install -d -o munge -g munge -m 755 "$MUNGE_RUN"
    install -d -o munge -g munge -m 700 "$STATE/munge"
    launch munged setpriv --reuid=munge --regid=munge --init-groups \
        munged --foreground --socket="$MUNGE_SOCKET" --pid-file="$MUNGE_RUN/munged.pid" \
        --log-file="$STATE/munge/munged.log" --seed-file="$STATE/munge/munged.seed"
    wait_for munged "$STATE/munge/munged.log" munge_ok
fi

# MariaDB runs as user mysql: its socket, PID file and log live in a folder that user owns.
install -d -o mysql -g mysql -m 755 "$DB_DIR"
if [[ ! -d $DB_DIR/data/mysql ]]; then
    rm -rf "$DB_DIR/data"
    install -d -o mysql -g mysql -m 700 "$DB_DIR/data"
    mariadb-install-db --no-defaults --user=mysql --datadir="$DB_DIR/data" \
        --auth-root-authentication-method=socket --skip-test-db >"$LOG/mariadb-install.out" 2>&1 \
        || die "mariadb-install-db failed; see $LOG/mariadb-install.out"
fi
# Unix socket only: nothing listens on the network.
launch mariadbd mariadbd --no-defaults --user=mysql --datadir="$DB_DIR/data" \
    --socket="$DB_SOCKET" --skip-networking --pid-file="$DB_DIR/mariadbd.pid" \
    --log-error="$DB_DIR/mariadbd.log" --innodb-lock-wait-timeout=900
wait_for mariadbd "$DB_DIR/mariadbd.log" mariadb-admin --no-defaults --socket="$DB_SOCKET" -u root ping
db -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
       CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmdbd';
       GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"

# slurmdbd reads slurmdbd.conf beside $SLURM_CONF. libmariadb takes the socket path from
# MYSQL_UNIX_PORT: slurmdbd.conf has no socket setting.
launch slurmdbd env MYSQL_UNIX_PORT="$DB_SOCKET" slurmdbd -D
wait_for slurmdbd "$LOG/slurmdbd.log" sacctmgr -n list cluster
if [[ -z $(sacctmgr -n -P list cluster format=cluster where name=$CLUSTER) ]]; then
    sacctmgr -i add cluster "$CLUSTER" >/dev/null
fi

launch slurmctld slurmctld -D -f "$SLURM_CONF"
wait_for slurmctld "$LOG/slurmctld.log" slurmctld_up

launch slurmd slurmd -D -f "$SLURM_CONF" -N "$NODE"
deadline=$((SECONDS + WAIT_SECONDS))
until node_ready; do
    # A node left down or drained by an earlier, unclean stop is brought back.
    if [[ $(node_state) =~ ^(down|drained|draining)\*?$ ]]; then
        scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true
    fi
    ((SECONDS < deadline)) || die "node $NODE is '$(node_state)', not idle, after ${WAIT_SECONDS} s; see $LOG/slurmd.log and $LOG/slurmctld.log"
    sleep 0.3
done

# The last line says what this run started (a caller stops the cluster only if it started it).
echo "Slurm cluster '$CLUSTER' up: node $NODE ($(node_state)), partitions ${PARTITIONS[*]} (default ${PARTITIONS[0]}), state in $STATE"
echo "started: ${STARTED[*]:-nothing (already running)}"
