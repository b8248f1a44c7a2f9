#!/usr/bin/env python3
"""A stand-in for a GVHMR pose runner, for the POSE_ESTIMATE tests.

It takes the runner's command line (--video, --output-dir, --estimator, --fps, --static-cam,
--use-dpvo, --f-mm), checks what the worker hands it (CUDA_VISIBLE_DEVICES, a clip resampled to
--fps and no longer than STANDIN_EXPECT_MAX_SECONDS, without sound), logs to stderr as a model
runner does, and writes a real .npz (a zip of .npy arrays), a metadata file and a preview frame.
It prints one JSON result line. The model itself is not run: the arrays are zeros of the shapes
GVHMR writes. STANDIN_MODE_FILE may name a file holding a failure to act out: fail_exit,
garbage, ok_false or escape; or "sleep N", a run that takes N seconds more.
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import time
import zipfile


def npy(shape, fill=0.0):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % (
        ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else ""))
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * pad + "\n"
    count = 1
    for n in shape:
        count *= n
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1") + struct.pack(
        "<%df" % count, *([fill] * count))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--video", required=True)
    p.add_argument("--output-dir", required=True)
    p.add_argument("--estimator", required=True)
    p.add_argument("--fps", type=float, required=True)
    p.add_argument("--static-cam", action="store_true")
    p.add_argument("--use-dpvo", action="store_true")
    p.add_argument("--f-mm", type=float)
    args = p.parse_args()

    mode = "ok"
    if os.environ.get("STANDIN_MODE_FILE") and os.path.exists(os.environ["STANDIN_MODE_FILE"]):
        mode = open(os.environ["STANDIN_MODE_FILE"]).read().strip() or "ok"
    gpu = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    record = os.environ.get("STANDIN_RECORD")
    if record:
        with open(record, "a") as f:
            f.write("start %d %s\n" % (time.time_ns(), gpu))

    problems = []
    if gpu == "":
        problems.append("CUDA_VISIBLE_DEVICES is not set")
    allowed = os.environ.get("STANDIN_EXPECT_GPUS")
    if allowed and gpu not in allowed.split(","):
        problems.append("CUDA_VISIBLE_DEVICES=%s is not one of %s" % (gpu, allowed))
    if args.estimator != "gvhmr":
        problems.append("estimator %s" % args.estimator)
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                            "stream=codec_type,r_frame_rate,nb_frames:format=duration", "-of", "json", args.video],
                           capture_output=True, text=True)
    info = json.loads(probe.stdout or "{}")
    streams = info.get("streams", [])
    video = [s for s in streams if s.get("codec_type") == "video"]
    if any(s.get("codec_type") == "audio" for s in streams):
        problems.append("the clip still has sound")
    if not video:
        problems.append("the clip has no picture")
        frames = 0
    else:
        num, den = video[0]["r_frame_rate"].split("/")
        if abs(float(num) / float(den) - args.fps) > 0.01:
            problems.append("clip rate %s, expected %s" % (video[0]["r_frame_rate"], args.fps))
        frames = int(video[0].get("nb_frames", "0") or 0)
    duration = float(info.get("format", {}).get("duration", "0"))
    longest = float(os.environ.get("STANDIN_EXPECT_MAX_SECONDS", "1e9"))
    if duration > longest + 0.25:
        problems.append("clip lasts %.2f s, more than %.2f s" % (duration, longest))

    print("loading gvhmr checkpoint on cuda:%s" % gpu, file=sys.stderr, flush=True)
    time.sleep(float(os.environ.get("STANDIN_SLEEP", "0")))
    if mode.startswith("sleep "):  # "sleep N": a long model run, then a normal result
        time.sleep(float(mode.split()[1]))
        mode = "ok"
    if record:
        with open(record, "a") as f:
            f.write("end %d %s\n" % (time.time_ns(), gpu))
    if problems:
        print(json.dumps({"ok": False, "error": "; ".join(problems)}))
        return 0
    if mode == "fail_exit":
        print("CUDA error: out of memory", file=sys.stderr)
        return 2
    if mode == "garbage":
        print("Traceback (most recent call last): nothing useful")
        return 0
    if mode == "ok_false":
        print(json.dumps({"ok": False, "error": "no person found in the clip"}))
        return 0

    out = args.output_dir
    os.makedirs(os.path.join(out, "previews"), exist_ok=True)
    npz_path = os.path.join(out, "hmr4d_results.npz")
    with zipfile.ZipFile(npz_path, "w") as z:
        z.writestr("smpl_params_global_body_pose.npy", npy((frames, 63)))
        z.writestr("smpl_params_global_global_orient.npy", npy((frames, 3)))
        z.writestr("smpl_params_global_transl.npy", npy((frames, 3)))
        z.writestr("smpl_params_global_betas.npy", npy((frames, 10)))
    meta_path = os.path.join(out, "meta.json")
    with open(meta_path, "w") as f:
        json.dump({"estimator": args.estimator, "fps": args.fps, "frames": frames, "static_cam": args.static_cam,
                   "use_dpvo": args.use_dpvo, "f_mm": args.f_mm, "cuda_visible_devices": gpu}, f)
    preview = os.path.join(out, "previews", "preview_0000.jpg")
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-i", args.video, "-frames:v", "1", preview], check=True)
    if mode == "escape":
        npz_path = "/etc/hostname"
    print("progress: 100%")
    print(json.dumps({"ok": True, "npz_path": npz_path, "meta_path": meta_path, "previews": [preview], "frames": frames}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
