// FFMPEG_PROBE {media_path}: ffprobe's format and stream description as ffprobe.json.
#pragma once

#include "worker/step.hpp"

namespace rayvault::worker::steps {

class FfmpegProbe final : public Step {
 public:
  std::string_view name() const override;
  Result<StepOutput> run(const StepContext& ctx) const override;
};

// Checks that a media path names a readable regular file; INVALID_INPUT otherwise.
Status check_media_file(const std::string& path, const char* key);

}  // namespace rayvault::worker::steps
