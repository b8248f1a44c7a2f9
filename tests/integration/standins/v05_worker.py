#!/usr/bin/env python3
"""A stand-in for a deployed v0.5 RayVault worker, for the controller's compatibility path.

It checks requests the way the wire contract describes v0.5 signing, with Python's own str() and
hmac (not the project's code): auth_token = hex HMAC-SHA256 over the values of every other key, in
key-sorted order, joined by '|', where a string is itself and anything else is str() of what
json.loads made of it. It knows only the v0.5 forms:

  GET  /health  -> 404 (v0.5 has no health endpoint)
  POST /caps    {run_id, job_id: caps-<node>, step_name: register_caps, job_type: caps, controller,
                 auth_token}  -> capabilities; the v1 envelope form -> 422, as FastAPI answers it
  POST /job     {run_id, job_id, step_name (lower case), job_type, params, auth_token} -> runs the
                 job at once and answers {ok, status: completed|failed, job_id, result, error}

FFMPEG_PROBE (job_type ffprobe_analyze) really runs ffprobe on params.media_path. Every request
that passed its checks is appended to <root>/requests.jsonl, so a test can see what arrived.
Takes the worker's flags (--host, --port, --root, --worker-id, --ready-file; others ignored) and
the secret from RAYVAULT_CLUSTER_SECRET, so tools/tailnet.sh can start it like a worker.
"""
import argparse
import hashlib
import hmac
import json
import os
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

JOB_TYPES = {
    "ffmpeg_probe": "ffprobe_analyze",
    "frame_sampling": "frame_sampling",
    "tts_render_chunks": "tts_render_chunks",
    "audio_postcheck": "audio_postcheck",
    "openclaw_task": "openclaw_task",
}


def signature_ok(body, secret):
    message = "|".join(v if isinstance(v, str) else str(v)
                       for k, v in sorted(body.items()) if k != "auth_token")
    expected = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, str(body.get("auth_token", "")).lower())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument("--root", default=".")
    parser.add_argument("--worker-id", default="v05-worker")
    parser.add_argument("--ready-file", default="")
    args, _ = parser.parse_known_args()
    secret = os.environ.get("RAYVAULT_CLUSTER_SECRET", "").strip()
    os.makedirs(args.root, exist_ok=True)
    log_path = os.path.join(args.root, "requests.jsonl")

    class Handler(BaseHTTPRequestHandler):
        def answer(self, status, doc):
            data = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, fmt, *a):  # quiet
            pass

        def do_GET(self):
            self.answer(404, {"detail": "Not Found"})

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                return self.answer(400, {"detail": "invalid JSON"})
            if not isinstance(body, dict) or "message_type" in body or "timestamp" in body:
                return self.answer(422, {"detail": [{"loc": ["body", "job_type"], "msg": "field required"}]})
            if not signature_ok(body, secret):
                return self.answer(401, {"detail": "invalid auth_token"})
            with open(log_path, "a") as f:
                f.write(json.dumps({"path": self.path, "body": body}) + "\n")
            if self.path == "/caps":
                if body.get("job_type") != "caps" or body.get("step_name") != "register_caps":
                    return self.answer(400, {"detail": "not a caps request"})
                return self.answer(200, {"ok": True, "version": "0.5.2", "worker_id": args.worker_id,
                                         "capabilities": {"os": "linux", "cpu": "stand-in", "ram_gb": 8.0,
                                                          "gpu_model": "", "vram_gb": 0.0,
                                                          "python_version": sys.version.split()[0],
                                                          "ffmpeg_version": "ffmpeg (stand-in)",
                                                          "davinci_available": False}})
            if self.path != "/job":
                return self.answer(404, {"detail": "Not Found"})
            step, job_type = body.get("step_name"), body.get("job_type")
            if step not in JOB_TYPES or JOB_TYPES[step] != job_type or not isinstance(body.get("params"), dict):
                return self.answer(400, {"detail": "unknown step_name/job_type: %r/%r" % (step, job_type)})
            if job_type != "ffprobe_analyze":
                return self.answer(200, {"ok": False, "status": "failed", "job_id": body["job_id"],
                                         "error": "STEP_UNSUPPORTED: this stand-in runs ffprobe_analyze only"})
            media = str(body["params"].get("media_path", "")).strip()
            run = subprocess.run(["ffprobe", "-v", "error", "-show_format", "-show_streams", "-print_format", "json",
                                  media], capture_output=True, text=True)
            if run.returncode != 0:
                return self.answer(200, {"ok": False, "status": "failed", "job_id": body["job_id"],
                                         "error": "INVALID_INPUT: " + run.stderr.strip()})
            probe = json.loads(run.stdout)
            return self.answer(200, {"ok": True, "status": "completed", "job_id": body["job_id"],
                                     "result": {"duration": probe.get("format", {}).get("duration"),
                                                "streams": len(probe.get("streams", []))}})

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    if args.ready_file:
        with open(args.ready_file + ".tmp", "w") as f:
            json.dump({"host": args.host, "port": server.server_address[1], "pid": os.getpid(),
                       "worker_id": args.worker_id}, f)
        os.replace(args.ready_file + ".tmp", args.ready_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
