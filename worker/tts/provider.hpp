// Text-to-speech providers behind one interface. A provider turns one chunk of text into an audio
// file in any format ffmpeg reads; the TTS_RENDER_CHUNKS step converts it to the contract's
// 48 kHz mono WAV, caches it and lists it in the manifest.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "worker/step.hpp"

namespace rayvault::worker::tts {

struct SpeechRequest {
  std::string text;             // trimmed, non-empty
  std::string voice_id;         // "default" when none was given or configured
  std::string model_id;         // "" when none
  json settings = json::object();
  // A voice-cloning reference (moss_tts) as base64 of its WAV bytes, read once for all chunks;
  // null when none.
  std::shared_ptr<const std::string> reference_b64;
  fs::path text_file;           // the text as UTF-8, for tools that read a file or stdin
  fs::path work_dir;            // an empty folder of this chunk's own for the provider's files
};

class Provider {
 public:
  virtual ~Provider() = default;
  // The canonical name: the cache key's P and the manifest's provider.
  virtual std::string_view name() const = 0;
  // Why this provider cannot run on this node ("" when it can). Cheap: no tool is run, no
  // request is sent, so caps may ask it.
  virtual std::string unavailable_reason(const StepConfig& config) const = 0;
  // Renders the request into a file under request.work_dir; returns its path. Errors carry
  // TTS_PROVIDER_UNAVAILABLE, TTS_PROVIDER_FAILED, TTS_RATE_LIMITED or the tool's code.
  virtual Result<fs::path> render(const SpeechRequest& request, const StepContext& ctx) const = 0;
};

// The canonical form of a provider name: trimmed, lower-case, aliases resolved ("moss" is
// "moss_tts"; "espeak", "espeak_ng" and "espeakng" are "espeak-ng").
std::string canonical_name(std::string_view raw);

// Every provider this build knows, in a stable order.
std::vector<std::string> known_providers();

// The provider for a canonical name; nullptr when this build does not know it.
std::unique_ptr<Provider> make_provider(std::string_view canonical);

// The providers that can run on this node now (their unavailable_reason is "").
std::vector<std::string> available_providers(const StepConfig& config);

// Duration of the mock provider's silence: max(1, words / 150 * 60) seconds, as the Python nodes.
double mock_seconds(std::string_view text);

// The SAPI script (System.Speech through PowerShell) and the arguments that run it; exposed so
// tests on any platform can check both.
std::string_view sapi_script();
std::vector<std::string> sapi_arguments(const fs::path& script, const SpeechRequest& request, const fs::path& out);

}  // namespace rayvault::worker::tts
