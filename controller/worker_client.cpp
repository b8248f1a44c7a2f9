// WorkerClient over httplib; httplib's errors become Errors here and never travel further.
#include "controller/worker_client.hpp"

#include <httplib.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "protocol/blobs.hpp"
#include "protocol/envelope.hpp"
#include "protocol/legacy.hpp"
#include "protocol/steps.hpp"
#include "util/crypto.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"

namespace rayvault::controller {
namespace {

ErrorKind kind_for_status(int status) {
  switch (status) {
    case 400: case 422: return ErrorKind::invalid_input;
    case 401: return ErrorKind::unauthorized;
    case 403: return ErrorKind::forbidden;
    case 404: return ErrorKind::not_found;
    case 409: return ErrorKind::conflict;
    case 413: return ErrorKind::too_large;
    case 416: return ErrorKind::range;
    case 507: return ErrorKind::storage_full;
    default: return ErrorKind::unavailable;
  }
}

std::string detail_of(const std::string& body) {
  auto parsed = protocol::parse_json(body);
  if (parsed && parsed->is_object() && parsed->contains("detail")) {
    const auto& d = (*parsed)["detail"];
    return d.is_string() ? d.get<std::string>() : protocol::dump_json(d);
  }
  return body.substr(0, 200);
}

// Where downloaded bytes go: a thread of its own hashes them and appends them to the file a block
// at a time, so that receiving overlaps hashing and writing (one thread doing all three moved a
// large artifact at about half curl's speed). Memory: two blocks, however large the file.
class BlockSink {
 public:
  static constexpr std::size_t kBlock = 1u << 20;
  explicit BlockSink(util::Sha256Stream& sha) : sha_(sha) {}
  ~BlockSink() { (void)close(); }
  BlockSink(const BlockSink&) = delete;
  BlockSink& operator=(const BlockSink&) = delete;

  bool open(const std::filesystem::path& path, std::ios::openmode mode) {
    file_.open(path, std::ios::binary | mode);
    if (!file_) return false;
    thread_ = std::thread([this] { run(); });
    return true;
  }
  bool add(const char* data, std::size_t n) {
    fill_.append(data, n);
    return fill_.size() < kBlock ? !failed() : hand_over();
  }
  // Writes what is left and stops the thread; false when a write failed.
  bool close() {
    if (thread_.joinable()) {
      (void)hand_over();
      {
        std::lock_guard lock(mu_);
        stop_ = true;
      }
      cv_.notify_all();
      thread_.join();
      file_.close();
      if (file_.fail()) failed_ = true;
    }
    return !failed();
  }

 private:
  bool failed() {
    std::lock_guard lock(mu_);
    return failed_;
  }
  bool hand_over() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return busy_.empty() || failed_; });
    if (failed_) return false;
    busy_.swap(fill_);
    fill_.clear();
    cv_.notify_all();
    return true;
  }
  void run() {
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, [this] { return !busy_.empty() || stop_; });
      if (busy_.empty()) return;
      lock.unlock();  // busy_ is this thread's until it is emptied
      sha_.update(busy_.data(), busy_.size());
      file_.write(busy_.data(), static_cast<std::streamsize>(busy_.size()));
      const bool ok = static_cast<bool>(file_);
      lock.lock();
      failed_ = failed_ || !ok;
      busy_.clear();
      cv_.notify_all();
    }
  }

  util::Sha256Stream& sha_;
  std::ofstream file_;
  std::string fill_, busy_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false, failed_ = false;
  std::thread thread_;
};

}  // namespace

struct WorkerClient::Impl {
  Endpoint ep;
  std::string secret;
  util::Clock clock;
  httplib::Client http;

  Impl(Endpoint e, std::string s, util::Clock c)
      : ep(std::move(e)), secret(std::move(s)), clock(std::move(c)), http(ep.host, ep.port) {
    const auto secs = static_cast<time_t>(ep.timeout_sec);
    const auto usecs = static_cast<time_t>((ep.timeout_sec - static_cast<double>(secs)) * 1e6);
    http.set_connection_timeout(secs, usecs);
    http.set_read_timeout(secs, usecs);
    http.set_write_timeout(secs, usecs);
    http.set_tcp_nodelay(true);
    http.set_keep_alive(true);
  }

  std::string where() const { return ep.host + ":" + std::to_string(ep.port); }

  Error transport_error(const httplib::Result& r) const {
    return Error(ErrorKind::unavailable, "cannot reach worker at " + where() + ": " + httplib::to_string(r.error()));
  }

