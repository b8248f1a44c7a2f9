#!/usr/bin/env python3
"""RayVault cluster benchmarks: each figure against its baseline, measured in the same run.

Run through tools/bench.sh (which installs wrk and gnuplot and builds first). Writes the report
(machine, command, medians with their spread, ratios, targets) to --out (docs/benchmarks.md by
default) and plots as PNG beside it. --smoke runs every part for a second or so (what CI runs so
the harness does not rot) and writes to a temporary folder. Exits non-zero only when a figure could
not be measured; missing a target is reported, not an error.
"""
import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("RAYVAULT_BUILD_DIR", os.path.join(REPO, "build"))
WORKER = os.path.join(BUILD, "worker", "rayvault-worker")
CONTROLLER = os.path.join(BUILD, "controller", "rayvault-controller")
BENCH = os.path.join(BUILD, "bench", "rayvault-bench")
SECRET = "bench-secret"


class CannotMeasure(Exception):
    pass


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def wait_until(pred, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.01)
    raise CannotMeasure(what + " did not happen within %d s" % seconds)


def summary(values):
    values = sorted(values)
    return {"median": statistics.median(values), "min": values[0], "max": values[-1], "n": len(values)}


def fmt(s, unit="", digits=1):
    """median (min-max) for a summary."""
    f = "%%.%df" % digits
    if s["n"] == 1:
        return (f % s["median"]) + unit
    return (f % s["median"]) + unit + " (" + (f % s["min"]) + "-" + (f % s["max"]) + ")"


class Worker:
    """A real rayvault-worker on loopback."""

    def __init__(self, work, name, args=(), env=None):
        self.root = os.path.join(work, name)
        self.ready = os.path.join(work, name + ".ready")
        self.log = open(os.path.join(work, name + ".log"), "ab")
        e = dict(os.environ, RAYVAULT_CLUSTER_SECRET=SECRET)
        e.update(env or {})
        if os.path.exists(self.ready):
            os.remove(self.ready)
        self.started = time.monotonic()
        self.proc = subprocess.Popen([WORKER, "--port", "0", "--root", self.root, "--worker-id", name,
                                      "--ready-file", self.ready] + list(args), env=e, stdout=self.log, stderr=self.log)
        try:
            wait_until(lambda: os.path.exists(self.ready) or self.proc.poll() is not None, 30, "worker start")
            if self.proc.poll() is not None:
                raise CannotMeasure("the worker exited at start (see %s.log)" % name)
        except CannotMeasure:
            self.stop()
            raise
        self.port = json.load(open(self.ready))["port"]
        self.pid = self.proc.pid

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def http(port, path, body=None, timeout=60):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=body.encode() if body else None,
                                 method="POST" if body else "GET", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def signed(run, job, step, payload):
    out = subprocess.run([BENCH, "sign", SECRET, run, job, step, json.dumps(payload)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def run_job(port, run, job, step, payload, timeout=600):
    """Submits a job straight to a worker and follows it with long polls; (record, seconds)."""
    s = signed(run, job, step, payload)
    t0 = time.monotonic()
    rec = http(port, "/job", s["body"])["job"]
    while rec["status"] not in ("succeeded", "failed", "cancelled"):
        if time.monotonic() - t0 > timeout:
            raise CannotMeasure("job %s did not end within %d s" % (job, timeout))
        rec = http(port, "/job/%s?%s&wait_ms=10000" % (job, s["query"]))["job"]
    return rec, time.monotonic() - t0


def make_video(path, seconds, size, rate=30, gop=250):
    if os.path.exists(path):
        return path
    log("making a %d s %s test video (once; cached in %s)" % (seconds, size, os.path.dirname(path)))
    tmp = path + ".partial.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=%s:rate=%d" % (size, rate),
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", str(seconds), "-c:v", "libx264",
                    "-preset", "ultrafast", "-g", str(gop), "-pix_fmt", "yuv420p", "-c:a", "aac", tmp], check=True)
    os.rename(tmp, path)
    return path


# --- HTTP: signed POST /job (idempotent hit) and GET /job/{id} against a plain server -----------

