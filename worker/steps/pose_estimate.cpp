// POSE_ESTIMATE: prepare the clip, run the runner on the held GPU, publish what it made.
#include "worker/steps/pose_estimate.hpp"

#include <cmath>

#include "protocol/errors.hpp"
#include "protocol/steps.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"
#include "worker/steps/ffmpeg_probe.hpp"

namespace rayvault::worker::steps {
namespace {

using protocol::codes::kCommandFailed;

Error invalid(std::string message) {
  return Error(ErrorKind::invalid_input, std::move(message), std::string(protocol::codes::kInvalidInput));
}
Error runner_failed(std::string message) { return Error(ErrorKind::invalid_input, std::move(message), std::string(kCommandFailed)); }

// A file the runner named: it must be inside the folder the runner was given.
Result<fs::path> runner_file(const json& result, const char* key, const fs::path& out_dir, bool required) {
  const std::string text = protocol::string_field(result, key);
  if (text.empty()) {
    if (required) return runner_failed(std::string("the pose runner's result has no ") + key);
    return fs::path();
  }
  fs::path p = util::path_from_utf8(text);
  if (p.is_relative()) p = out_dir / p;
  std::error_code ec;
  if (!util::is_within(out_dir, p) || !fs::is_regular_file(p, ec))
    return runner_failed(std::string("the pose runner's ") + key + " is not a file in its output folder: " + text);
  return p;
}

}  // namespace

json find_result_line(const std::string& output) {
  json found;
  std::size_t start = 0;
  while (start < output.size()) {
    auto nl = output.find('\n', start);
    if (nl == std::string::npos) nl = output.size();
    const std::string line = util::trim(std::string_view(output).substr(start, nl - start));
    start = nl + 1;
    if (line.empty() || line[0] != '{') continue;
    if (auto doc = protocol::parse_json(line); doc && doc->is_object() && doc->contains("ok")) found = *doc;
  }
  return found;
}

std::string_view PoseEstimate::name() const { return protocol::steps::kPoseEstimate; }

Result<StepOutput> PoseEstimate::run(const StepContext& ctx) const {
  const json& p = ctx.payload;
  auto video = required_path(p, "video_path");
  if (!video) return video.error();
  if (auto st = check_media_file(*video, "video_path"); !st) return st.error();
  std::string estimator = "gvhmr";
  if (const auto e = p.find("estimator"); e != p.end() && !e->is_null()) {
    if (!e->is_string()) return invalid("payload.estimator must be a string");
    estimator = util::ascii_lower(util::trim(e->get_ref<const std::string&>()));
    if (estimator.empty()) estimator = "gvhmr";
    if (!util::is_safe_component(estimator)) return invalid("payload.estimator is not an estimator name: " + estimator);
  }
  auto static_cam = optional_bool(p, "static_cam", false);
  if (!static_cam) return static_cam.error();
  auto use_dpvo = optional_bool(p, "use_dpvo", false);
  if (!use_dpvo) return use_dpvo.error();
  auto max_seconds = optional_seconds(p, "max_seconds", 12.0, 3600.0);
  if (!max_seconds) return max_seconds.error();
  auto fps = optional_seconds(p, "target_fps", 15.0, 240.0);
  if (!fps) return fps.error();
  std::optional<double> f_mm;
  if (const auto f = p.find("f_mm"); f != p.end() && !f->is_null()) {
    if (f->is_number()) f_mm = f->get<double>();
    else if (f->is_string()) f_mm = util::parse_number_text(f->get_ref<const std::string&>());
    if (!f_mm || !std::isfinite(*f_mm) || *f_mm <= 0 || *f_mm > 2000) return invalid("payload.f_mm must be a focal length in mm");
  }

  const std::string runner_line = ctx.config.setting("POSE_RUNNER");
  const auto runner = util::split_command_line(runner_line);
  if (runner.empty())
    return Error(ErrorKind::unavailable, "no pose runner is configured on this node (POSE_RUNNER)",
                 std::string(protocol::codes::kPoseRunnerMissing));
  if (platform::find_executable(runner[0]).empty())
    return Error(ErrorKind::unavailable, "the configured pose runner is not installed: " + runner[0],
                 std::string(protocol::codes::kPoseRunnerMissing));
  if (ctx.gpu == nullptr)
    return Error(ErrorKind::unavailable, "POSE_ESTIMATE needs a CUDA GPU", std::string(protocol::codes::kGpuRequired));

  // The runner's folder lives in staging; only what it names is published.
  const fs::path work = ctx.staging_dir / ".pose";
  const fs::path out_dir = work / "out";
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) return Error(ErrorKind::io, "cannot make the runner's folder: " + ec.message(), std::string(protocol::codes::kStorageFailed));

