# common.sh - what bench/run and bench/h2 share: stopping what they
# started (by PID only), CPU time of processes and CPUs, memory of
# processes, waiting for quiet CPUs. Sourced, not run.
#
# The caller defines log() and sets TMP, CLK_TCK, SERVER_CPU, CLIENT_CPU,
# QUIET_WAIT and MAX_OTHER before calling what uses them.

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

alive() {   # alive PID: exists and is not a zombie
    local st
    st=$(awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "$st" != Z ]
}

stop_pid() {   # stop_pid PID [SIGNAL]: signal, wait up to 5 s, then SIGKILL
    local pid=$1 sig=${2:-TERM} i
    if alive "$pid"; then
        kill "-$sig" "$pid" 2>/dev/null || true
        for i in $(seq 50); do
            alive "$pid" || break
            sleep 0.1
        done
        if alive "$pid"; then
            log "pid $pid did not stop on SIG$sig; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true    # reap it if it is our child
}

stop_server() {   # stop_server MASTER_PID: the master, then any child it left
    local master=$1 kids k comm
    [ -n "$master" ] || return 0
    kids=$(pgrep -P "$master" 2>/dev/null || true)
    comm=$(cat "/proc/$master/comm" 2>/dev/null || true)
    stop_pid "$master" TERM
    for k in $kids; do
        # a worker (h2o: its key process) that outlived its master
        if [ -n "$comm" ] && [ "$(cat "/proc/$k/comm" 2>/dev/null)" = "$comm" ]; then
            stop_pid "$k" KILL
        fi
    done
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

server_pids() {   # server_pids MASTER: the master and its children
    echo "$1"
    pgrep -P "$1" || true
}

cpu_ticks() {   # cpu_ticks PID...: sum of utime+stime (clock ticks), all threads
    local p total=0 stat f
    for p in "$@"; do
        stat=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        read -r -a f <<<"${stat##*) }"     # comm may hold spaces: cut after ')'
        total=$((total + f[11] + f[12]))   # f[0] is field 3: utime 14, stime 15
    done
    echo "$total"
}

cpu_stat() {   # cpu_stat CPU: "busy total" ticks of one CPU from /proc/stat
    # busy = everything but idle and iowait: a process's utime+stime also
    # holds the softirq work done in its context (the loopback's TCP)
    awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat
}

CHILD_TICKS=0
child_ticks() {   # child_ticks: sets CHILD_TICKS, the CPU time of this shell's
    local t       # reaped children (call it directly, not in $(...))
    times >"$TMP/times"
    t=$(tail -1 "$TMP/times")
    CHILD_TICKS=$(awk -v t="$t" -v hz="$CLK_TCK" 'BEGIN {
        n = split(t, a, " "); s = 0
        for (i = 1; i <= n; i++) {
            split(a[i], b, "m"); sub(/s$/, "", b[2]); s += b[1] * 60 + b[2]
        }
        printf "%d\n", s * hz + 0.5 }')
}

other_load() {   # other_load BUSY0 TOTAL0 BUSY1 TOTAL1 OWN: % of the CPU used by others
    awk -v b0="$1" -v t0="$2" -v b1="$3" -v t1="$4" -v own="$5" 'BEGIN {
        t = t1 - t0; o = (b1 - b0) - own; if (o < 0) o = 0
        printf "%.1f\n", (t > 0 ? 100 * o / t : 0) }'
}

mem_kb() {   # mem_kb FIELD PID...: sum of FIELD (kB) from smaps_rollup
    local field=$1; shift
    local p total=0 v
    for p in "$@"; do
        v=$(awk -v f="$field:" '$1 == f { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null || true)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

wait_quiet() {   # wait_quiet: until both CPUs are (nearly) idle, at most QUIET_WAIT s
    local i a0 a1 b0 b1 sa sb
    for i in $(seq $((QUIET_WAIT * 2 + 1))); do
        read -r -a a0 <<<"$(cpu_stat "$SERVER_CPU")"
        read -r -a b0 <<<"$(cpu_stat "$CLIENT_CPU")"
        sleep 0.5
        read -r -a a1 <<<"$(cpu_stat "$SERVER_CPU")"
        read -r -a b1 <<<"$(cpu_stat "$CLIENT_CPU")"
        sa=$(other_load "${a0[0]}" "${a0[1]}" "${a1[0]}" "${a1[1]}" 0)
        sb=$(other_load "${b0[0]}" "${b0[1]}" "${b1[0]}" "${b1[1]}" 0)
        if awk -v a="$sa" -v b="$sb" -v m="$MAX_OTHER" 'BEGIN { exit !(a <= m && b <= m) }'; then
            return 0
        fi
        [ "$i" != 1 ] || log "waiting for the CPUs to be quiet (CPU $SERVER_CPU ${sa}% busy, CPU $CLIENT_CPU ${sb}%)"
    done
    log "warning: CPUs still busy after ${QUIET_WAIT}s (CPU $SERVER_CPU ${sa}%, CPU $CLIENT_CPU ${sb}%); measuring anyway"
}
