# Sourced by start_cluster.sh and stop_cluster.sh (which set PIDS, the folder of recorded PIDs).

# Prints the recorded PID of a daemon if that process is alive and is that program.
alive_pid() {
    local name=$1 pid
    [[ -f $PIDS/$name ]] || return 1
    pid=$(<"$PIDS/$name")
    [[ $pid =~ ^[0-9]+$ ]] && [[ -r /proc/$pid/comm ]] || return 1
    [[ $(</proc/"$pid"/comm) == "$name" ]] || return 1
    echo "$pid"
}