WRK_LAT = re.compile(r"^\s*(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def cpu_seconds(pid):
    """User + system CPU time a process has used so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url, conns, seconds, script=None, pid=None):
    threads = max(1, min(conns, 2))
    cmd = ["wrk", "-t", str(threads), "-c", str(conns), "-d", "%ds" % seconds, "--latency", "--timeout", "10s"]
    if script:
        cmd += ["-s", script]
    cpu0 = cpu_seconds(pid) if pid else 0
    out = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=seconds + 60)
    cpu = cpu_seconds(pid) - cpu0 if pid else 0
    m = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    if out.returncode != 0 or not m:
        raise CannotMeasure("wrk failed: " + out.stdout[-500:] + out.stderr[-500:])
    lat = {}
    for p, v, unit in WRK_LAT.findall(out.stdout):
        lat[p] = float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out.stdout)
    if errors:
        raise CannotMeasure("%s answered %s non-2xx responses under load" % (url, errors.group(1)))
    done = re.search(r"(\d+) requests in", out.stdout)
    cpu_us = cpu * 1e6 / int(done.group(1)) if pid and done and int(done.group(1)) > 0 else 0.0
    return {"rps": float(m.group(1)), "p50": lat.get("50", 0.0), "p99": lat.get("99", 0.0), "cpu_us": cpu_us}


def bench_http(cfg, work, results):
    if not shutil.which("wrk"):
        raise CannotMeasure("wrk is not installed (tools/bench.sh installs it)")
    media = make_video(os.path.join(work, "small.mp4"), 2, "320x240")
    port = free_port()
    plain = subprocess.Popen([BENCH, "plain-server", str(port), "2"], stderr=subprocess.DEVNULL)
    w = None
    try:
        w = Worker(work, "http-worker")
        wait_until(lambda: port_open(port), 10, "plain server start")
        payload = {"media_path": media}
        rec, _ = run_job(w.port, "bench", "http-probe", "FFMPEG_PROBE", payload)
        if rec["status"] != "succeeded":
            raise CannotMeasure("the probe job failed: " + json.dumps(rec)[:300])
        body_file = os.path.join(work, "post.lua")
        out = {}
        for conns in cfg["concurrency"]:
            # Signed anew for each level: a token is good for 300 s.
            s = signed("bench", "http-probe", "FFMPEG_PROBE", payload)
            with open(body_file, "w") as f:
                f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = %s\n'
                        % json.dumps(s["body"]))
            targets = {
                "plain": ("http://127.0.0.1:%d/job/http-probe" % port, None, plain.pid),
                "post": ("http://127.0.0.1:%d/job" % w.port, body_file, w.pid),
                "get": ("http://127.0.0.1:%d/job/http-probe?%s" % (w.port, s["query"]), None, w.pid),
            }
            for name, (url, script, pid) in targets.items():
                runs = [wrk(url, conns, cfg["wrk_seconds"], script, pid) for _ in range(cfg["reps"])]
                out.setdefault(name, {})[conns] = {k: summary([r[k] for r in runs]) for k in ("rps", "p50", "p99", "cpu_us")}
                log("http %s c=%d: %.0f req/s p99 %.2f ms" % (name, conns, out[name][conns]["rps"]["median"],
                                                               out[name][conns]["p99"]["median"]))
        results["http"] = out
    finally:
        plain.send_signal(signal.SIGTERM)
        plain.wait()
        if w:
            w.stop()


# --- submit -> receipt for FFMPEG_PROBE against ffprobe run directly ----------------------------

def timed(cmd, env=None, cwd=None):
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    dt = time.monotonic() - t0
    if r.returncode != 0:
        raise CannotMeasure("%s failed (%d): %s" % (cmd[0], r.returncode, (r.stdout + r.stderr)[-400:]))
    return dt


def write_nodes(cwd, workers, extra=None):
    os.makedirs(os.path.join(cwd, "state", "cluster"), exist_ok=True)
    doc = {"controller": {"node_id": "bench", "poll_interval_sec": 0.2}, "nodes": [
        {"node_id": name, "host": "127.0.0.1", "port": w.port} for name, w in workers]}
    doc["controller"].update(extra or {})
    with open(os.path.join(cwd, "state", "cluster", "nodes.json"), "w") as f:
        json.dump(doc, f)


def bench_submit(cfg, work, results):
    media = make_video(os.path.join(work, "small.mp4"), 2, "320x240")
    w = Worker(work, "submit-worker")
    cwd = os.path.join(work, "submit-controller")
    write_nodes(cwd, [("w1", w)])
    env = dict(os.environ, RAYVAULT_CLUSTER_SECRET=SECRET)
    direct, through = [], []
    try:
        for i in range(cfg["submit_runs"]):
            direct.append(timed(["ffprobe", "-v", "error", "-show_format", "-show_streams", "-print_format", "json", media]))
            payload = json.dumps({"media_path": media, "bench_run": i})
            through.append(timed([CONTROLLER, "submit", "--run-id", "bench", "--job-id", "probe%d" % i, "--step-name",
                                  "FFMPEG_PROBE", "--payload-json", payload, "--no-local-fallback"], env=env, cwd=cwd))
        d, t = summary([x * 1000 for x in direct]), summary([x * 1000 for x in through])
        results["submit"] = {"direct_ms": d, "submit_ms": t, "overhead_ms": t["median"] - d["median"]}
        log("submit: ffprobe %.1f ms, through a worker %.1f ms" % (d["median"], t["median"]))
    finally:
        w.stop()


# --- worker memory and start ---------------------------------------------------------------------

def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def health_ok(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return s.recv(16).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def bench_start(cfg, work, results):
    starts_cold, starts_warm, rss = [], [], []
    # One untimed start makes the "used root" used.
    env0 = dict(os.environ, RAYVAULT_CLUSTER_SECRET=SECRET)
    port0 = free_port()
    p0 = subprocess.Popen([WORKER, "--port", str(port0), "--root", os.path.join(work, "start-warm")], env=env0,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: health_ok(port0) or p0.poll() is not None, 30, "first /health")
    finally:
        p0.send_signal(signal.SIGTERM)
        p0.wait()
    for i in range(cfg["start_runs"]):
        for kind, root in (("cold", "start-cold-%d" % i), ("warm", "start-warm")):
            port = free_port()
            env = dict(os.environ, RAYVAULT_CLUSTER_SECRET=SECRET)
            t0 = time.monotonic()
            p = subprocess.Popen([WORKER, "--port", str(port), "--root", os.path.join(work, root)], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_until(lambda: health_ok(port) or p.poll() is not None, 30, "first /health")
                if p.poll() is not None:
                    raise CannotMeasure("the worker exited at start")
                (starts_cold if kind == "cold" else starts_warm).append((time.monotonic() - t0) * 1000)
                if kind == "warm":
                    time.sleep(cfg["idle_seconds"])
                    rss.append(rss_kib(p.pid) / 1024.0)
            finally:
                p.send_signal(signal.SIGTERM)
                p.wait()
    results["start"] = {"cold_ms": summary(starts_cold), "warm_ms": summary(starts_warm), "idle_rss_mib": summary(rss)}
    log("start: cold %.0f ms, warm %.0f ms, idle RSS %.1f MiB" % (results["start"]["cold_ms"]["median"],
                                                                 results["start"]["warm_ms"]["median"],
                                                                 results["start"]["idle_rss_mib"]["median"]))


# --- FRAME_SAMPLING against one ffmpeg run (fps filter) and seeking frame by frame ------------------

def frame_baselines(video, every, duration, out, seek=True):
    """One ffmpeg run with an fps filter, and seeking: one ffmpeg -ss per frame, as many at once as
    there are cores, asking for the frames the filter writes (the last frame before (n + 0.5) x
    every; the video is 30 fps), so all three ways write the same files."""
    os.makedirs(out, exist_ok=True)
    t_filter = timed(["ffmpeg", "-v", "error", "-nostdin", "-y", "-i", video, "-vf", "fps=1/%g" % every, "-q:v", "2",
                      os.path.join(out, "f_%06d.jpg")])
    if not seek:
        return t_filter, None
    slots = int(duration / every + 0.5)
    todo = ["%.6f" % (int(((n + 0.5) * every - 1 / 30.0) * 1e6) / 1e6) for n in range(slots)]
    t0 = time.monotonic()
    running = []
    for n, at in enumerate(todo):
        if len(running) >= (os.cpu_count() or 1):
            if running.pop(0).wait() != 0:
                raise CannotMeasure("ffmpeg -ss failed")
        running.append(subprocess.Popen(["ffmpeg", "-v", "error", "-nostdin", "-y", "-ss", at, "-i", video, "-frames:v", "1",
                                         "-q:v", "2", os.path.join(out, "s_%06d.jpg" % (n + 1))]))
    for p in running:
        if p.wait() != 0:
            raise CannotMeasure("ffmpeg -ss failed")
    return t_filter, time.monotonic() - t0


def bench_frames(cfg, work, results):
    seconds, size = cfg["video"]
    video = make_video(os.path.join(cfg["cache"], "bench_%ds_%s.mp4" % (seconds, size)), seconds, size)
    w = Worker(work, "frames-worker")
    out = {}
    try:
        for label, every in (("sparse", 10.0), ("dense", 1.0)):
            f, s, j = [], [], []
            for i in range(cfg["frame_reps"]):
                # Seeking one frame a second costs minutes and is far from the better way: measured once.
                tf, ts = frame_baselines(video, every, seconds, os.path.join(work, "frames-%s-%d" % (label, i)),
                                         seek=label == "sparse" or i == 0)
                shutil.rmtree(os.path.join(work, "frames-%s-%d" % (label, i)), ignore_errors=True)
                rec, tj = run_job(w.port, "bench", "frames-%s-%d" % (label, i), "FRAME_SAMPLING",
                                  {"video_path": video, "every_sec": every, "bench_run": i})
                if rec["status"] != "succeeded":
                    raise CannotMeasure("FRAME_SAMPLING failed: " + json.dumps(rec)[:300])
                f.append(tf)
                if ts is not None:
                    s.append(ts)
                j.append(tj)
            out[label] = {"every_sec": every, "filter_s": summary(f), "seek_s": summary(s), "step_s": summary(j),
                          "frames": rec["metrics"].get("frames"), "method": rec["metrics"].get("sampling", "filter")}
            log("frames %s: filter %.2f s, seek %.2f s, step %.2f s" % (label, summary(f)["median"], summary(s)["median"],
                                                                       summary(j)["median"]))
        results["frames"] = {"video": "%d s %s" % (seconds, size), **out}
    finally:
        w.stop()


# --- a batch of short jobs over 3 workers against the ideal makespan -----------------------------

def slow_ffprobe(bindir, seconds, record):
    os.makedirs(bindir, exist_ok=True)
    path = os.path.join(bindir, "ffprobe")
    with open(path, "w") as f:
        f.write("#!/bin/sh\n# ffprobe that works %s s per job (a job of known length for makespans)\n"
                "case \"$1\" in -version) exec /usr/bin/ffprobe -version ;; esac\n"
                "echo \"start $(date +%%s%%N)\" >> %s\nsleep %s\n/usr/bin/ffprobe \"$@\"\nrc=$?\n"
                "echo \"end $(date +%%s%%N)\" >> %s\nexit $rc\n" % (seconds, record, seconds, record))
    os.chmod(path, 0o755)
    return bindir + ":" + os.environ.get("PATH", "/usr/bin:/bin")


def work_seconds(record):
    """Sum of the stand-in's own run times (start/end pairs in order per process are not needed:
    total work is sum(ends) - sum(starts))."""
    starts, ends = 0, 0
    with open(record) as f:
        for line in f:
            kind, ns = line.split()
            if kind == "start":
                starts += int(ns)
            else:
                ends += int(ns)
    return (ends - starts) / 1e9


def bench_batch(cfg, work, results):
    media = make_video(os.path.join(work, "small.mp4"), 2, "320x240")
    rows = []
    for nworkers in cfg["batch_workers"]:
        record = os.path.join(work, "batch-record-%d.log" % nworkers)
        path = slow_ffprobe(os.path.join(work, "slow-bin"), cfg["batch_job_seconds"], record)
        workers = []
        try:
            for i in range(nworkers):
                workers.append(Worker(work, "batch-%d-%d" % (nworkers, i), ["--slots", str(cfg["batch_slots"])], {"PATH": path}))
            cwd = os.path.join(work, "batch-controller-%d" % nworkers)
            write_nodes(cwd, [("w%d" % i, w) for i, w in enumerate(workers)])
            batch = os.path.join(cwd, "batch.jsonl")
            with open(batch, "w") as f:
                for i in range(cfg["batch_jobs"]):
                    f.write(json.dumps({"job_id": "j%03d" % i, "step_name": "FFMPEG_PROBE",
                                        "payload": {"media_path": media, "n": i, "workers": nworkers}}) + "\n")
            env = dict(os.environ, RAYVAULT_CLUSTER_SECRET=SECRET)
            t = timed([CONTROLLER, "submit", "--run-id", "batch%d" % nworkers, "--batch", batch, "--no-local-fallback"],
                      env=env, cwd=cwd)
            total = work_seconds(record)
            if total <= 0:
                raise CannotMeasure("the stand-in recorded no work")
            slots = nworkers * cfg["batch_slots"]
            ideal = total / slots
            rows.append({"workers": nworkers, "slots": slots, "jobs": cfg["batch_jobs"], "makespan_s": t,
                         "work_s": total, "ideal_s": ideal, "ratio": t / ideal})
            log("batch over %d workers: %.2f s, ideal %.2f s (x%.2f)" % (nworkers, t, ideal, t / ideal))
        finally:
            for w in workers:
                w.stop()
    results["batch"] = rows


# --- following many running jobs ------------------------------------------------------------------

def connections_to(port):
    """Established TCP connections to a loopback port, counted at the client's end."""
    out = subprocess.run(["ss", "-Htn", "state", "established", "( dport = :%d )" % port], capture_output=True, text=True)
    return len([l for l in out.stdout.splitlines() if l.strip()])


