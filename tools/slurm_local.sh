#!/usr/bin/env bash
# A throwaway single-node Slurm cluster on one Linux machine, for the worker's Slurm tests and for
# trying the Slurm launch mode by hand: munged, slurmctld and slurmd from Debian's packages
# (slurm-wlm, munge), each in the foreground under this script, with every file (config, state,
# spool, logs, munge key and socket) inside DIR. The node has fake GPUs (GRES files that are
# symlinks to /dev/null), so `--gres=gpu:N` jobs get CUDA_VISIBLE_DEVICES as on a real GPU node.
# Ports are picked free for each cluster, so several can run side by side.
#
#   slurm_local.sh DIR check          can this machine run one? (exit 0, else prints why, exit 77)
#   slurm_local.sh DIR up [GPUS]      writes the config and starts the daemons (default 2 GPUs);
#                                     returns once the node is idle in sinfo
#   slurm_local.sh DIR env            prints SLURM_CONF=... (clients need it in their environment)
#   slurm_local.sh DIR down           stops the daemons (TERM, then KILL after a deadline)
#
# Needs root (slurmd starts jobs as their user) and `apt-get install slurm-wlm munge`.
set -euo pipefail

die() { echo "slurm_local: $*" >&2; exit 1; }
[[ $# -ge 2 ]] || die "usage: slurm_local.sh DIR check|up [GPUS]|env|down"
dir=$1 cmd=$2
shift 2

check() {
  [[ $(id -u) -eq 0 ]] || { echo "slurm_local: needs root to start slurmd (running as uid $(id -u))"; exit 77; }
  local tool
  for tool in slurmctld slurmd munged mungekey sbatch squeue sinfo scontrol; do
    command -v "$tool" >/dev/null || { echo "slurm_local: $tool is not installed (apt-get install slurm-wlm munge)"; exit 77; }
  done
}

# Alive: the process exists and is not a zombie nobody has reaped yet.
alive() {
  local p=$1 state
  [[ -n $p ]] && kill -0 "$p" 2>/dev/null || return 1
  state=$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null || echo Z)
  [[ $state != Z ]]
}

# A TCP port no socket uses (listening, connected or closing), starting from a number of this
# cluster's own below the kernel's ephemeral range, so that no outgoing connection takes it between
# this check and the daemon's bind.
free_port() {
  local port=$1
  while ss -Htan "sport = :$port" | grep -q .; do port=$((port + 1)); done
  echo "$port"
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local limit=$1 what=$2
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      echo "slurm_local: $what did not happen within ${limit}s; logs in $dir/log" >&2
      tail -n 20 "$dir"/log/*.log >&2 || true
      return 1
    fi
    for p in "$dir"/run/*.pid; do
      # slurmctld and slurmd run in the foreground under the pids we wrote ourselves; the pid files
      # they write can be read half written, naming a process that never was.
      [[ $p == */slurmctld.daemon.pid || $p == */slurmd.daemon.pid ]] && continue
      # A daemon's own pid file can be read while it is still empty: only a pid that is gone counts.
      local pid
      pid=$(cat "$p" 2>/dev/null || true)
      [[ -n $pid ]] || continue
      alive "$pid" || { echo "slurm_local: $(basename "$p" .pid) died; its log:" >&2; tail -n 30 "$dir/log/$(basename "$p" .pid).log" >&2; return 1; }
    done
    sleep 0.1
  done
}

node_idle() { [[ $(SLURM_CONF=$dir/slurm.conf timeout 5 sinfo -h -o '%T' 2>/dev/null) == idle ]]; }

