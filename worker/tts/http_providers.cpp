// Providers that call a speech service over HTTP(S): ElevenLabs and a self-hosted MOSS-TTS server.
// Both retry 429 and 5xx answers and unreachable services with backoff (Retry-After honoured),
// then fail with TTS_RATE_LIMITED or TTS_PROVIDER_FAILED. The API key comes from the worker's
// environment or its KEY=VALUE file, never from the payload, and never appears in a message.
#include <algorithm>
#include <random>
#include <thread>

#include "protocol/errors.hpp"
#include "util/crypto.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"
#include "worker/tts/command_providers.hpp"
#include "worker/tts/http_client.hpp"

namespace rayvault::worker::tts {
namespace {

using protocol::codes::kTtsProviderFailed;
using protocol::codes::kTtsProviderUnavailable;
using protocol::codes::kTtsRateLimited;

constexpr int kAttempts = 4;
constexpr auto kFirstBackoff = std::chrono::milliseconds(500);
constexpr auto kLongestBackoff = std::chrono::seconds(30);

// A short, single-line excerpt of a service's error body, with the key blanked out.
std::string excerpt(std::string body, const std::string& secret) {
  if (!secret.empty())
    for (auto pos = body.find(secret); pos != std::string::npos; pos = body.find(secret, pos)) body.replace(pos, secret.size(), "***");
  for (char& c : body)
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  body = util::trim(body);
  if (body.size() > 300) body = body.substr(0, 300) + "...";
  return body;
}

// Waits `delay`, or less when the job is cancelled; false when it was.
bool pause(const StepContext& ctx, std::chrono::milliseconds delay) {
  const auto until = std::chrono::steady_clock::now() + delay;
  while (std::chrono::steady_clock::now() < until) {
    if (ctx.cancelled()) return false;
    std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(std::chrono::milliseconds(50), delay));
  }
  return !ctx.cancelled();
}

// Sends the request with retries; the answer of a 2xx, or the error that ends the attempts.
Result<HttpAnswer> post_with_retries(const StepContext& ctx, const HttpPost& request, std::string_view provider,
                                     const std::string& secret) {
  std::mt19937 jitter(std::random_device{}());
  std::string last;
  bool rate_limited = false;
  for (int attempt = 1; attempt <= kAttempts; ++attempt) {
    // Each attempt gets what is left of the job's time, at most the request's own limit.
    HttpPost sent = request;
    const auto left = ctx.remaining(std::chrono::duration_cast<std::chrono::milliseconds>(request.timeout));
    if (left < std::chrono::seconds(1))
      return Error(ErrorKind::unavailable, std::string(provider) + ": the job ran past its timeout", std::string(protocol::codes::kTimeout));
    sent.timeout = std::chrono::duration_cast<std::chrono::seconds>(left);
    auto answer = post(sent);
    std::chrono::milliseconds delay = kFirstBackoff * (1 << (attempt - 1));
    delay += std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 250)(jitter));
    if (!answer) {
      if (answer.error().kind == ErrorKind::invalid_input)
        return Error(ErrorKind::unavailable, std::string(provider) + ": " + answer.error().message,
                     std::string(kTtsProviderUnavailable));
      last = answer.error().message;
      rate_limited = false;
    } else if (answer->status >= 200 && answer->status < 300) {
      return answer;
    } else if (answer->status == 429 || answer->status >= 500) {
      rate_limited = answer->status == 429;
      last = "HTTP " + std::to_string(answer->status) +
             (answer->body.empty() ? std::string() : ": " + excerpt(answer->body, secret));
      if (const auto after = util::parse_number_text(answer->retry_after); after && *after >= 0)  // NaN fails >= 0
        delay = std::chrono::milliseconds(static_cast<long long>(std::min(*after, double(kLongestBackoff.count())) * 1000));
    } else {
      const bool auth = answer->status == 401 || answer->status == 403;
      return Error(ErrorKind::invalid_input,
                   std::string(provider) + (auth ? " refused the API key" : " refused the request") + " (HTTP " +
                       std::to_string(answer->status) + ")" +
                       (answer->body.empty() ? std::string() : ": " + excerpt(answer->body, secret)),
                   std::string(kTtsProviderFailed));
    }
    if (ctx.log)
      ctx.log(LogLevel::warning, "tts_retry",
              std::string(provider) + " attempt " + std::to_string(attempt) + " of " + std::to_string(kAttempts) +
                  " failed (" + last + ")" + (attempt < kAttempts ? "; retrying in " + std::to_string(delay.count()) + " ms" : ""));
    if (attempt < kAttempts && ctx.remaining(delay) < delay)
      return Error(ErrorKind::unavailable, std::string(provider) + ": the job's time runs out before the next attempt (" + last + ")",
                   std::string(protocol::codes::kTimeout));
    if (attempt < kAttempts && !pause(ctx, delay))
      return Error(ErrorKind::unavailable, std::string(provider) + ": the job was stopped",
                   std::string(protocol::codes::kWorkerRestarted));
  }
  return Error(ErrorKind::unavailable,
               std::string(provider) + (rate_limited ? " kept answering 429 (rate limited)" : " failed") + " after " +
                   std::to_string(kAttempts) + " attempts: " + last,
               std::string(rate_limited ? kTtsRateLimited : kTtsProviderFailed));
}

