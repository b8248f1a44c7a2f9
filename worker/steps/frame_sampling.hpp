// FRAME_SAMPLING {video_path, every_sec = 5}: one JPEG every every_sec seconds, and an index.
#pragma once

#include "worker/step.hpp"

namespace rayvault::worker::steps {

class FrameSampling final : public Step {
 public:
  std::string_view name() const override;
  Result<StepOutput> run(const StepContext& ctx) const override;
};

}  // namespace rayvault::worker::steps
