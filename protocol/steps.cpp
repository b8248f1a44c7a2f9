// Step-name sets and spellings.
#include "protocol/steps.hpp"
#include "util/strings.hpp"


namespace rayvault::protocol::steps {

const std::set<std::string>& job_steps() {
  static const std::set<std::string> names{
      std::string(kTtsRenderChunks), std::string(kAudioPostcheck), std::string(kFfmpegProbe),
      std::string(kFrameSampling),   std::string(kOpenclawTask),   std::string(kPoseEstimate)};
  return names;
}

bool is_job_step(std::string_view name) { return job_steps().count(normalize(name)) > 0; }

std::string normalize(std::string_view name) { return util::ascii_upper(util::trim(name)); }

std::string legacy_job_type(std::string_view step) {
  const std::string s = normalize(step);
  if (s == kFfmpegProbe) return "ffprobe_analyze";
  return util::ascii_lower(s);
}

}  // namespace rayvault::protocol::steps