up() {
  local gpus=${1:-2}
  [[ $gpus =~ ^[0-9]+$ && $gpus -le 8 ]] || die "up [GPUS]: 0 to 8 fake GPUs"
  [[ -e $dir/run/slurmctld.pid ]] && die "$dir already holds a cluster (run 'down' first)"
  mkdir -p "$dir"
  dir=$(realpath "$dir")
  rm -rf "$dir/state" "$dir/spool" "$dir/log" "$dir/run" "$dir/munge" "$dir/dev"
  mkdir -p "$dir/state" "$dir/spool" "$dir/log" "$dir/run" "$dir/munge" "$dir/dev"
  chmod 755 "$dir" "$dir/munge"  # munged wants its socket's folder open to all
  local tag base node cpus mem
  tag=$(printf '%s' "$dir" | sha256sum | cut -c1-6)
  base=$((12000 + 16#${tag:0:4} % 16000))
  local ctl_port dport
  ctl_port=$(free_port "$base")
  dport=$(free_port $((ctl_port + 1)))
  node="rv${tag}"
  cpus=$(nproc)
  mem=$(awk '/MemTotal/ {print int($2 / 1024 / 2)}' /proc/meminfo)
  local gres_line="" gres_conf="AutoDetect=off"
  if ((gpus > 0)); then
    local i
    for ((i = 0; i < gpus; i++)); do ln -sf /dev/null "$dir/dev/nvidia$i"; done
    gres_line="Gres=gpu:$gpus"
    gres_conf+=$'\n'"NodeName=$node Name=gpu File=$dir/dev/nvidia[0-$((gpus - 1))]"
  fi
  : >"$dir/plugstack.conf"
  printf '%s\n' "$gres_conf" >"$dir/gres.conf"
  cat >"$dir/slurm.conf" <<EOF
ClusterName=rv$tag
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmctldPort=$ctl_port
SlurmdPort=$dport
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.daemon.pid
SlurmdPidFile=$dir/run/slurmd.daemon.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
MailProg=/bin/true
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt
KillWait=2
OverTimeLimit=0
Waittime=0
ReturnToService=2
MinJobAge=600
PlugStackConfig=$dir/plugstack.conf
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem $gres_line State=UNKNOWN
PartitionName=gpu Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
  echo "$node" >"$dir/node"
  mungekey -c -k "$dir/munge/munge.key" 2>/dev/null || mungekey --create --keyfile="$dir/munge/munge.key"
  chmod 600 "$dir/munge/munge.key"
  munged --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" --pid-file="$dir/run/munged.daemon.pid" \
    --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munge.seed" --force
  wait_for 10 "munged's socket" test -S "$dir/munge/munge.socket"
  export SLURM_CONF=$dir/slurm.conf
  setsid slurmctld -D -f "$dir/slurm.conf" </dev/null >>"$dir/log/slurmctld.out" 2>&1 &
  echo $! >"$dir/run/slurmctld.pid"
  setsid slurmd -D -N "$node" -f "$dir/slurm.conf" </dev/null >>"$dir/log/slurmd.out" 2>&1 &
  echo $! >"$dir/run/slurmd.pid"
  wait_for 60 "the node becoming idle" node_idle
  echo "slurm_local: cluster rv$tag up in $dir (node $node, $cpus CPUs, $gpus fake GPUs, slurmctld port $ctl_port)"
}

stop_pid() {  # stop_pid PID: TERM, then KILL after 10 s
  local p=$1 deadline=$((SECONDS + 10))
  alive "$p" || return 0
  kill -TERM "$p" 2>/dev/null || true
  while alive "$p"; do
    if ((SECONDS >= deadline)); then kill -KILL "$p" 2>/dev/null || true; sleep 0.1; return 0; fi
    sleep 0.05
  done
}

down() {
  [[ -d $dir/run ]] || return 0
  local name
  # Jobs first, while the controller still answers; then the daemons.
  if [[ -e $dir/slurm.conf ]] && alive "$(cat "$dir/run/slurmctld.pid" 2>/dev/null || true)"; then
    SLURM_CONF=$dir/slurm.conf timeout 5 scancel --full -u "$(id -un)" 2>/dev/null || true
  fi
  for name in slurmd slurmctld; do
    [[ -e $dir/run/$name.pid ]] && stop_pid "$(cat "$dir/run/$name.pid")"
  done
  [[ -e $dir/run/munged.daemon.pid ]] && stop_pid "$(cat "$dir/run/munged.daemon.pid")"
  # Job steps slurmd started (slurmstepd) that outlived it.
  pkill -KILL -f "slurmstepd.*$(cat "$dir/node" 2>/dev/null || echo none)" 2>/dev/null || true
  rm -f "$dir"/run/*.pid
}

case $cmd in
  check) check ;;
  up) check >/dev/null || check; up "$@" ;;
  env) echo "SLURM_CONF=$(realpath "$dir")/slurm.conf" ;;
  down) down ;;
  *) die "unknown command '$cmd'" ;;
esac
