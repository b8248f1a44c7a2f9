// A small HTTPS/HTTP POST client for TTS services (the engine's only use of cpp-httplib), with
// certificate verification against the system's roots or a configured CA file.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "util/error.hpp"

namespace rayvault::worker::tts {

struct HttpPost {
  std::string url;  // http://host[:port]/path or https://...
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string content_type = "application/json";
  std::chrono::seconds timeout{120};
  std::filesystem::path ca_file;     // extra trust root (a private service, a test); empty: system roots
  std::size_t max_response_bytes = 64u << 20;
};

struct HttpAnswer {
  int status = 0;
  std::string body;
  std::string content_type;
  std::string retry_after;  // the Retry-After header, "" when absent
};

// Sends the request once. Error (invalid_input) for a URL it cannot use; Error (unavailable) when
// the service cannot be reached, TLS fails, or the answer is larger than max_response_bytes.
Result<HttpAnswer> post(const HttpPost& request);

// True when this build can speak HTTPS.
bool tls_supported();

}  // namespace rayvault::worker::tts
