#!/usr/bin/env bash
# A test tailnet on one Linux machine: a controller host and N worker hosts, each its own network
# namespace, joined by veth pairs on a bridge in the controller's namespace, with 100.64.0.x
# addresses (the controller is 100.64.0.1, node I is 100.64.0.(10+I)). Real rayvault-worker
# processes listen on their node's tailnet address; the controller runs inside its namespace
# (`exec`). Nothing is added to the machine's own network namespace, so several tailnets can live
# side by side (each under its own folder) and tear down without a trace.
#
#   tailnet.sh DIR check                  can this machine make one? (exit 0, else prints why, exit 77)
#   tailnet.sh DIR up N                   makes the hosts (DIR is the tailnet's folder)
#   tailnet.sh DIR start I [WORKER ARGS]  starts a worker on node I (root DIR/nodeI), waits until it answers
#                                         (RAYVAULT_TAILNET_HIDE=FOLDER: the worker sees an empty tmpfs there)
#   tailnet.sh DIR stop I | kill I        SIGTERM (a service stop) | SIGKILL (a power cut)
#   tailnet.sh DIR freeze I | thaw I      SIGSTOP | SIGCONT: the worker answers nothing, then resumes
#   tailnet.sh DIR hup I                  SIGHUP: the worker reads its secrets file again
#   tailnet.sh DIR cut I | restore I      the node's link goes down (packets vanish) | comes back
#   tailnet.sh DIR slow I KBIT            the node's link keeps to KBIT kbit/s each way (kernel tbf queue)
#   tailnet.sh DIR delay I MS [LOSS%]     netem latency and loss (kernels with sch_netem only; exit 4)
#   tailnet.sh DIR clear I                removes slow/delay
#   tailnet.sh DIR pid I | addr I         the worker's pid | the node's address
#   tailnet.sh DIR exec CMD...            runs CMD on the controller host
#   tailnet.sh DIR node I CMD...          runs CMD on node I
#   tailnet.sh DIR down                   stops every worker and removes every host
#
# The worker is $RAYVAULT_WORKER_BIN (default: build/worker/rayvault-worker) and inherits this
# script's environment, secrets included. Needs root and iproute2.
set -euo pipefail

