// A typed, signed client for one worker's HTTP API. Every authenticated call builds a fresh
// envelope; the secret itself never leaves this process.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "protocol/json.hpp"
#include "util/error.hpp"
#include "util/time.hpp"

namespace rayvault::controller {

using protocol::json;

struct Endpoint {
  std::string host;
  int port = 8787;
  double timeout_sec = 20.0;  // connect and read timeout of each request
};

struct DownloadResult {
  std::uintmax_t size_bytes = 0;
  std::string sha256;
  bool resumed = false;  // continued a partial file with a Range request
};

class WorkerClient {
 public:
  WorkerClient(Endpoint endpoint, std::string secret, util::Clock clock = util::system_clock());
  ~WorkerClient();
  WorkerClient(WorkerClient&&) noexcept;

  // GET /health (no auth).
  Result<json> health();

  // POST /caps with a REGISTER_CAPS envelope (job_id caps-<node_id>).
  Result<json> caps(const std::string& run_id, const std::string& node_id);

  // POST /caps in the v0.5 form: HMAC-signed, or (plain == true) the plain token.
  Result<json> legacy_caps(const std::string& run_id, const std::string& node_id, bool plain);

  // POST /job. Adds payload_hmac when inputs_hash is not the payload's own hash.
  // force: ask the worker to run a finished job again (ignored by workers without "force").
  // priority: its place in the worker's queue (send only to workers that advertise "priority").
  Result<json> submit(const std::string& run_id, const std::string& job_id, const std::string& step_name,
                      const std::string& inputs_hash, const json& payload, bool force = false,
                      std::optional<int> priority = std::nullopt);

  // POST /job in the v0.5 form (legacy::job_body, HMAC-signed): a v0.5 worker runs the job before it
  // answers, so the answer is awaited up to wait_sec. The answer is tagged _compat_mode.
  Result<json> legacy_submit(const std::string& run_id, const std::string& job_id, const std::string& step_name,
                             const json& payload, double wait_sec);

  // GET /job/{job_id}, waiting up to wait_ms on the worker for a terminal state (0: answer now).
  Result<json> job_status(const std::string& run_id, const std::string& job_id, const std::string& inputs_hash,
                          int wait_ms = 0);

  // POST /jobs/watch (workers that advertise "watch"): `jobs` is a list of {run_id, job_id,
  // inputs_hash, status}; the worker answers the jobs whose status is no longer the one given,
  // holding the request up to wait_ms while none has (or, with `since`, until its change counter
  // moves). The answer {cursor, jobs, unchanged}.
  Result<json> watch_jobs(const json& jobs, std::optional<std::uint64_t> since, int wait_ms);

  // Closes the connection kept open to the worker (the next request opens another).
  void disconnect();

  // GET /job/{job_id}/logs: JSON lines.
  Result<std::string> job_logs(const std::string& run_id, const std::string& job_id, const std::string& inputs_hash);

  // GET /job/{job_id}/artifacts.
  Result<json> job_artifacts(const std::string& run_id, const std::string& job_id, const std::string& inputs_hash);

  // GET /job/{job_id}/artifacts/{name} into `part`, resuming from its current size with Range.
  // The caller verifies the hash and moves the file into place.
  Result<DownloadResult> download_artifact(const std::string& run_id, const std::string& job_id,
                                           const std::string& inputs_hash, const std::string& name,
                                           const std::filesystem::path& part);

  // GET /blobs/{sha256}?size=S (workers that advertise "blobs"): {held, size} or {held: false,
  // partial, uploading, room, room_detail?} (room: whether S bytes would fit now).
  Result<json> blob_state(const std::string& digest, std::uint64_t size);

  // PUT /blobs/{sha256}: bytes [offset, size) of `file`, read as they are sent. The answer {held,
  // size, stored}; error (invalid_input) when the worker refuses the bytes (they do not hash to
  // the digest), (conflict) when it holds another part than offset, (storage_full) for no room.
  Result<json> put_blob(const std::string& digest, const std::filesystem::path& file, std::uint64_t offset,
                        std::uint64_t size);

  // POST /job/{job_id}/cancel: the answer {ok, cancelled, job} (202: still stopping).
  Result<json> cancel(const std::string& run_id, const std::string& job_id, const std::string& inputs_hash,
                      const std::string& reason);
  const Endpoint& endpoint() const { return endpoint_; }

 private:
  struct Impl;
  Endpoint endpoint_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rayvault::controller
