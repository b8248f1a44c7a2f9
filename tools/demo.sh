#!/usr/bin/env bash
# Installs, builds, and runs the main job end to end on this machine: a local worker on 127.0.0.1
# with a generated secret, a sample video made with ffmpeg's lavfi, a real FFMPEG_PROBE and a
# real FRAME_SAMPLING job submitted through the controller, artifacts synced and verified.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
bash "$repo/tools/install_deps.sh"
bash "$repo/tools/build.sh"

worker="$repo/build/worker/rayvault-worker"
controller="$repo/build/controller/rayvault-controller"
demo=${RAYVAULT_DEMO_DIR:-$(mktemp -d /tmp/rayvault-demo.XXXXXX)}
mkdir -p "$demo/state/cluster"
cd "$demo"

# A fresh secret for this demo only; it stays in the environment and is never printed.
RAYVAULT_CLUSTER_SECRET=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
export RAYVAULT_CLUSTER_SECRET

rm -f worker.ready
"$worker" --host 127.0.0.1 --port 0 --root "$demo/worker-root" --worker-id demo-worker \
  --ready-file "$demo/worker.ready" 2>"$demo/worker.stderr" &
worker_pid=$!
trap 'kill "$worker_pid" 2>/dev/null || true; wait "$worker_pid" 2>/dev/null || true' EXIT

deadline=$((SECONDS + 30))
until [ -s worker.ready ]; do
  kill -0 "$worker_pid" 2>/dev/null || { cat worker.stderr; echo "demo: the worker did not start" >&2; exit 1; }
  [ "$SECONDS" -lt "$deadline" ] || { echo "demo: the worker was not ready within 30 s" >&2; exit 1; }
  sleep 0.1
done
port=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' worker.ready)
echo "demo: worker demo-worker listening on 127.0.0.1:$port (root $demo/worker-root)"

cat > state/cluster/nodes.json <<JSON
{
  "cluster_name": "demo",
  "state_dir": "state/cluster",
  "auth": {"secret_env": "RAYVAULT_CLUSTER_SECRET"},
  "controller": {"node_id": "demo-controller", "request_timeout_sec": 15, "poll_interval_sec": 1, "poll_timeout_sec": 300},
  "nodes": [{"node_id": "demo-worker", "host": "127.0.0.1", "port": $port, "role": "worker", "enabled": true, "timeout_sec": 10}]
}
JSON

ffmpeg -v error -y -f lavfi -i testsrc=duration=10:size=640x360:rate=25 \
  -f lavfi -i sine=frequency=440:duration=10 -shortest -c:v libx264 -pix_fmt yuv420p -c:a aac sample.mp4
echo "demo: made sample.mp4 (10 s test pattern with a 440 Hz tone)"

run() { echo "+ rayvault-controller $*"; "$controller" "$@"; }
run health > health.json && grep -E '"ok"|"worker_id"' health.json
run submit --run-id demo_run --job-id probe_001 --step-name FFMPEG_PROBE \
  --payload-json "{\"media_path\": \"$demo/sample.mp4\"}"
run submit --run-id demo_run --job-id frames_001 --step-name FRAME_SAMPLING \
  --payload-json "{\"video_path\": \"$demo/sample.mp4\", \"every_sec\": 2}"
run sync-artifacts --run-id demo_run --job-id frames_001 > sync.json && grep -m1 '"ok"' sync.json

echo
echo "demo: receipts"
for job in probe_001 frames_001; do
  dir="$demo/state/cluster/receipts/demo_run/$job"
  echo "  $dir/job_receipt.json"
  echo "  $dir/worker.log"
  echo "  $dir/artifacts/ ($(ls "$dir/artifacts" | wc -l) files)"
done