def record_times(record):
    starts, ends = [], []
    with open(record) as f:
        for line in f:
            kind, ns = line.split()
            (starts if kind == "start" else ends).append(int(ns) / 1e9)
    return sorted(starts), sorted(ends)


def bench_follow(cfg, work, results):
    """The controller following N running jobs on one worker (submit --batch): its CPU and its
    connections to the worker while every job runs and none changes, and the watch rounds."""
    n, hold = cfg["follow_jobs"], cfg["follow_job_seconds"]
    media = make_video(os.path.join(work, "small.mp4"), 2, "320x240")
    record = os.path.join(work, "follow-record.log")
    path = slow_ffprobe(os.path.join(work, "follow-bin"), hold, record)
    w = Worker(work, "follow-worker", ["--slots", str(n)], {"PATH": path})
    try:
        cwd = os.path.join(work, "follow-controller")
        write_nodes(cwd, [("w1", w)])
        batch = os.path.join(cwd, "batch.jsonl")
        with open(batch, "w") as f:
            for i in range(n):
                f.write(json.dumps({"job_id": "f%03d" % i, "step_name": "FFMPEG_PROBE",
                                    "payload": {"media_path": media, "n": i}}) + "\n")
        env = dict(os.environ, RAYVAULT_CLUSTER_SECRET=SECRET)
        samples = []  # (time, controller cpu seconds, connections)
        t0 = time.time()
        summary_file = open(os.path.join(cwd, "summary.json"), "w+")  # not a pipe: nobody reads it until the end
        proc = subprocess.Popen([CONTROLLER, "submit", "--run-id", "follow", "--batch", batch, "--no-local-fallback"],
                                env=env, cwd=cwd, stdout=summary_file, stderr=subprocess.DEVNULL)
        while proc.poll() is None:
            try:
                samples.append((time.time(), cpu_seconds(proc.pid), connections_to(w.port)))
            except (OSError, IndexError):
                pass
            time.sleep(0.1)
        summary_file.seek(0)
        out = summary_file.read()
        summary_file.close()
        elapsed = time.time() - t0
        if proc.returncode != 0:
            raise CannotMeasure("the batch failed (%d): %s" % (proc.returncode, out[-400:]))
        starts, ends = record_times(record)
        if len(starts) < n or not ends:
            raise CannotMeasure("the stand-in recorded %d starts of %d" % (len(starts), n))
        # Every job running and none ended yet: from the last start (plus a second for the
        # submissions' connections to close) to the first end.
        lo, hi = starts[n - 1] + 1.0, ends[0] - 0.2
        window = [s for s in samples if lo <= s[0] <= hi]
        if hi - lo < 0.5 or len(window) < 3:
            raise CannotMeasure("no time with all %d jobs running (%.2f s)" % (n, hi - lo))
        span = window[-1][0] - window[0][0]
        cpu = window[-1][1] - window[0][1]
        w.stop()
        log_path = os.path.join(work, "follow-worker.log")
        rounds = status_polls = 0
        with open(log_path, "rb") as f:  # one pass over the access log
            for line in f:
                rounds += line.startswith(b"POST /jobs/watch ")
                status_polls += bool(re.match(rb"GET /job/[^/ ]+ \d+$", line.strip()))
        results["follow"] = {
            "jobs": n, "job_seconds": hold, "steady_s": span, "controller_cpu_s": cpu,
            "controller_cpu_pct": 100.0 * cpu / span if span > 0 else 0.0,
            "connections_max": max(s[2] for s in window), "connections_median": statistics.median(s[2] for s in window),
            "watch_rounds": rounds, "status_polls": status_polls, "batch_s": elapsed,
            "batch_cpu_s": samples[-1][1] if samples else 0.0}
        log("follow %d jobs: %.1f s steady, controller CPU %.3f s (%.2f %%), connections max %d, %d watch rounds, %d status polls"
            % (n, span, cpu, results["follow"]["controller_cpu_pct"], results["follow"]["connections_max"], rounds, status_polls))
    finally:
        w.stop()