die() { echo "tailnet: $*" >&2; exit 1; }
[[ $# -ge 2 ]] || die "usage: tailnet.sh DIR COMMAND [ARGS] (see the top of this file)"
dir=$1 cmd=$2
shift 2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
worker_bin=${RAYVAULT_WORKER_BIN:-$here/build/worker/rayvault-worker}

name() { cat "$dir/name" 2>/dev/null || die "no tailnet in $dir (run 'up' first)"; }
[[ $cmd == up || $cmd == check || $cmd == down || -e $dir/name ]] || die "no tailnet in $dir (run 'up' first)"
ctl() { echo "$(name)c"; }
ns_of() { echo "$(name)n$1"; }
addr_of() { echo "100.64.0.$((10 + $1))"; }
need_node() {
  [[ ${1:-} =~ ^[0-9]+$ ]] || die "node number expected, got '${1:-}'"
  [[ -e /run/netns/$(ns_of "$1") ]] || die "no node $1 in this tailnet"
}
pid_of() { cat "$dir/node$1.pid" 2>/dev/null || true; }
# Alive: the process exists and is not a zombie nobody has reaped yet.
alive() {
  local p state
  p=$(pid_of "$1")
  [[ -n $p ]] && kill -0 "$p" 2>/dev/null || return 1
  state=$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null || echo Z)
  [[ $state != Z ]]
}

check() {
  [[ $(id -u) -eq 0 ]] || { echo "tailnet: needs root to make network namespaces (running as uid $(id -u))"; exit 77; }
  command -v ip >/dev/null || { echo "tailnet: iproute2's ip is not installed"; exit 77; }
  local probe="rvprobe$$"
  if ! ip netns add "$probe" 2>/dev/null; then
    echo "tailnet: this machine refuses 'ip netns add' (no network namespaces here)"
    exit 77
  fi
  local ok=1
  ip -n "$probe" link add b0 type bridge 2>/dev/null || ok=0
  ip -n "$probe" link add v0 type veth peer name v1 2>/dev/null || ok=0
  ip netns del "$probe"
  [[ $ok -eq 1 ]] || { echo "tailnet: this kernel cannot make bridges or veth pairs"; exit 77; }
}

up() {
  local n=${1:-}
  [[ $n =~ ^[0-9]+$ && $n -ge 1 && $n -le 200 ]] || die "up N: 1 to 200 nodes"
  mkdir -p "$dir"
  [[ -e $dir/name ]] && die "$dir already holds a tailnet (run 'down' first)"
  # Namespace names are short and unique to this tailnet, so tailnets never collide.
  local nm="rvt$(printf '%s' "$(realpath "$dir")" | sha256sum | cut -c1-8)"
  echo "$nm" >"$dir/name"
  echo "$n" >"$dir/nodes"
  local c="${nm}c"
  ip netns add "$c"
  ip -n "$c" link set lo up
  ip -n "$c" link add br0 type bridge
  ip -n "$c" link set br0 up
  ip -n "$c" addr add 100.64.0.1/24 dev br0
  local i
  for ((i = 1; i <= n; i++)); do
    local ns="${nm}n$i"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip -n "$c" link add "v$i" type veth peer name eth0 netns "$ns"
    ip -n "$c" link set "v$i" master br0 up
    ip -n "$ns" addr add "$(addr_of "$i")/24" dev eth0
    ip -n "$ns" link set eth0 up
  done
}

start() {
  local i=${1:-}
  need_node "$i"
  shift
  alive "$i" && die "node $i already runs a worker (pid $(pid_of "$i"))"
  [[ -x $worker_bin ]] || die "no worker binary at $worker_bin (set RAYVAULT_WORKER_BIN)"
  rm -f "$dir/node$i.ready"
  # `ip netns exec` becomes the worker, so $! is the worker's pid. RAYVAULT_TAILNET_HIDE names a
  # folder the worker must not see (another machine's files): its own mount namespace lays an
  # empty tmpfs over it (unshare and sh exec in turn, so the pid stays the worker's).
  local hide=()
  if [[ -n ${RAYVAULT_TAILNET_HIDE:-} ]]; then
    [[ -d $RAYVAULT_TAILNET_HIDE ]] || die "RAYVAULT_TAILNET_HIDE: no folder $RAYVAULT_TAILNET_HIDE"
    hide=(unshare --mount --propagation private sh -c 'mount -t tmpfs -o size=64k,mode=0755 rvhidden "$0" && exec "$@"'
          "$RAYVAULT_TAILNET_HIDE")
  fi
  ip netns exec "$(ns_of "$i")" "${hide[@]}" "$worker_bin" --host "$(addr_of "$i")" --port 8787 --root "$dir/node$i" \
    --worker-id "node$i" --ready-file "$dir/node$i.ready" "$@" >>"$dir/node$i.log" 2>&1 &
  echo $! >"$dir/node$i.pid"
  local deadline=$((SECONDS + 30))
  until [[ -s $dir/node$i.ready ]]; do
    alive "$i" || die "the worker on node $i exited: $(tail -n 3 "$dir/node$i.log")"
    ((SECONDS < deadline)) || die "the worker on node $i did not come up within 30 s"
    sleep 0.05
  done
}

signal() {
  local sig=$1 i=$2
  need_node "$i"
  local p
  p=$(pid_of "$i")
  [[ -n $p ]] || die "node $i has no worker"
  kill "-$sig" "$p" 2>/dev/null || true
}

reap() {  # waits (bounded) for node I's worker to be gone after a stop or kill
  local i=$1 deadline=$((SECONDS + 30))
  while alive "$i"; do
    ((SECONDS < deadline)) || die "the worker on node $i did not exit within 30 s"
    sleep 0.05
  done
  rm -f "$dir/node$i.pid"
}

have_netem() {
  local probe="rvnetem$$" ok=0
  ip netns add "$probe"
  ip -n "$probe" link set lo up
  ip netns exec "$probe" tc qdisc add dev lo root netem delay 1ms 2>/dev/null && ok=1
  ip netns del "$probe"
  [[ $ok -eq 1 ]]
}

down() {
  [[ -e $dir/name ]] || return 0
  local nm n i ns
  nm=$(name)
  n=$(cat "$dir/nodes")
  # Every process in a host's namespace goes (workers, and whatever `node`/`exec` started there),
  # found through the namespace itself rather than pid files a reused pid could fool.
  for ns in "${nm}c" $(for ((i = 1; i <= n; i++)); do echo "${nm}n$i"; done); do
    for p in $(ip netns pids "$ns" 2>/dev/null); do
      kill -CONT "$p" 2>/dev/null || true
      kill -KILL "$p" 2>/dev/null || true
    done
  done
  for ns in "${nm}c" $(for ((i = 1; i <= n; i++)); do echo "${nm}n$i"; done); do
    local deadline=$((SECONDS + 10))
    while [[ -n $(ip netns pids "$ns" 2>/dev/null) ]] && ((SECONDS < deadline)); do sleep 0.05; done
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -f "$dir"/node*.pid "$dir/name" "$dir/nodes"
}

case $cmd in
  check) check ;;
  up) up "$@" ;;
  start) start "$@" ;;
  stop) signal TERM "${1:-}"; reap "$1" ;;
  kill) signal KILL "${1:-}"; reap "$1" ;;
  freeze) signal STOP "${1:-}" ;;
  thaw) signal CONT "${1:-}" ;;
  hup) signal HUP "${1:-}" ;;
  cut) need_node "${1:-}"; ip -n "$(ctl)" link set "v$1" down ;;
  restore) need_node "${1:-}"; ip -n "$(ctl)" link set "v$1" up ;;
  slow)
    need_node "${1:-}"
    [[ ${2:-} =~ ^[0-9]+$ ]] || die "slow I KBIT"
    # Both ways: the node's sending side, and the controller host's side of its link.
    ip netns exec "$(ns_of "$1")" tc qdisc replace dev eth0 root tbf rate "${2}kbit" burst 1600 latency 30s
    ip netns exec "$(ctl)" tc qdisc replace dev "v$1" root tbf rate "${2}kbit" burst 1600 latency 30s ;;
  delay)
    need_node "${1:-}"
    [[ ${2:-} =~ ^[0-9]+$ ]] || die "delay I MS [LOSS%]"
    have_netem || { echo "tailnet: this kernel has no netem queue (sch_netem); use 'slow' instead" >&2; exit 4; }
    ip netns exec "$(ns_of "$1")" tc qdisc replace dev eth0 root netem delay "${2}ms" ${3:+loss "$3%"} ;;
  clear)
    need_node "${1:-}"
    ip netns exec "$(ns_of "$1")" tc qdisc del dev eth0 root 2>/dev/null || true
    ip netns exec "$(ctl)" tc qdisc del dev "v$1" root 2>/dev/null || true ;;
  pid) need_node "${1:-}"; pid_of "$1" ;;
  addr) need_node "${1:-}"; addr_of "$1" ;;
  exec) exec ip netns exec "$(ctl)" "$@" ;;
  node) need_node "${1:-}"; ns=$(ns_of "$1"); shift; exec ip netns exec "$ns" "$@" ;;
  down) down ;;
  *) die "unknown command '$cmd'" ;;
esac
