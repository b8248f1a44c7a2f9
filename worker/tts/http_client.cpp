// cpp-httplib behind tts::post, so that httplib.h is compiled in this one file of the engine.
#include "worker/tts/http_client.hpp"

#include <httplib.h>

#include "util/files.hpp"
#include "util/strings.hpp"

namespace rayvault::worker::tts {

bool tls_supported() {
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
  return true;
#else
  return false;
#endif
}

Result<HttpAnswer> post(const HttpPost& request) {
  const std::string& url = request.url;
  // Messages name the service by its origin only: a path or query may hold a token.
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return Error(ErrorKind::invalid_input, "the service URL is not a URL");
  const auto path_start = url.find('/', scheme_end + 3);
  const std::string origin = url.substr(0, path_start);
  const std::string path = path_start == std::string::npos ? std::string("/") : url.substr(path_start);
  const std::string scheme = util::ascii_lower(url.substr(0, scheme_end));
  if (scheme != "http" && scheme != "https") return Error(ErrorKind::invalid_input, "the service URL must be http or https: " + origin);
  if (origin.size() <= scheme_end + 3) return Error(ErrorKind::invalid_input, "the service URL has no host");
  if (scheme == "https" && !tls_supported())
    return Error(ErrorKind::unavailable, "this build has no TLS support, so it cannot reach " + origin);

  httplib::Client client(origin);
  if (!client.is_valid()) return Error(ErrorKind::invalid_input, "cannot use the service URL " + origin);
  client.set_connection_timeout(std::chrono::seconds(10));
  client.set_read_timeout(request.timeout);
  client.set_write_timeout(request.timeout);
  client.set_tcp_nodelay(true);
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
  client.enable_server_certificate_verification(true);
  if (!request.ca_file.empty()) client.set_ca_cert_path(util::u8(request.ca_file));
#endif

  httplib::Request req;
  req.method = "POST";
  req.path = path;
  for (const auto& [k, v] : request.headers) req.headers.emplace(k, v);
  req.headers.emplace("Content-Type", request.content_type);
  req.body = request.body;
  std::string body;
  bool too_big = false;
  req.content_receiver = [&](const char* data, std::size_t n, std::uint64_t, std::uint64_t) {
    if (body.size() + n > request.max_response_bytes) {
      too_big = true;
      return false;
    }
    body.append(data, n);
    return true;
  };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  if (!client.send(req, res, err)) {
    if (too_big)
      return Error(ErrorKind::unavailable, "the answer from " + origin + " is larger than " +
                                               std::to_string(request.max_response_bytes >> 20) + " MiB");
    return Error(ErrorKind::unavailable, "cannot reach " + origin + ": " + httplib::to_string(err));
  }
  HttpAnswer answer;
  answer.status = res.status;
  answer.body = body.empty() ? std::move(res.body) : std::move(body);
  answer.content_type = res.get_header_value("Content-Type");
  answer.retry_after = res.get_header_value("Retry-After");
  return answer;
}

}  // namespace rayvault::worker::tts
