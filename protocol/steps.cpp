// Step-name sets and spellings.
#include "protocol/steps.hpp"

#include <algorithm>
#include <cctype>

namespace rayvault::protocol::steps {

const std::set<std::string>& job_steps() {
  static const std::set<std::string> names{
      std::string(kTtsRenderChunks), std::string(kAudioPostcheck), std::string(kFfmpegProbe),
      std::string(kFrameSampling),   std::string(kOpenclawTask),   std::string(kPoseEstimate)};
  return names;
}

bool is_job_step(std::string_view name) { return job_steps().count(normalize(name)) > 0; }

std::string normalize(std::string_view name) {
  auto is_space = [](unsigned char c) { return std::isspace(c) != 0; };
  while (!name.empty() && is_space(static_cast<unsigned char>(name.front()))) name.remove_prefix(1);
  while (!name.empty() && is_space(static_cast<unsigned char>(name.back()))) name.remove_suffix(1);
  std::string out(name);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return out;
}

std::string lower(std::string_view step) {
  std::string out(step);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string legacy_job_type(std::string_view step) {
  const std::string s = normalize(step);
  if (s == kFfmpegProbe) return "ffprobe_analyze";
  return lower(s);
}

}  // namespace rayvault::protocol::steps