# --- sync-artifacts of a large artifact ------------------------------------------------------------

def big_pose_runner(bindir, size):
    """nvidia-smi answering for one GPU, and a pose runner that writes a `size`-byte pose.npz: a job
    with one large artifact (the GPU and the model are not here)."""
    os.makedirs(bindir, exist_ok=True)
    smi = os.path.join(bindir, "nvidia-smi")
    with open(smi, "w") as f:
        f.write("#!/bin/sh\ncase \"$1\" in\n  --query-gpu=index,*) echo '0, NVIDIA GeForce RTX 4090, 24564, 550.54.14' ;;\n"
                "  *) echo 'NVIDIA GeForce RTX 4090, 24564' ;;\nesac\n")
    runner = os.path.join(bindir, "big-pose-runner")
    with open(runner, "w") as f:
        f.write("#!/bin/sh\nwhile [ $# -gt 0 ]; do [ \"$1\" = --output-dir ] && out=$2; shift; done\n"
                "head -c %d /dev/urandom > \"$out/pose.npz\"\necho '{}' > \"$out/meta.json\"\n"
                "echo \"{\\\"ok\\\": true, \\\"npz_path\\\": \\\"$out/pose.npz\\\", \\\"meta_path\\\": \\\"$out/meta.json\\\", \\\"previews\\\": []}\"\n" % size)
    for p in (smi, runner):
        os.chmod(p, 0o755)
    return bindir + ":" + os.environ.get("PATH", "/usr/bin:/bin"), runner