  // The clip the model sees: at most max_seconds, at target_fps, without sound.
  const fs::path clip = work / "clip.mp4";
  auto trim = ctx.run_tool({"ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y", "-i", *video, "-t",
                            protocol::python_float_repr(*max_seconds), "-vf", "fps=" + protocol::python_float_repr(*fps), "-an",
                            "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p", util::u8(clip)},
                           protocol::codes::kFfmpegMissing);
  if (!trim) return trim.error();

  platform::ProcessSpec spec;
  spec.argv = runner;
  spec.argv.insert(spec.argv.end(), {"--video", util::u8(clip), "--output-dir", util::u8(out_dir), "--estimator", estimator,
                                     "--fps", protocol::python_float_repr(*fps)});
  if (*static_cam) spec.argv.push_back("--static-cam");
  if (*use_dpvo) spec.argv.push_back("--use-dpvo");
  if (f_mm) spec.argv.insert(spec.argv.end(), {"--f-mm", protocol::python_float_repr(*f_mm)});
  // nvidia-smi numbers GPUs in PCI bus order; CUDA does too only when told so.
  spec.env = {{"CUDA_DEVICE_ORDER", "PCI_BUS_ID"}, {"CUDA_VISIBLE_DEVICES", ctx.gpu->index}, {"PYTHONUNBUFFERED", "1"}};
  spec.capture_stdout = true;
  // The runner's stderr goes to the job log and to its own log artifact.
  std::string runner_log;
  spec.on_output_line = [&runner_log](std::string_view line) {
    if (runner_log.size() < (8u << 20)) runner_log.append(line).push_back('\n');
  };
  if (ctx.log) ctx.log(LogLevel::info, "pose_runner", "running " + runner_line + " on GPU " + ctx.gpu->index);
  auto res = ctx.run_tool(std::move(spec), protocol::codes::kPoseRunnerMissing);
  if (!res) return res.error();
  runner_log += res->stdout_text;

  const json result = find_result_line(res->stdout_text);
  if (result.is_null()) return runner_failed("the pose runner printed no result line ({\"ok\": ...})");
  if (!result["ok"].is_boolean() || !result["ok"].get<bool>()) {
    const std::string why = protocol::string_field(result, "error");
    return runner_failed("the pose runner reported failure" + (why.empty() ? std::string() : ": " + why.substr(0, 500)));
  }
  auto npz = runner_file(result, "npz_path", out_dir, true);
  if (!npz) return npz.error();
  auto meta = runner_file(result, "meta_path", out_dir, false);
  if (!meta) return meta.error();

  StepOutput out;
  const auto publish = [&](const fs::path& from, const std::string& as) -> Status {
    fs::create_directories((ctx.staging_dir / as).parent_path(), ec);
    fs::rename(from, ctx.staging_dir / as, ec);
    if (ec) return Error(ErrorKind::io, "cannot publish " + as + ": " + ec.message(), std::string(protocol::codes::kStorageFailed));
    out.artifacts.push_back(as);
    return Ok{};
  };
  if (auto st = publish(*npz, "pose.npz"); !st) return st.error();
  if (!meta->empty())
    if (auto st = publish(*meta, "pose_meta.json"); !st) return st.error();
  if (const auto previews = result.find("previews"); previews != result.end() && previews->is_array()) {
    for (const auto& item : *previews) {
      if (!item.is_string()) continue;
      auto file = runner_file(json{{"preview", item}}, "preview", out_dir, true);
      if (!file) return file.error();
      const std::string base = util::u8(file->filename());
      const std::string as = base.rfind("preview", 0) == 0 ? base : "preview_" + base;
      if (as == "pose.npz" || as == "pose_meta.json" || as == "pose_runner.log") continue;
      if (std::find(out.artifacts.begin(), out.artifacts.end(), as) != out.artifacts.end()) continue;
      if (auto st = publish(*file, as); !st) return st.error();
    }
  }
  if (auto st = util::write_file_atomic(ctx.staging_dir / "pose_runner.log", runner_log); !st)
    return Error(st.error().kind, st.error().message, std::string(protocol::codes::kStorageFailed));
  out.artifacts.push_back("pose_runner.log");
  fs::remove_all(work, ec);

  out.metrics = {{"estimator", estimator}, {"gpu_index", ctx.gpu->index}, {"gpu_model", ctx.gpu->model},
                 {"max_seconds", *max_seconds}, {"target_fps", *fps}, {"video_path", *video}};
  for (const char* key : {"frames", "num_frames", "persons", "duration_sec"})
    if (result.contains(key) && result[key].is_number()) out.metrics[key] = result[key];
  out.message = "pose recovered with " + estimator + " on GPU " + ctx.gpu->index;
  return out;
}

}  // namespace rayvault::worker::steps