  Result<json> decode(const httplib::Result& r) const {
    if (!r) return transport_error(r);
    if (r->status < 200 || r->status >= 300)
      return Error(kind_for_status(r->status),
                   "worker " + where() + " answered " + std::to_string(r->status) + ": " + detail_of(r->body));
    auto body = protocol::parse_json(r->body);
    if (!body) return Error(ErrorKind::unavailable, "worker " + where() + " sent malformed JSON");
    return body;
  }

  Result<json> post(const std::string& path, const std::string& body) {
    return decode(http.Post(path, body, "application/json"));
  }

  std::string query(const std::string& run_id, const std::string& job_id, std::string_view step,
                    const std::string& inputs_hash) const {
    const auto env = protocol::make_signed_envelope(run_id, job_id, std::string(step), inputs_hash, secret, clock());
    return "run_id=" + util::percent_encode(env.run_id) + "&step_name=" + util::percent_encode(env.step_name) +
           "&inputs_hash=" + util::percent_encode(env.inputs_hash) + "&timestamp=" + util::percent_encode(env.timestamp) +
           "&auth_token=" + util::percent_encode(env.auth_token);
  }
};

WorkerClient::WorkerClient(Endpoint endpoint, std::string secret, util::Clock clock)
    : endpoint_(endpoint), impl_(std::make_unique<Impl>(std::move(endpoint), std::move(secret), std::move(clock))) {}
WorkerClient::~WorkerClient() = default;
WorkerClient::WorkerClient(WorkerClient&&) noexcept = default;

Result<json> WorkerClient::health() { return impl_->decode(impl_->http.Get("/health")); }

Result<json> WorkerClient::caps(const std::string& run_id, const std::string& node_id) {
  // The reference controller hashes {"node_id", "action"}; /caps is not bound to its payload.
  const json basis{{"node_id", node_id}, {"action", "register_caps"}};
  const auto env = protocol::make_signed_envelope(run_id, "caps-" + node_id, std::string(protocol::steps::kRegisterCaps),
                                                  protocol::inputs_hash(basis), impl_->secret, impl_->clock());
  json body{{"message_type", "register_caps"}, {"payload", {{"controller", "rayvault"}}}};
  protocol::envelope_to_json(env, body);
  return impl_->post("/caps", protocol::dump_json(body));
}

Result<json> WorkerClient::legacy_caps(const std::string& run_id, const std::string& node_id, bool plain) {
  protocol::ordered_json body;
  if (plain) {
    body = {{"auth_token", impl_->secret}};
  } else {
    body = protocol::legacy::caps_body(run_id, node_id);
    protocol::legacy::sign(body, impl_->secret);
  }
  auto res = impl_->post("/caps", body.dump(-1, ' ', false, protocol::ordered_json::error_handler_t::replace));
  if (!res) return res;
  (*res)["_compat_mode"] =
      std::string(plain ? protocol::legacy::kCompatModePlain : protocol::legacy::kCompatModeHmac);
  return res;
}

Result<json> WorkerClient::legacy_submit(const std::string& run_id, const std::string& job_id, const std::string& step_name,
                                         const json& payload, double wait_sec) {
  protocol::ordered_json body = protocol::legacy::job_body(run_id, job_id, step_name, protocol::ordered_json(payload));
  protocol::legacy::sign(body, impl_->secret);
  const double total = std::max(impl_->ep.timeout_sec, wait_sec);
  impl_->http.set_read_timeout(static_cast<time_t>(total), 0);
  auto res = impl_->post("/job", body.dump(-1, ' ', false, protocol::ordered_json::error_handler_t::replace));
  impl_->http.set_read_timeout(static_cast<time_t>(impl_->ep.timeout_sec), 0);
  if (res && res->is_object()) (*res)["_compat_mode"] = std::string(protocol::legacy::kCompatModeHmac);
  return res;
}

Result<json> WorkerClient::submit(const std::string& run_id, const std::string& job_id, const std::string& step_name,
                                  const std::string& inputs_hash, const json& payload, bool force,
                                  std::optional<int> priority) {
  const auto env = protocol::make_signed_envelope(run_id, job_id, step_name, inputs_hash, impl_->secret, impl_->clock());
  json body{{"message_type", "submit_job"}, {"payload", payload}};
  protocol::envelope_to_json(env, body);
  if (protocol::inputs_hash(payload) != protocol::normalize_hash(inputs_hash))
    body["payload_hmac"] = protocol::payload_hmac(impl_->secret, env.timestamp, payload);
  if (force) body["force"] = true;
  if (priority) body["priority"] = *priority;
  // canonical_json keeps big integers exact, as the worker will hash them.
  return impl_->post("/job", protocol::canonical_json(body));
}