def run_measured(cmd, env=None, cwd=None, kill_when=None):
    """Runs cmd; (seconds, peak RSS in MiB, exit code). kill_when(): SIGKILL it once true."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while kill_when is not None and p.poll() is None:
        if kill_when():
            p.kill()
            break
        time.sleep(0.01)
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return time.monotonic() - t0, usage.ru_maxrss / 1024.0, p.returncode


def loopback_bytes():
    """Bytes the loopback interface has carried (what a sync moves over it, with the rest of the
    machine's loopback traffic: measured on a quiet machine)."""
    with open("/proc/net/dev") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name.strip() == "lo":
                return int(rest.split()[0])
    return 0


def bench_sync(cfg, work, results):
    size = cfg["sync_bytes"]
    media = make_video(os.path.join(work, "small.mp4"), 2, "320x240")
    path, runner = big_pose_runner(os.path.join(work, "pose-bin"), size)
    w = Worker(work, "sync-worker", ["--slots", "1"], {"PATH": path, "POSE_RUNNER": runner})
    try:
        payload = {"video_path": media, "max_seconds": 1}
        rec, _ = run_job(w.port, "sync", "big", "POSE_ESTIMATE", payload)
        if rec["status"] != "succeeded":
            raise CannotMeasure("the pose job failed: %s %s" % (rec.get("error_code"), rec.get("error_message")))
        s = signed("sync", "big", "POSE_ESTIMATE", payload)
        cwd = os.path.join(work, "sync-controller")
        write_nodes(cwd, [("w1", w)])
        env = dict(os.environ, RAYVAULT_CLUSTER_SECRET=SECRET)
        target = os.path.join(cwd, "state", "cluster", "receipts", "sync", "big", "artifacts", "pose.npz")
        cmd = [CONTROLLER, "sync-artifacts", "--run-id", "sync", "--job-id", "big", "--node-id", "w1",
               "--inputs-hash", s["inputs_hash"]]
        url = "http://127.0.0.1:%d/job/big/artifacts/pose.npz?%s" % (w.port, s["artifacts_query"])
        curl_s, sync_s, rss = [], [], []
        for _ in range(cfg["sync_reps"]):
            fetched = os.path.join(work, "curl.npz")
            curl_s.append(timed(["curl", "-sf", "-o", fetched, url]))
            if os.path.getsize(fetched) != size:
                raise CannotMeasure("curl fetched %d bytes of %d" % (os.path.getsize(fetched), size))
            os.remove(fetched)
            if os.path.exists(target):
                os.remove(target)
            dt, peak, code = run_measured(cmd, env=env, cwd=cwd)
            if code != 0 or not os.path.exists(target) or os.path.getsize(target) != size:
                raise CannotMeasure("sync-artifacts failed (%d)" % code)
            sync_s.append(dt)
            rss.append(peak)
        # An interrupted sync: killed once half the bytes are in, then run again. A small file may
        # be whole before the kill lands: then its second half is cut off instead (said so).
        os.remove(target)
        part = target + ".part"

        def half_in():
            try:
                return os.path.getsize(part) >= size // 2
            except OSError:
                return False
        run_measured(cmd, env=env, cwd=cwd, kill_when=half_in)
        interrupted = "killed"
        if os.path.exists(target):
            os.rename(target, part)
            os.truncate(part, size // 2)
            interrupted = "cut"
        had = os.path.getsize(part) if os.path.exists(part) else 0
        if had == 0:
            raise CannotMeasure("the interrupted sync left no partial file")
        before = loopback_bytes()
        resumed_s, _, code = run_measured(cmd, env=env, cwd=cwd)
        moved = loopback_bytes() - before
        if code != 0 or not os.path.exists(target) or os.path.getsize(target) != size:
            raise CannotMeasure("the resumed sync failed (%d)" % code)
        c, t = summary(curl_s), summary(sync_s)
        results["sync"] = {"bytes": size, "curl_s": c, "sync_s": t, "ratio": c["median"] / t["median"],
                           "peak_rss_mib": summary(rss), "resume_had": had, "resume_moved": moved, "resume_s": resumed_s,
                           "interrupted": interrupted}
        log("sync %d MiB: curl %.2f s, sync-artifacts %.2f s (%.2f of curl), peak RSS %.1f MiB; resumed after %d MiB, moved %.1f MiB"
            % (size >> 20, c["median"], t["median"], c["median"] / t["median"], max(rss), had >> 20, moved / 1048576.0))
    finally:
        w.stop()


# --- staging a large input file to a worker ------------------------------------------------------

def silent_wav(path, size):
    """A PCM WAV of silence, `size` bytes in all (a sparse file: made at once, read at disk speed)."""
    header = (b"RIFF" + struct.pack("<I", size - 8) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 2, 48000, 192000, 4, 16) +
              b"data" + struct.pack("<I", size - 44))
    with open(path, "wb") as f:
        f.write(header)
        f.truncate(size)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def bench_stage(cfg, work, results):
    """`submit` of a job whose input file lives only on the controller: hashed, uploaded (PUT
    /blobs), probed, synced back; against curl uploading the same bytes to the same endpoint. A
    fresh worker each run, so each run sends the whole file. Peak RSS of the controller (wait4) and
    of the worker (sampled from /proc every 20 ms while the submit runs)."""
    size = cfg["stage_bytes"]
    media = os.path.join(work, "stage.wav")
    silent_wav(media, size)
    digest = sha256_file(media)
    q = json.loads(subprocess.run([BENCH, "sign-blob", SECRET, digest], capture_output=True, text=True, check=True).stdout)
    env = dict(os.environ, RAYVAULT_CLUSTER_SECRET=SECRET)
    curl_s, stage_s, ctl_rss, worker_rss, worker_rss_curl = [], [], [], [], []
    for rep in range(cfg["stage_reps"]):
        for how in ("curl", "submit"):
            w = Worker(work, "stage-%s-%d" % (how, rep), ["--slots", "1"])
            try:
                held = os.path.join(w.root, "blobs", digest[:2], digest)
                peak = [0]
                done = threading.Event()

                def sample():
                    while not done.is_set():
                        peak[0] = max(peak[0], rss_kib(w.pid))
                        time.sleep(0.02)
                sampler = threading.Thread(target=sample)
                sampler.start()
                try:
                    if how == "curl":
                        url = "http://127.0.0.1:%d/blobs/%s?%s&offset=0&size=%d" % (w.port, digest, q["put_query"], size)
                        curl_s.append(timed(["curl", "-sf", "-o", "/dev/null", "-T", media, url]))
                    else:
                        cwd = os.path.join(work, "stage-controller-%d" % rep)
                        write_nodes(cwd, [("w1", w)])
                        dt, ctl_peak, code = run_measured(
                            [CONTROLLER, "submit", "--run-id", "stage", "--job-id", "probe-%d" % rep, "--step-name",
                             "FFMPEG_PROBE", "--payload-json", json.dumps({"media_path": media}), "--no-local-fallback"],
                            env=env, cwd=cwd)
                        if code != 0:
                            raise CannotMeasure("the staged submit failed (%d)" % code)
                        stage_s.append(dt)
                        ctl_rss.append(ctl_peak)
                finally:
                    done.set()
                    sampler.join()
                if not os.path.exists(held) or os.path.getsize(held) != size:
                    raise CannotMeasure("the worker does not hold the blob after the %s upload" % how)
                (worker_rss_curl if how == "curl" else worker_rss).append(peak[0] / 1024.0)
            finally:
                w.stop()
                shutil.rmtree(w.root, ignore_errors=True)
    c, t = summary(curl_s), summary(stage_s)
    results["stage"] = {"bytes": size, "curl_s": c, "submit_s": t, "ratio": c["median"] / t["median"],
                        "controller_rss_mib": summary(ctl_rss), "worker_rss_mib": summary(worker_rss),
                        "worker_rss_curl_mib": summary(worker_rss_curl)}
    log("stage %d MiB: curl PUT %.2f s, submit %.2f s (%.2f of curl), peak RSS controller %.1f MiB, worker %.1f MiB"
        % (size >> 20, c["median"], t["median"], c["median"] / t["median"], max(ctl_rss), max(worker_rss)))


# --- health over 16 nodes, 4 of them unreachable (test tailnet) ----------------------------------

def bench_health16(cfg, work, results):
    script = os.path.join(REPO, "tools", "tailnet.sh")
    check = subprocess.run(["bash", script, os.path.join(work, "tn"), "check"], capture_output=True, text=True)
    if check.returncode != 0:
        results["health16"] = {"skipped": (check.stdout + check.stderr).strip()}
        log("health16 skipped: " + results["health16"]["skipped"])
        return
    tn = os.path.join(work, "tn")
    env = dict(os.environ, RAYVAULT_CLUSTER_SECRET=SECRET, RAYVAULT_WORKER_BIN=WORKER)
    n, down, timeout = 16, 4, cfg["node_timeout"]
    subprocess.run(["bash", script, tn, "up", str(n)], check=True, env=env, capture_output=True)
    try:
        for i in range(1, n + 1):  # nodes are numbered from 1
            subprocess.run(["bash", script, tn, "start", str(i)], check=True, env=env, capture_output=True)
        for i in range(1, down + 1):
            subprocess.run(["bash", script, tn, "cut", str(i)], check=True, env=env)
        cwd = os.path.join(work, "tn-controller")
        nodes = [{"node_id": "n%d" % i, "host": "100.64.0.%d" % (10 + i), "port": 8787, "timeout_sec": timeout}
                 for i in range(1, n + 1)]
        os.makedirs(os.path.join(cwd, "state", "cluster"), exist_ok=True)
        with open(os.path.join(cwd, "state", "cluster", "nodes.json"), "w") as f:
            json.dump({"nodes": nodes}, f)
        one = os.path.join(cwd, "one.json")
        with open(one, "w") as f:
            json.dump({"nodes": [nodes[0]]}, f)

        def health(nodes_file, expect):
            t0 = time.monotonic()
            r = subprocess.run(["bash", script, tn, "exec", CONTROLLER, "--nodes-file", nodes_file, "health"], env=env,
                               cwd=cwd, capture_output=True, text=True)
            dt = time.monotonic() - t0
            try:
                answered = json.loads(r.stdout)
            except ValueError:
                raise CannotMeasure("health printed no JSON: " + (r.stdout + r.stderr)[-300:])
            rows = answered.get("workers", answered.get("nodes", []))
            if len(rows) != expect:
                raise CannotMeasure("health listed %d nodes, expected %d" % (len(rows), expect))
            return dt

        single = summary([health(one, 1) for _ in range(cfg["health_reps"])])
        all16 = summary([health(os.path.join(cwd, "state", "cluster", "nodes.json"), n) for _ in range(cfg["health_reps"])])
        results["health16"] = {"nodes": n, "unreachable": down, "timeout_s": timeout, "one_unreachable_s": single,
                               "all_s": all16, "ratio": all16["median"] / single["median"]}
        log("health16: %.2f s, one unreachable node %.2f s" % (all16["median"], single["median"]))
    finally:
        subprocess.run(["bash", script, tn, "down"], env=env, capture_output=True)


# --- the report ----------------------------------------------------------------------------------

def machine():
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    mem = 0
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) / 1024 / 1024
    return "%s, %d cores, %.0f GiB, %s %s, Python %s" % (cpu or platform.machine(), os.cpu_count(), mem,
                                                         platform.system(), platform.release(), platform.python_version())


