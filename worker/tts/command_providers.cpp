// Providers that run a local program: espeak-ng, say (macOS), sapi (Windows System.Speech through
// PowerShell), piper, and mock (silence made by ffmpeg, for dry runs).
#include <cmath>

#include "platform/process.hpp"
#include "platform/system_info.hpp"
#include "protocol/errors.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"
#include "worker/tts/command_providers.hpp"
#include "worker/tts/sapi_script.hpp"

namespace rayvault::worker::tts {
namespace {

using protocol::codes::kTtsProviderFailed;
using protocol::codes::kTtsProviderUnavailable;

// A number from settings[key] (a number or numeric text); nullopt when absent or not a number.
std::optional<double> number_setting(const json& settings, const char* key) {
  const auto it = settings.find(key);
  if (it == settings.end()) return std::nullopt;
  if (it->is_number()) return it->get<double>();
  if (it->is_string()) return util::parse_number_text(it->get_ref<const std::string&>());
  return std::nullopt;
}

bool is_default_voice(const std::string& voice) { return voice.empty() || voice == "default"; }

// Runs a provider's program; its failure is the provider's (TTS_PROVIDER_FAILED), except a
// timeout or a stop, which keep their own codes.
Result<fs::path> run_provider_tool(const StepContext& ctx, platform::ProcessSpec spec, const fs::path& out,
                                   std::string_view provider) {
  auto res = ctx.run_tool(std::move(spec), kTtsProviderUnavailable);
  if (!res) {
    if (res.error().code == protocol::codes::kCommandFailed)
      return Error(ErrorKind::invalid_input, std::string(provider) + ": " + res.error().message, std::string(kTtsProviderFailed));
    return res.error();
  }
  std::error_code ec;
  if (!fs::is_regular_file(out, ec) || fs::file_size(out, ec) == 0)
    return Error(ErrorKind::invalid_input, std::string(provider) + " wrote no audio", std::string(kTtsProviderFailed));
  return out;
}

class EspeakNg final : public Provider {
 public:
  std::string_view name() const override { return "espeak-ng"; }
  std::string unavailable_reason(const StepConfig&) const override {
    return platform::find_executable("espeak-ng").empty() ? "espeak-ng is not installed on this node" : "";
  }
  Result<fs::path> render(const SpeechRequest& r, const StepContext& ctx) const override {
    const fs::path out = r.work_dir / "espeak.wav";
    platform::ProcessSpec spec;
    spec.argv = {"espeak-ng", "-w", util::u8(out), "-f", util::u8(r.text_file)};
    if (!is_default_voice(r.voice_id)) spec.argv.insert(spec.argv.end(), {"-v", r.voice_id});
    // settings.speed is a factor of espeak-ng's 175 words a minute; settings.pitch is 0-99.
    if (const auto speed = number_setting(r.settings, "speed"); speed && *speed > 0)
      spec.argv.insert(spec.argv.end(), {"-s", std::to_string(std::lround(std::clamp(*speed, 0.3, 3.0) * 175))});
    if (const auto pitch = number_setting(r.settings, "pitch"))
      spec.argv.insert(spec.argv.end(), {"-p", std::to_string(std::lround(std::clamp(*pitch, 0.0, 99.0)))});
    spec.capture_stdout = false;
    return run_provider_tool(ctx, std::move(spec), out, name());
  }
};

class MacSay final : public Provider {
 public:
  std::string_view name() const override { return "say"; }
  std::string unavailable_reason(const StepConfig&) const override {
    if (platform::os_name() != "darwin") return "say is macOS's speech command; this node runs " + platform::os_name();
    return platform::find_executable("say").empty() ? "say is not installed on this node" : "";
  }
  Result<fs::path> render(const SpeechRequest& r, const StepContext& ctx) const override {
    const fs::path out = r.work_dir / "say.aiff";
    platform::ProcessSpec spec;
    spec.argv = {"say", "-o", util::u8(out), "-f", util::u8(r.text_file)};
    if (!is_default_voice(r.voice_id)) spec.argv.insert(spec.argv.end(), {"-v", r.voice_id});
    if (const auto speed = number_setting(r.settings, "speed"); speed && *speed > 0)
      spec.argv.insert(spec.argv.end(), {"-r", std::to_string(std::lround(std::clamp(*speed, 0.3, 3.0) * 175))});
    spec.capture_stdout = false;
    return run_provider_tool(ctx, std::move(spec), out, name());
  }
};

class Sapi final : public Provider {
 public:
  std::string_view name() const override { return "sapi"; }
  std::string unavailable_reason(const StepConfig&) const override {
    if (platform::os_name() != "windows") return "sapi is Windows' System.Speech; this node runs " + platform::os_name();
    return platform::find_executable("powershell").empty() ? "powershell is not on this node's PATH" : "";
  }
  Result<fs::path> render(const SpeechRequest& r, const StepContext& ctx) const override {
    const fs::path script = r.work_dir / "sapi_speak.ps1";
    if (auto st = util::write_file_atomic(script, sapi_script()); !st)
      return Error(st.error().kind, st.error().message, std::string(protocol::codes::kStorageFailed));
    const fs::path out = r.work_dir / "sapi.wav";
    platform::ProcessSpec spec;
    spec.argv = sapi_arguments(script, r, out);
    spec.capture_stdout = false;
    return run_provider_tool(ctx, std::move(spec), out, name());
  }
};

class Piper final : public Provider {
 public:
  std::string_view name() const override { return "piper"; }
  std::string unavailable_reason(const StepConfig& config) const override {
    const std::string bin = binary(config);
    if (platform::find_executable(bin).empty()) return "piper is not installed on this node (PIPER_BIN: " + bin + ")";
    const std::string model = config.setting("PIPER_MODEL");
    std::error_code ec;
    if (model.empty() && config.setting("PIPER_VOICES_DIR").empty())
      return "piper has no voice model configured (PIPER_MODEL or PIPER_VOICES_DIR)";
    if (!model.empty() && !fs::is_regular_file(util::path_from_utf8(model), ec)) return "PIPER_MODEL is not a file: " + model;
    return "";
  }
  Result<fs::path> render(const SpeechRequest& r, const StepContext& ctx) const override {
    if (const std::string why = unavailable_reason(ctx.config); !why.empty())
      return Error(ErrorKind::unavailable, why, std::string(kTtsProviderUnavailable));
    // A voice other than "default" names a model in PIPER_VOICES_DIR (<voice>.onnx).
    std::string model = ctx.config.setting("PIPER_MODEL");
    if (!is_default_voice(r.voice_id) && !ctx.config.setting("PIPER_VOICES_DIR").empty()) {
      if (!util::is_safe_component(r.voice_id))
        return Error(ErrorKind::invalid_input, "piper voice_id must be a model file name: " + r.voice_id,
                     std::string(protocol::codes::kInvalidInput));
      const fs::path candidate = util::path_from_utf8(ctx.config.setting("PIPER_VOICES_DIR")) / (r.voice_id + ".onnx");
      std::error_code ec;
      if (!fs::is_regular_file(candidate, ec))
        return Error(ErrorKind::unavailable, "piper voice not installed on this node: " + r.voice_id,
                     std::string(kTtsProviderUnavailable));
      model = util::u8(candidate);
    }
    if (model.empty())
      return Error(ErrorKind::unavailable, "piper has no default voice (PIPER_MODEL)", std::string(kTtsProviderUnavailable));
    const fs::path out = r.work_dir / "piper.wav";
    platform::ProcessSpec spec;
    spec.argv = {binary(ctx.config), "--model", model, "--output_file", util::u8(out)};
    if (const auto speaker = number_setting(r.settings, "speaker"))
      spec.argv.insert(spec.argv.end(), {"--speaker", std::to_string(std::lround(*speaker))});
    if (const auto scale = number_setting(r.settings, "length_scale"); scale && *scale > 0)
      spec.argv.insert(spec.argv.end(), {"--length_scale", protocol::python_float_repr(std::clamp(*scale, 0.1, 10.0))});
    spec.stdin_file = r.text_file;  // piper reads its text from standard input
    spec.capture_stdout = false;
    return run_provider_tool(ctx, std::move(spec), out, name());
  }