namespace {
// The envelope of a blob request: bound to the digest (its inputs_hash); the ids name no job.
std::string blob_query(const std::string& query) { return query + "&job_id=blob"; }
}  // namespace

Result<json> WorkerClient::blob_state(const std::string& digest, std::uint64_t size) {
  return impl_->decode(impl_->http.Get("/blobs/" + digest + "?" +
                                       blob_query(impl_->query("blobs", "blob", protocol::kBlobStat, digest)) +
                                       "&size=" + std::to_string(size)));
}

Result<json> WorkerClient::put_blob(const std::string& digest, const std::filesystem::path& file, std::uint64_t offset,
                                    std::uint64_t size) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return Error(ErrorKind::io, "cannot read " + util::u8(file));
  in.seekg(static_cast<std::streamoff>(offset));
  const std::string path = "/blobs/" + digest + "?" +
                           blob_query(impl_->query("blobs", "blob", protocol::kBlobPut, digest)) +
                           "&offset=" + std::to_string(offset) + "&size=" + std::to_string(size);
  // Read a block at a time as the socket takes it: memory stays flat however large the file.
  std::vector<char> block(256u << 10);
  bool short_read = false;
  auto r = impl_->http.Put(
      path, static_cast<std::size_t>(size - offset),
      [&](std::size_t, std::size_t length, httplib::DataSink& sink) {
        in.read(block.data(), static_cast<std::streamsize>(std::min(length, block.size())));
        const auto got = static_cast<std::size_t>(in.gcount());
        if (got == 0) {
          short_read = true;
          return false;
        }
        return sink.write(block.data(), got);
      },
      "application/octet-stream");
  if (short_read) return Error(ErrorKind::invalid_input, util::u8(file) + " became shorter while it was being sent");
  return impl_->decode(r);
}

Result<json> WorkerClient::cancel(const std::string& run_id, const std::string& job_id, const std::string& inputs_hash,
                                  const std::string& reason) {
  const auto env = protocol::make_signed_envelope(run_id, job_id, std::string(protocol::steps::kJobCancel), inputs_hash,
                                                  impl_->secret, impl_->clock());
  json body{{"message_type", "cancel_job"}, {"reason", reason}};
  protocol::envelope_to_json(env, body);
  return impl_->post("/job/" + util::percent_encode(job_id) + "/cancel", protocol::dump_json(body));
}

Result<json> WorkerClient::job_status(const std::string& run_id, const std::string& job_id,
                                      const std::string& inputs_hash, int wait_ms) {
  std::string path = "/job/" + util::percent_encode(job_id) + "?" + impl_->query(run_id, job_id, protocol::steps::kJobStatus, inputs_hash);
  if (wait_ms > 0) {
    path += "&wait_ms=" + std::to_string(wait_ms);
    // The worker holds the request up to wait_ms: give the read that much longer.
    const double total = impl_->ep.timeout_sec + wait_ms / 1000.0;
    impl_->http.set_read_timeout(static_cast<time_t>(total), 0);
  }
  auto res = impl_->decode(impl_->http.Get(path));
  if (wait_ms > 0) impl_->http.set_read_timeout(static_cast<time_t>(impl_->ep.timeout_sec), 0);
  return res;
}

Result<json> WorkerClient::watch_jobs(const json& jobs, std::optional<std::uint64_t> since, int wait_ms) {
  json payload{{"jobs", jobs}, {"wait_ms", wait_ms}};
  if (since) payload["since"] = *since;
  // Bound to its payload through inputs_hash; the ids name no job of their own.
  const auto env = protocol::make_signed_envelope("watch", "watch", std::string(protocol::steps::kJobWatch),
                                                  protocol::inputs_hash(payload), impl_->secret, impl_->clock());
  json body{{"message_type", "watch_jobs"}, {"payload", payload}};
  protocol::envelope_to_json(env, body);
  const double total = impl_->ep.timeout_sec + wait_ms / 1000.0;
  impl_->http.set_read_timeout(static_cast<time_t>(total), 0);
  auto res = impl_->post("/jobs/watch", protocol::canonical_json(body));
  impl_->http.set_read_timeout(static_cast<time_t>(impl_->ep.timeout_sec), 0);
  return res;
}