def plots(results, outdir):
    if not shutil.which("gnuplot") or "http" not in results:
        return []
    made = []
    dat = os.path.join(outdir, "http.dat")
    with open(dat, "w") as f:
        for c in sorted(results["http"]["plain"]):
            row = [c]
            for name in ("plain", "post", "get"):
                r = results["http"][name][c]
                row += [r["rps"]["median"], r["p99"]["median"]]
            f.write(" ".join(str(x) for x in row) + "\n")
    for what, col, ylabel, png in (("throughput", 2, "requests/s", "bench_http_throughput.png"),
                                   ("p99", 3, "p99 latency (ms)", "bench_http_p99.png")):
        script = ('set terminal pngcairo size 800,480; set output "%s"; set logscale x 2; set xlabel "concurrent connections";'
                  'set ylabel "%s"; set key top left; set grid;'
                  'plot "%s" using 1:%d with linespoints title "plain libmicrohttpd server",'
                  ' "" using 1:%d with linespoints title "signed POST /job (idempotent)",'
                  ' "" using 1:%d with linespoints title "signed GET /job/{id}"'
                  % (os.path.join(outdir, png), ylabel, dat, col, col + 2, col + 4))
        if subprocess.run(["gnuplot", "-e", script]).returncode == 0:
            made.append(png)
    if results.get("batch") and len(results["batch"]) > 1:
        bdat = os.path.join(outdir, "batch.dat")
        with open(bdat, "w") as f:
            for r in results["batch"]:
                f.write("%d %f %f\n" % (r["workers"], r["makespan_s"], r["ideal_s"]))
        png = "bench_batch_makespan.png"
        script = ('set terminal pngcairo size 800,480; set output "%s"; set xlabel "workers"; set ylabel "seconds";'
                  'set xtics 1; set grid; set yrange [0:*];'
                  'plot "%s" using 1:2 with linespoints title "makespan", "" using 1:3 with linespoints title "ideal (work / slots)"'
                  % (os.path.join(outdir, png), bdat))
        if subprocess.run(["gnuplot", "-e", script]).returncode == 0:
            made.append(png)
        os.remove(bdat)
    os.remove(dat)
    return made


def verdict(ok):
    return "met" if ok else "**missed**"