 private:
  static std::string binary(const StepConfig& config) {
    const std::string bin = config.setting("PIPER_BIN");
    return bin.empty() ? std::string("piper") : bin;
  }
};

class Mock final : public Provider {
 public:
  std::string_view name() const override { return "mock"; }
  std::string unavailable_reason(const StepConfig&) const override {
    return platform::find_executable("ffmpeg").empty() ? "ffmpeg is not installed on this node" : "";
  }
  Result<fs::path> render(const SpeechRequest& r, const StepContext& ctx) const override {
    const fs::path out = r.work_dir / "mock.wav";
    auto res = ctx.run_tool({"ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                             "anullsrc=r=48000:cl=mono", "-t", protocol::python_float_repr(mock_seconds(r.text)),
                             "-c:a", "pcm_s16le", util::u8(out)},
                            protocol::codes::kFfmpegMissing);
    if (!res) return res.error();
    return out;
  }
};

}  // namespace

double mock_seconds(std::string_view text) {
  std::size_t words = 0;
  bool in_word = false;
  for (const char c : text) {
    const bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
    if (!space && !in_word) ++words;
    in_word = !space;
  }
  return std::max(1.0, static_cast<double>(words) / 150.0 * 60.0);
}

std::string_view sapi_script() { return kSapiScript; }

std::vector<std::string> sapi_arguments(const fs::path& script, const SpeechRequest& r, const fs::path& out) {
  std::vector<std::string> argv = {"powershell", "-NoProfile",   "-NonInteractive", "-ExecutionPolicy", "Bypass",
                                   "-File",      util::u8(script), "-TextFile",     util::u8(r.text_file),
                                   "-OutFile",   util::u8(out)};
  if (!is_default_voice(r.voice_id)) argv.insert(argv.end(), {"-Voice", r.voice_id});
  // settings.speed as a factor maps onto SAPI's rate -10..10 (1.0 is 0; each step is ~10 %).
  if (const auto speed = number_setting(r.settings, "speed"); speed && *speed > 0)
    argv.insert(argv.end(), {"-Rate", std::to_string(std::lround(std::clamp((*speed - 1.0) * 10.0, -10.0, 10.0)))});
  if (const auto volume = number_setting(r.settings, "volume"))
    argv.insert(argv.end(), {"-Volume", std::to_string(std::lround(std::clamp(*volume, 0.0, 100.0)))});
  return argv;
}

std::unique_ptr<Provider> make_command_provider(std::string_view name) {
  if (name == "espeak-ng") return std::make_unique<EspeakNg>();
  if (name == "say") return std::make_unique<MacSay>();
  if (name == "sapi") return std::make_unique<Sapi>();
  if (name == "piper") return std::make_unique<Piper>();
  if (name == "mock") return std::make_unique<Mock>();
  return nullptr;
}

}  // namespace rayvault::worker::tts
