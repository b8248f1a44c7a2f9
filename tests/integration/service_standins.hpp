// Stand-ins for the speech services a worker calls, which a test cannot reach: ElevenLabs over
// HTTPS (a self-signed certificate made for the test, trusted through RAYVAULT_TTS_CA_FILE) and a
// MOSS-TTS server over HTTP. Each checks every request the way the real service would read it
// (path, headers, body) and answers real audio made by ffmpeg, or the statuses a test scripts.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "protocol/json.hpp"

namespace rayvault::test {

class SpeechServiceStandIn {
 public:
  enum class Kind { elevenlabs, moss_tts };
  // Makes its certificate (elevenlabs) and audio under dir and listens on 127.0.0.1.
  SpeechServiceStandIn(Kind kind, const std::filesystem::path& dir, std::string api_key);
  ~SpeechServiceStandIn();

  std::string base_url() const;              // https://127.0.0.1:PORT or http://127.0.0.1:PORT/v1/tts
  std::filesystem::path ca_file() const;     // the certificate to trust (elevenlabs)
  // The statuses the next requests get, in order (429 with Retry-After: retry_after); once used
  // up, every request gets 200 and audio.
  void script(std::vector<int> statuses, std::string retry_after = "1");
  int requests() const;
  std::vector<protocol::json> bodies() const;  // request bodies as sent, in order
  std::vector<std::string> paths() const;      // request paths, in order
  // What requests got wrong against the real service's contract; empty when all were right.
  std::vector<std::string> problems() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rayvault::test