def report(cfg, results, made, command, measured_at=None, later=None):
    L = ["# Benchmarks", "",
         "Measured by `%s` on %s, %s. Every figure is a median of several runs with its spread"
         " (min-max) in parentheses, against a baseline measured in the same run; the machine is shared"
         " and noisy, so the ratios matter more than the absolute numbers." % (
             command, machine(), measured_at or time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())), ""]
    for name, how in sorted((later or {}).items()):
        L += ["Part `%s` measured again on %s by `%s`." % (name, how["measured_at"], how["command"])]
    if later:
        L.append("")
    if "http" in results:
        h = results["http"]
        L += ["## Signed requests against a plain server of the same HTTP library", "",
              "wrk (2 threads, keep-alive, %d s a run, %d runs) against `rayvault-bench plain-server` (libmicrohttpd with"
              " the worker's flags, polling threads and limits, answering a fixed body) and a worker: a signed"
              " `POST /job` that hits the idempotency index, and a signed `GET /job/{id}`. Target: at least 0.5 x the"
              " plain server's throughput at every concurrency, p99 at most 10 ms at 64." % (cfg["wrk_seconds"], cfg["reps"]), "",
              "| connections | plain req/s | POST req/s (ratio) | GET req/s (ratio) | plain p50 / p99 ms | POST p50 / p99 ms | GET p50 / p99 ms | target |",
              "|---|---|---|---|---|---|---|---|"]
        for c in sorted(h["plain"]):
            p, po, g = h["plain"][c], h["post"][c], h["get"][c]
            rp, rg = po["rps"]["median"] / p["rps"]["median"], g["rps"]["median"] / p["rps"]["median"]
            ok = rp >= 0.5 and rg >= 0.5 and (c != 64 or max(po["p99"]["median"], g["p99"]["median"]) <= 10)
            L.append("| %d | %s | %s (%.2f) | %s (%.2f) | %.2f / %.2f | %.2f / %.2f | %.2f / %.2f | %s |" % (
                c, fmt(p["rps"], digits=0), fmt(po["rps"], digits=0), rp, fmt(g["rps"], digits=0), rg,
                p["p50"]["median"], p["p99"]["median"], po["p50"]["median"], po["p99"]["median"],
                g["p50"]["median"], g["p99"]["median"], verdict(ok)))
        L += ["", "Server CPU time (user + system, all threads, the kernel's TCP work included) per request:", "",
              "| connections | plain | POST | GET |", "|---|---|---|---|"]
        for c in sorted(h["plain"]):
            L.append("| %d | %.1f us | %.1f us | %.1f us |" % (c, h["plain"][c]["cpu_us"]["median"],
                                                            h["post"][c]["cpu_us"]["median"], h["get"][c]["cpu_us"]["median"]))
        L += ["", "Where a ratio falls short of 0.5, this is why: the plain server reads a request and copies a fixed"
              " body; a signed POST also parses its JSON body (about a sixth of the worker's time on it, nlohmann's"
              " parser building a tree), recomputes the payload's inputs_hash and the envelope's HMAC-SHA256, and looks"
              " the job up; a GET checks the HMAC of its query. The answer (the RECORD text kept with the job) is"
              " copied, not built. On two cores wrk takes one, and a server that answers more slowly makes"
              " wrk sleep between answers, so each answer also pays a wake-up in the kernel: the kernel's share of"
              " a POST is about a third of its CPU time.", ""]
        L += ["![%s](%s)" % (m, m) for m in made if m.startswith("bench_http")] + [""]
    if "submit" in results:
        s = results["submit"]
        L += ["## submit -> receipt for FFMPEG_PROBE", "",
              "`rayvault-controller submit` of FFMPEG_PROBE on a 2 s clip through a loopback worker (probe, POST, long poll,"
              " artifact download, receipt), %d runs, against the same `ffprobe` run directly. Target: median overhead"
              " at most 10 ms." % s["submit_ms"]["n"], "",
              "| ffprobe directly | through a worker | overhead | target |", "|---|---|---|---|",
              "| %s | %s | %.1f ms | %s |" % (fmt(s["direct_ms"], " ms"), fmt(s["submit_ms"], " ms"), s["overhead_ms"],
                                            verdict(s["overhead_ms"] <= 10)), ""]
        if s["overhead_ms"] > 10:
            L += ["Where the overhead goes (perf and strace of a submit): a `submit` is a process of its own, and"
                  " starting one takes about 9 ms before it does anything (`rayvault-controller --help`, measured with"
                  " `perf stat`): most of its CPU time in user space is libcrypto initialising itself for the system's"
                  " cpp-httplib, which Debian builds with OpenSSL. The rest is a millisecond or so each: reading"
                  " `nodes.json` and the ledger, the `/health` probe, the signed POST, the long poll's answer once the"
                  " job ends, the artifact and the log with the SHA-256 check, the receipt and the ledger rows; on"
                  " the worker, the job's start (a slot, a staging folder, SQLite) and the spawn of ffprobe. A sync of"
                  " the ledger at every commit cost 3-7 ms more and is gone (WAL with synchronous=NORMAL: safe when the"
                  " controller is killed, not when the machine loses power). Below 10 ms needs a controller that"
                  " outlives one submit; `submit --batch` is that for many jobs (the batch figure below).", ""]
    if "start" in results:
        st = results["start"]
        L += ["## Worker memory and start", "",
              "Process start to the first answered `/health` (a fresh root, and a root used before), and the resident set"
              " (VmRSS) of an idle worker after %g s. Targets: at most 8 MiB, at most 50 ms." % cfg["idle_seconds"], "",
              "| start, fresh root | start, used root | idle RSS | target |", "|---|---|---|---|",
              "| %s | %s | %s | %s |" % (fmt(st["cold_ms"], " ms", 0), fmt(st["warm_ms"], " ms", 0),
                                        fmt(st["idle_rss_mib"], " MiB"),
                                        verdict(st["idle_rss_mib"]["median"] <= 8 and st["cold_ms"]["median"] <= 50)), ""]
        if st["idle_rss_mib"]["median"] > 8:
            L += ["Why the resident set misses 8 MiB: most of it is pages of the shared libraries the worker maps"
                  " (measured from /proc/PID/smaps: libcrypto about 3.1 MiB, libstdc++ 1.7, libc 1.5, SQLite 1.2,"
                  " GnuTLS 1.1 through libmicrohttpd); the worker's own heap and stacks are about 1.5 MiB. Those pages"
                  " are shared with every other process using the same libraries, so the machine pays them once."
                  " Meeting the figure needs a static build of the libraries the worker calls (only what it uses is"
                  " loaded) and a libmicrohttpd built without TLS; not done yet.", ""]
    if "frames" in results:
        fr = results["frames"]
        L += ["## FRAME_SAMPLING", "",
              "A %s H.264 video (30 fps, a keyframe every 250 frames). Baselines: one ffmpeg run with an fps filter, and"
              " seeking (one ffmpeg `-ss` per frame, one per core at once, to the frames the filter writes; once only in the"
              " dense case, where it takes minutes). The step"
              " goes through a worker (submit to the end of the job) and picks its method itself (the `method` column)."
              " Targets: never slower than 1.1 x the better baseline; at least 2 x faster than the filter on the sparse"
              " case." % fr["video"], "",
              "| case | frames | fps filter | seeking | the step | method | step / better | filter / step | target |",
              "|---|---|---|---|---|---|---|---|---|"]
        for label in ("sparse", "dense"):
            r = fr[label]
            better = min(r["filter_s"]["median"], r["seek_s"]["median"])
            ratio = r["step_s"]["median"] / better
            speedup = r["filter_s"]["median"] / r["step_s"]["median"]
            ok = ratio <= 1.1 and (label != "sparse" or speedup >= 2)
            L.append("| %s (every %g s) | %s | %s | %s | %s | %s | %.2f | %.2f | %s |" % (
                label, r["every_sec"], r["frames"], fmt(r["filter_s"], " s", 2), fmt(r["seek_s"], " s", 2),
                fmt(r["step_s"], " s", 2), r.get("method", "?"), ratio, speedup, verdict(ok)))
        L.append("")
    if "health16" in results:
        h = results["health16"]
        L += ["## `health` over 16 nodes, 4 unreachable", ""]
        if "skipped" in h:
            L += ["Not measured here: " + h["skipped"], ""]
        else:
            L += ["On the test tailnet (`tools/tailnet.sh`, one network namespace per node), 4 links cut, node timeout %g s;"
                  " baseline: `health` of one unreachable node. Target: at most 1.2 x." % h["timeout_s"], "",
                  "| one unreachable node | 16 nodes, 4 unreachable | ratio | target |", "|---|---|---|---|",
                  "| %s | %s | %.2f | %s |" % (fmt(h["one_unreachable_s"], " s", 2), fmt(h["all_s"], " s", 2), h["ratio"],
                                              verdict(h["ratio"] <= 1.2)), ""]
    if "batch" in results:
        L += ["## `submit --batch` makespan", "",
              "%d FFMPEG_PROBE jobs whose ffprobe works %g s each (a stand-in that sleeps, then runs the real ffprobe, and"
              " records its own start and end), on loopback workers of %d slots. Ideal: the stand-ins' total run time"
              " / slots. Target: at most 1.2 x ideal with 3 workers." % (cfg["batch_jobs"], cfg["batch_job_seconds"], cfg["batch_slots"]),
              "", "| workers | slots | makespan | ideal | ratio | target |", "|---|---|---|---|---|---|"]
        for r in results["batch"]:
            L.append("| %d | %d | %.2f s | %.2f s | %.2f | %s |" % (r["workers"], r["slots"], r["makespan_s"], r["ideal_s"], r["ratio"],
                                                                  verdict(r["ratio"] <= 1.2) if r["workers"] == 3 else ""))
        L += [""] + ["![%s](%s)" % (m, m) for m in made if m.startswith("bench_batch")] + [""]
    if "follow" in results:
        f = results["follow"]
        L += ["## The controller following %d running jobs" % f["jobs"], "",
              "`submit --batch` of %d FFMPEG_PROBE jobs to one loopback worker with a slot for each, every job held %g s"
              " by a stand-in ffprobe. Sampled every 100 ms while every job runs and none has ended (%.1f s): the"
              " controller's CPU time and its established connections to the worker; from the worker's access"
              " log over the whole batch, the watch rounds (`POST /jobs/watch`) and single-job status polls"
              " (`GET /job/{id}`). Target: at most one connection per worker per poll round, no busy polling." % (
                  f["jobs"], f["job_seconds"], f["steady_s"]), "",
              "| controller CPU while following | connections (median, max) | watch rounds | status polls | target |",
              "|---|---|---|---|---|",
              "| %.3f s in %.1f s (%.2f %% of a core) | %g, %d | %d for %d jobs | %d | %s |" % (
                  f["controller_cpu_s"], f["steady_s"], f["controller_cpu_pct"], f["connections_median"],
                  f["connections_max"], f["watch_rounds"], f["jobs"], f["status_polls"],
                  verdict(f["connections_max"] <= 2 and f["status_polls"] == 0 and f["controller_cpu_pct"] < 5)), "",
              "One held watch a worker answers for all of its jobs; a round ends when a job changes, so rounds"
              " follow the jobs' own changes (start, end) and the batch's submissions, and none runs while"
              " nothing changes. The second connection at times is the batch's periodic `/health` probe.", ""]
    if "sync" in results:
        y = results["sync"]
        L += ["## `sync-artifacts` of a %d MiB artifact" % (y["bytes"] >> 20), "",
              "A POSE_ESTIMATE job whose stand-in runner (the GPU and the model are not here) wrote a %d MiB `pose.npz`"
              " of random bytes on a loopback worker; `rayvault-controller sync-artifacts` brings it home (record, log,"
              " the artifact with its SHA-256 checked, receipt) against `curl` fetching the same bytes from the same"
              " worker, %d runs each. Peak RSS is the controller's maximum resident set (wait4). The resumed sync:"
              " a sync %s, then run again; bytes moved counted by the loopback interface. Targets: at least 0.9 x"
              " curl's speed, peak RSS at most 32 MiB, a resumed sync moves only the rest." % (
                  y["bytes"] >> 20, y["sync_s"]["n"],
                  "killed once half the file was in" if y.get("interrupted", "killed") == "killed"
                  else "whose file was cut to half after it ended (it was whole before a kill landed)"), "",
              "| curl | sync-artifacts | speed vs curl | controller peak RSS | resumed: had, moved | target |",
              "|---|---|---|---|---|---|",
              "| %s | %s | %.2f | %s | %.0f MiB, %.1f MiB | %s |" % (
                  fmt(y["curl_s"], " s", 2), fmt(y["sync_s"], " s", 2), y["ratio"], fmt(y["peak_rss_mib"], " MiB"),
                  y["resume_had"] / 1048576.0, y["resume_moved"] / 1048576.0,
                  verdict(y["ratio"] >= 0.9 and y["peak_rss_mib"]["max"] <= 32 and
                          y["resume_moved"] <= y["bytes"] - y["resume_had"] + (1 << 20))), ""]
    if "stage" in results:
        y = results["stage"]
        L += ["## Staging a %d MiB input file" % (y["bytes"] >> 20), "",
              "`rayvault-controller submit` of an FFMPEG_PROBE whose `media_path` is a %d MiB WAV on the controller:"
              " the file is hashed, sent with `PUT /blobs/{sha256}` (nothing held yet: a fresh worker each run), probed"
              " on the worker and its receipt synced back; against `curl -T` sending the same bytes to the same"
              " endpoint of a fresh worker, %d runs each. Peak RSS: the controller's (wait4) and the worker's (sampled"
              " every 20 ms). Target: controller and worker under 32 MiB while the file moves." % (
                  y["bytes"] >> 20, y["submit_s"]["n"]), "",
              "| curl PUT | submit (hash + upload + probe + sync) | curl / submit | controller peak RSS | worker peak RSS"
              " (curl's upload) | target |",
              "|---|---|---|---|---|---|",
              "| %s | %s | %.2f | %s | %s (%s) | %s |" % (
                  fmt(y["curl_s"], " s", 2), fmt(y["submit_s"], " s", 2), y["ratio"], fmt(y["controller_rss_mib"], " MiB"),
                  fmt(y["worker_rss_mib"], " MiB"), fmt(y["worker_rss_curl_mib"], " MiB"),
                  verdict(y["controller_rss_mib"]["max"] < 32 and y["worker_rss_mib"]["max"] < 32)), ""]
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true", help="every part for a second or so (CI)")
    ap.add_argument("--out", default=os.path.join(REPO, "docs", "benchmarks.md"))
    ap.add_argument("--only", default="", help="comma-separated parts: http,submit,start,frames,health16,batch,follow,sync,stage;"
                    " the other parts' figures are kept from the last full run")
    ap.add_argument("--report-only", action="store_true",
                    help="measure nothing: write the report again from the JSON beside --out (its plots too)")
    args = ap.parse_args()
    if args.report_only:
        saved = json.load(open(os.path.splitext(args.out)[0] + ".json"))
        results = saved["results"]
        for part in ("http",):  # JSON keys are text; the report sorts concurrencies as numbers
            if part in results:
                results[part] = {name: {int(c): v for c, v in rows.items()} for name, rows in results[part].items()}
        made = plots(results, os.path.dirname(os.path.abspath(args.out)))
        text = report(saved["config"], results, made, saved.get("command", "bash tools/bench.sh"), saved.get("measured_at"),
                      saved.get("later", {}))
        if saved["failed"]:
            text += "\n## Not measured\n\n" + "\n".join("- " + f for f in saved["failed"]) + "\n"
        with open(args.out, "w") as f:
            f.write(text)
        log("wrote " + args.out + " from the saved figures")
        return 0
    cache = os.environ.get("RAYVAULT_BENCH_CACHE", os.path.join(BUILD, "bench-cache"))
    os.makedirs(cache, exist_ok=True)
    if args.smoke:
        cfg = {"concurrency": [1, 16], "wrk_seconds": 1, "reps": 1, "submit_runs": 3, "start_runs": 2, "idle_seconds": 0.5,
               "video": (20, "640x360"), "frame_reps": 1, "batch_workers": [3], "batch_jobs": 12, "batch_slots": 2,
               "batch_job_seconds": 0.1, "node_timeout": 1, "health_reps": 1, "follow_jobs": 20,
               "follow_job_seconds": 3, "sync_bytes": 32 << 20, "sync_reps": 1, "stage_bytes": 32 << 20, "stage_reps": 1,
               "cache": cache}
    else:
        cfg = {"concurrency": [1, 16, 64, 256], "wrk_seconds": 5, "reps": 3, "submit_runs": 30, "start_runs": 7,
               "idle_seconds": 3, "video": (600, "1920x1080"), "frame_reps": 3, "batch_workers": [1, 2, 3], "batch_jobs": 200,
               "batch_slots": 2, "batch_job_seconds": 0.25, "node_timeout": 2, "health_reps": 3, "follow_jobs": 200,
               "follow_job_seconds": 20, "sync_bytes": 1 << 30, "sync_reps": 3, "stage_bytes": 2 << 30, "stage_reps": 3,
               "cache": cache}
    for binary in (WORKER, CONTROLLER, BENCH):
        if not os.path.exists(binary):
            print("bench: %s is not built (run tools/bench.sh)" % binary, file=sys.stderr)
            return 2
    parts = [("http", bench_http), ("submit", bench_submit), ("start", bench_start), ("frames", bench_frames),
             ("health16", bench_health16), ("batch", bench_batch), ("follow", bench_follow), ("sync", bench_sync),
             ("stage", bench_stage)]
    only = set(filter(None, args.only.split(",")))
    work = tempfile.mkdtemp(prefix="rayvault-bench.")
    results, failed = {}, []
    try:
        for name, fn in parts:
            if only and name not in only:
                continue
            log("measuring " + name)
            try:
                fn(cfg, work, results)
            except Exception as e:  # a part that cannot be measured is reported; the others still run
                failed.append("%s: %s" % (name, e))
                log("could not measure %s: %s" % (name, e))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = args.out if not args.smoke else os.path.join(tempfile.mkdtemp(prefix="rayvault-bench-smoke."), "benchmarks.md")
    outdir = os.path.dirname(os.path.abspath(out))
    command = "bash tools/bench.sh" + (" --smoke" if args.smoke else "") + (" --only " + args.only if args.only else "")
    now = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    saved_path = os.path.splitext(out)[0] + ".json"
    later = {}
    if only and not args.smoke and os.path.exists(saved_path):
        # Some parts measured again: the others keep the figures of the run that measured them.
        saved = json.load(open(saved_path))
        merged = {k: v for k, v in saved["results"].items() if k not in only}  # a part that failed now shows nothing old
        merged.update(results)
        later = dict(saved.get("later", {}))
        for name in results:
            later[name] = {"command": command, "measured_at": now}
        for name in only - set(results):
            later.pop(name, None)
        results = merged
        failed = [f for f in saved["failed"] if f.split(":")[0] not in only] + failed
        command, now = saved.get("command", "bash tools/bench.sh"), saved.get("measured_at", now)
        cfg = dict(saved["config"], **{k: v for k, v in cfg.items() if k not in saved["config"]})
        if "http" in results:
            results["http"] = {name: {int(c): v for c, v in rows.items()} for name, rows in results["http"].items()}
    made = plots(results, outdir) if not args.smoke else []
    text = report(cfg, results, made, command, now, later)
    if failed:
        text += "\n## Not measured\n\n" + "\n".join("- " + f for f in failed) + "\n"
    with open(out, "w") as f:
        f.write(text)
    with open(saved_path, "w") as f:
        json.dump({"config": cfg, "results": results, "failed": failed, "command": command,
                   "measured_at": now, "later": later}, f, indent=1, default=str)
    log("wrote " + out)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
