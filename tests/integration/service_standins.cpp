// The speech service stand-ins: cpp-httplib servers (HTTPS for ElevenLabs).
#include "tests/integration/service_standins.hpp"

#include <httplib.h>
#include <doctest/doctest.h>

#include <deque>
#include <mutex>
#include <thread>

#include "platform/process.hpp"
#include "util/files.hpp"

namespace rayvault::test {

namespace fs = std::filesystem;
using protocol::json;

namespace {

void run_tool(std::vector<std::string> argv) {
  platform::ProcessSpec spec;
  spec.argv = std::move(argv);
  spec.timeout = std::chrono::seconds(60);
  auto r = platform::run_process(spec);
  REQUIRE(r.ok());
  REQUIRE(r->exit_code == 0);
}

}  // namespace

struct SpeechServiceStandIn::Impl {
  Kind kind;
  std::string key;
  fs::path cert, private_key;
  std::string audio;
  std::unique_ptr<httplib::Server> server;
  std::thread thread;
  int port = 0;
  mutable std::mutex mu;
  std::deque<int> statuses;
  std::string retry_after = "1";
  std::vector<json> bodies;
  std::vector<std::string> paths, problems;

  void check(const httplib::Request& req) {
    const auto problem = [&](std::string p) { problems.push_back(std::move(p)); };
    paths.push_back(req.path);
    const auto body = protocol::parse_json(req.body);
    if (!body || !body->is_object()) {
      problem("body is not a JSON object");
      bodies.push_back(json());
      return;
    }
    bodies.push_back(*body);
    if (req.get_header_value("Content-Type") != "application/json") problem("Content-Type is not application/json");
    if (kind == Kind::elevenlabs) {
      if (req.path.rfind("/v1/text-to-speech/", 0) != 0 || req.path.size() <= 19) problem("path " + req.path);
      if (req.get_header_value("xi-api-key") != key) problem("xi-api-key is not the configured key");
      if (req.get_header_value("Accept") != "audio/mpeg") problem("Accept is not audio/mpeg");
      if (!body->contains("text") || !(*body)["text"].is_string()) problem("no text");
      if (!body->contains("model_id") || !(*body)["model_id"].is_string()) problem("no model_id");
      const json vs = body->value("voice_settings", json());
      for (const char* k : {"stability", "similarity_boost", "style", "use_speaker_boost"})
        if (!vs.is_object() || !vs.contains(k)) problem(std::string("voice_settings lacks ") + k);
    } else {
      if (req.path != "/v1/tts") problem("path " + req.path);
      if (req.get_header_value("Accept") != "audio/wav") problem("Accept is not audio/wav");
      for (const char* k : {"text", "model_id", "voice_id"})
        if (!body->contains(k) || !(*body)[k].is_string()) problem(std::string("no ") + k);
    }
  }
};

SpeechServiceStandIn::SpeechServiceStandIn(Kind kind, const fs::path& dir, std::string api_key)
    : impl_(std::make_unique<Impl>()) {
  impl_->kind = kind;
  impl_->key = std::move(api_key);
  fs::create_directories(dir);
  const fs::path audio = dir / (kind == Kind::elevenlabs ? "answer.mp3" : "answer.wav");
  if (kind == Kind::elevenlabs) {
    run_tool({"ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
              "sine=frequency=440:duration=0.6:sample_rate=44100", "-c:a", "libmp3lame", "-b:a", "64k", audio.string()});
    impl_->cert = dir / "cert.pem";
    impl_->private_key = dir / "key.pem";
    run_tool({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", impl_->private_key.string(), "-out",
              impl_->cert.string(), "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"});
    impl_->server = std::make_unique<httplib::SSLServer>(impl_->cert.string().c_str(), impl_->private_key.string().c_str());
  } else {
    run_tool({"ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
              "sine=frequency=330:duration=0.8:sample_rate=24000", "-c:a", "pcm_s16le", audio.string()});
    impl_->server = std::make_unique<httplib::Server>();
  }
  REQUIRE(impl_->server->is_valid());
  impl_->audio = *util::read_file(audio);
  Impl* self = impl_.get();
  impl_->server->Post(".*", [self](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(self->mu);
    self->check(req);
    int status = 200;
    if (!self->statuses.empty()) {
      status = self->statuses.front();
      self->statuses.pop_front();
    }
    res.status = status;
    if (status == 200) {
      res.set_content(self->audio, self->kind == Kind::elevenlabs ? "audio/mpeg" : "audio/wav");
    } else {
      if (status == 429) res.set_header("Retry-After", self->retry_after);
      res.set_content(json{{"detail", {{"status", "error_" + std::to_string(status)}}}}.dump(), "application/json");
    }
  });
  impl_->port = impl_->server->bind_to_any_port("127.0.0.1");
  REQUIRE(impl_->port > 0);
  impl_->thread = std::thread([self] { self->server->listen_after_bind(); });
}

SpeechServiceStandIn::~SpeechServiceStandIn() {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!impl_->server->is_running() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  impl_->server->stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

std::string SpeechServiceStandIn::base_url() const {
  const std::string origin = "127.0.0.1:" + std::to_string(impl_->port);
  return impl_->kind == Kind::elevenlabs ? "https://" + origin : "http://" + origin + "/v1/tts";
}
fs::path SpeechServiceStandIn::ca_file() const { return impl_->cert; }
void SpeechServiceStandIn::script(std::vector<int> statuses, std::string retry_after) {
  std::lock_guard lock(impl_->mu);
  impl_->statuses.assign(statuses.begin(), statuses.end());
  impl_->retry_after = std::move(retry_after);
}
int SpeechServiceStandIn::requests() const {
  std::lock_guard lock(impl_->mu);
  return static_cast<int>(impl_->paths.size());
}
std::vector<json> SpeechServiceStandIn::bodies() const {
  std::lock_guard lock(impl_->mu);
  return impl_->bodies;
}
std::vector<std::string> SpeechServiceStandIn::paths() const {
  std::lock_guard lock(impl_->mu);
  return impl_->paths;
}
std::vector<std::string> SpeechServiceStandIn::problems() const {
  std::lock_guard lock(impl_->mu);
  return impl_->problems;
}

}  // namespace rayvault::test