Result<fs::path> save_audio(const HttpAnswer& answer, const fs::path& out, std::string_view provider) {
  if (answer.body.empty())
    return Error(ErrorKind::invalid_input, std::string(provider) + " answered no audio", std::string(kTtsProviderFailed));
  if (answer.content_type.rfind("application/json", 0) == 0 || answer.content_type.rfind("text/", 0) == 0)
    return Error(ErrorKind::invalid_input,
                 std::string(provider) + " answered " + answer.content_type + " instead of audio: " + excerpt(answer.body, ""),
                 std::string(kTtsProviderFailed));
  if (auto st = util::write_file_atomic(out, answer.body); !st)
    return Error(st.error().kind, st.error().message, std::string(protocol::codes::kStorageFailed));
  return out;
}

fs::path ca_file(const StepConfig& config) { return util::path_from_utf8(config.setting("RAYVAULT_TTS_CA_FILE")); }

class ElevenLabs final : public Provider {
 public:
  std::string_view name() const override { return "elevenlabs"; }
  std::string unavailable_reason(const StepConfig& config) const override {
    if (config.setting("ELEVENLABS_API_KEY").empty())
      return "elevenlabs has no API key on this node (ELEVENLABS_API_KEY in the environment or " + util::u8(config.env_file) + ")";
    if (base_url(config).rfind("https:", 0) == 0 && !tls_supported()) return "this build has no TLS support for elevenlabs";
    return "";
  }
  Result<fs::path> render(const SpeechRequest& r, const StepContext& ctx) const override {
    if (const std::string why = unavailable_reason(ctx.config); !why.empty())
      return Error(ErrorKind::unavailable, why, std::string(kTtsProviderUnavailable));
    const std::string key = ctx.config.setting("ELEVENLABS_API_KEY");
    // voice_settings: the contract's defaults updated by payload.settings.
    json voice_settings = {{"stability", 0.5}, {"similarity_boost", 0.75}, {"style", 0.0}, {"use_speaker_boost", true}};
    for (const auto& [k, v] : r.settings.items()) voice_settings[k] = v;
    const json body = {{"text", r.text},
                       {"model_id", r.model_id.empty() ? std::string("eleven_multilingual_v2") : r.model_id},
                       {"voice_settings", voice_settings}};
    HttpPost request;
    request.url = base_url(ctx.config) + "/v1/text-to-speech/" + util::percent_encode(r.voice_id);
    request.headers = {{"xi-api-key", key}, {"Accept", "audio/mpeg"}};
    request.body = protocol::dump_json(body);
    request.ca_file = ca_file(ctx.config);
    request.timeout = std::chrono::seconds(300);  // per attempt; the job's deadline cuts it shorter
    auto answer = post_with_retries(ctx, request, name(), key);
    if (!answer) return answer.error();
    return save_audio(*answer, r.work_dir / "elevenlabs.mp3", name());
  }

 private:
  static std::string base_url(const StepConfig& config) {
    std::string url = config.setting("ELEVENLABS_BASE_URL");
    if (url.empty()) url = "https://api.elevenlabs.io";
    while (!url.empty() && url.back() == '/') url.pop_back();
    return url;
  }
};

class MossTts final : public Provider {
 public:
  std::string_view name() const override { return "moss_tts"; }
  std::string unavailable_reason(const StepConfig& config) const override {
    const std::string endpoint = config.setting("MOSS_TTS_ENDPOINT");
    if (endpoint.empty()) return "moss_tts has no endpoint configured on this node (MOSS_TTS_ENDPOINT)";
    if (endpoint.rfind("https:", 0) == 0 && !tls_supported()) return "this build has no TLS support for moss_tts";
    return "";
  }
  Result<fs::path> render(const SpeechRequest& r, const StepContext& ctx) const override {
    if (const std::string why = unavailable_reason(ctx.config); !why.empty())
      return Error(ErrorKind::unavailable, why, std::string(kTtsProviderUnavailable));
    std::string model = r.model_id;
    if (model.empty()) model = ctx.config.setting("MOSS_TTS_MODEL");
    if (model.empty()) model = "moss-tts-8b-delay";
    json body = {{"text", r.text}, {"model_id", model}, {"voice_id", r.voice_id}};
    for (const char* key : {"speed", "seed"})
      if (r.settings.contains(key)) body[key] = r.settings[key];
    if (!r.settings.empty()) body["settings"] = r.settings;
    if (r.reference_b64) body["reference_audio_b64"] = *r.reference_b64;
    HttpPost request;
    request.url = ctx.config.setting("MOSS_TTS_ENDPOINT");
    request.headers = {{"Accept", "audio/wav"}};
    if (const std::string token = ctx.config.setting("MOSS_TTS_API_KEY"); !token.empty())
      request.headers.emplace_back("Authorization", "Bearer " + token);
    request.body = protocol::dump_json(body);
    request.ca_file = ca_file(ctx.config);
    request.timeout = std::chrono::seconds(600);
    auto answer = post_with_retries(ctx, request, name(), ctx.config.setting("MOSS_TTS_API_KEY"));
    if (!answer) return answer.error();
    return save_audio(*answer, r.work_dir / "moss.wav", name());
  }

};

}  // namespace

std::unique_ptr<Provider> make_http_provider(std::string_view name) {
  if (name == "elevenlabs") return std::make_unique<ElevenLabs>();
  if (name == "moss_tts") return std::make_unique<MossTts>();
  return nullptr;
}

}  // namespace rayvault::worker::tts
