// POSE_ESTIMATE {video_path, estimator = "gvhmr", static_cam, use_dpvo, f_mm, max_seconds = 12,
// target_fps = 15}: human pose recovery on a CUDA GPU. The clip is trimmed and resampled with
// ffmpeg, then the configured runner (POSE_RUNNER, e.g. a GVHMR runner module under its own
// Python) runs with CUDA_VISIBLE_DEVICES set to the GPU the job holds and prints one JSON line
// {ok, npz_path, meta_path, previews?, error?}. The pose file, its metadata, the runner's log and
// its previews become the job's artifacts.
#pragma once

#include "worker/step.hpp"

namespace rayvault::worker::steps {

class PoseEstimate final : public Step {
 public:
  std::string_view name() const override;
  Result<StepOutput> run(const StepContext& ctx) const override;
  bool needs_gpu() const override { return true; }
};

// The runner's result: the last line of its output that is a JSON object with an "ok" field;
// null when there is none.
protocol::json find_result_line(const std::string& output);

}  // namespace rayvault::worker::steps
