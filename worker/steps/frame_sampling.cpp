// FRAME_SAMPLING: ffmpeg's fps filter writes frame_%06d.jpg; frames_index.json lists them.
#include "worker/steps/frame_sampling.hpp"

#include <algorithm>

#include "protocol/errors.hpp"
#include "protocol/steps.hpp"
#include "util/files.hpp"
#include "worker/steps/ffmpeg_probe.hpp"

namespace rayvault::worker::steps {

std::string_view FrameSampling::name() const { return protocol::steps::kFrameSampling; }

Result<StepOutput> FrameSampling::run(const StepContext& ctx) const {
  auto video = required_path(ctx.payload, "video_path");
  if (!video) return video.error();
  auto every = optional_seconds(ctx.payload, "every_sec", 5.0, 86400.0);
  if (!every) return every.error();
  if (auto st = check_media_file(*video, "video_path"); !st) return st.error();

  const std::string rate = "fps=1/" + protocol::python_float_repr(*every);
  const fs::path pattern = ctx.staging_dir / "frame_%06d.jpg";
  auto res = ctx.run_tool({"ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y", "-i", *video, "-vf", rate,
                           "-q:v", "2", util::u8(pattern)},
                          protocol::codes::kFfmpegMissing);
  if (!res) return res.error();

  std::vector<std::string> frames;
  for (const auto& entry : fs::directory_iterator(ctx.staging_dir)) {
    const std::string n = util::u8(entry.path().filename());
    if (entry.is_regular_file() && n.rfind("frame_", 0) == 0 && entry.path().extension() == ".jpg") frames.push_back(n);
  }
  std::sort(frames.begin(), frames.end());
  if (frames.empty())
    return Error(ErrorKind::invalid_input, "ffmpeg wrote no frame from " + *video,
                 std::string(protocol::codes::kFrameSamplingEmpty));

  // The index lists each frame's full path where it will live once the engine publishes it.
  json frame_paths = json::array();
  for (const auto& f : frames) frame_paths.push_back(util::u8(ctx.output_dir / f));
  json index = {{"run_id", ctx.run_id},
                {"job_id", ctx.job_id},
                {"count", frames.size()},
                {"every_sec", *every},
                {"frames", frame_paths}};
  if (auto st = util::write_file_atomic(ctx.staging_dir / "frames_index.json", protocol::dump_json(index, 2)); !st)
    return Error(st.error().kind, st.error().message, std::string(protocol::codes::kStorageFailed));

  StepOutput out;
  out.metrics = {{"frames", frames.size()}, {"every_sec", *every}, {"count", frames.size()}};
  out.artifacts = frames;
  out.artifacts.push_back("frames_index.json");
  out.message = "sampled " + std::to_string(frames.size()) + " frames";
  return out;
}

}  // namespace rayvault::worker::steps