void WorkerClient::disconnect() { impl_->http.stop(); }

Result<std::string> WorkerClient::job_logs(const std::string& run_id, const std::string& job_id,
                                           const std::string& inputs_hash) {
  auto r = impl_->http.Get("/job/" + util::percent_encode(job_id) + "/logs?" +
                           impl_->query(run_id, job_id, protocol::steps::kJobLogs, inputs_hash));
  if (!r) return impl_->transport_error(r);
  if (r->status != 200)
    return Error(kind_for_status(r->status), "worker answered " + std::to_string(r->status) + ": " + detail_of(r->body));
  return r->body;
}

Result<json> WorkerClient::job_artifacts(const std::string& run_id, const std::string& job_id,
                                         const std::string& inputs_hash) {
  return impl_->decode(impl_->http.Get("/job/" + util::percent_encode(job_id) + "/artifacts?" +
                                       impl_->query(run_id, job_id, protocol::steps::kJobArtifacts, inputs_hash)));
}

Result<DownloadResult> WorkerClient::download_artifact(const std::string& run_id, const std::string& job_id,
                                                       const std::string& inputs_hash, const std::string& name,
                                                       const std::filesystem::path& part) {
  std::error_code ec;
  std::uintmax_t have = std::filesystem::exists(part, ec) ? std::filesystem::file_size(part, ec) : 0;
  if (ec) have = 0;
  std::string encoded_name;
  for (std::size_t start = 0; start <= name.size();) {  // keep '/' between path components
    const auto slash = name.find('/', start);
    encoded_name += util::percent_encode(name.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) break;
    encoded_name += '/';
    start = slash + 1;
  }
  const std::string path = "/job/" + util::percent_encode(job_id) + "/artifacts/" + encoded_name + "?" +
                           impl_->query(run_id, job_id, protocol::steps::kJobArtifacts, inputs_hash);
  httplib::Headers headers;
  if (have > 0) headers.emplace("Range", "bytes=" + std::to_string(have) + "-");

  // Hashed as the bytes arrive (a resumed file's first part before them): the file is not read
  // again once it is whole.
  DownloadResult out;
  util::Sha256Stream sha;
  // The partial file's bytes are hashed before asking: a slow read of a large one while the
  // worker's answer waits unread would outlast the worker's idle timeout.
  if (have > 0) {
    std::ifstream earlier(part, std::ios::binary);
    std::vector<char> chunk(1 << 18);
    std::uintmax_t left = have;
    while (left > 0 && earlier) {
      earlier.read(chunk.data(), static_cast<std::streamsize>(std::min<std::uintmax_t>(left, chunk.size())));
      const auto got = static_cast<std::uintmax_t>(earlier.gcount());
      if (got == 0) break;
      sha.update(chunk.data(), static_cast<std::size_t>(got));
      left -= got;
    }
    if (left > 0) return Error(ErrorKind::io, "cannot read the partial download of " + name);
  }
  BlockSink file(sha);
  int status = 0;
  std::string error_body;
  auto r = impl_->http.Get(
      path, headers,
      [&](const httplib::Response& resp) {
        status = resp.status;
        if (status == 206) {
          out.resumed = true;
          return file.open(part, std::ios::app);
        }
        if (status == 200) {
          (void)sha.finish_hex();  // the whole file comes: what was hashed of the partial one goes
          return file.open(part, std::ios::trunc);
        }
        return true;  // read the error body
      },
      [&](const char* data, std::size_t n) {
        if (status == 200 || status == 206) return file.add(data, n);
        if (error_body.size() < 4096) error_body.append(data, n);
        return true;
      });
  const bool written = file.close();
  if (!written) return Error(ErrorKind::io, "cannot write " + name);
  if (!r) return impl_->transport_error(r);
  if (status == 416 && have > 0) {
    // The partial file is already whole (or longer than the artifact): start over.
    if (!std::filesystem::remove(part, ec) || ec) return Error(ErrorKind::io, "cannot remove the partial download of " + name);
    return download_artifact(run_id, job_id, inputs_hash, name, part);
  }
  if (status != 200 && status != 206)
    return Error(kind_for_status(status), "download of " + name + " answered " + std::to_string(status) + ": " +
                                              detail_of(error_body));
  out.size_bytes = std::filesystem::file_size(part, ec);
  out.sha256 = sha.finish_hex();
  return out;
}

}  // namespace rayvault::controller
