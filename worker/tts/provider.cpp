// Provider names, aliases and the factory.
#include "worker/tts/provider.hpp"

#include "util/strings.hpp"
#include "worker/tts/command_providers.hpp"

namespace rayvault::worker::tts {

std::string canonical_name(std::string_view raw) {
  std::string n = util::ascii_lower(util::trim(raw));
  if (n == "moss") return "moss_tts";
  if (n == "espeak" || n == "espeak_ng" || n == "espeakng") return "espeak-ng";
  if (n == "eleven_labs" || n == "eleven-labs") return "elevenlabs";
  return n;
}

std::vector<std::string> known_providers() { return {"espeak-ng", "piper", "sapi", "say", "elevenlabs", "moss_tts", "mock"}; }

std::unique_ptr<Provider> make_provider(std::string_view canonical) {
  if (auto p = make_command_provider(canonical)) return p;
  return make_http_provider(canonical);
}

std::vector<std::string> available_providers(const StepConfig& config) {
  std::vector<std::string> out;
  for (const auto& name : known_providers())
    if (const auto p = make_provider(name); p && p->unavailable_reason(config).empty()) out.push_back(name);
  return out;
}

}  // namespace rayvault::worker::tts
