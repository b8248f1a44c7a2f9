// Test harness: real rayvault-worker processes on loopback, the real rayvault-controller, and a
// signed raw HTTP client for requests the controller would never send.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "platform/process.hpp"
#include "protocol/envelope.hpp"
#include "protocol/json.hpp"

namespace rayvault::test {

namespace fs = std::filesystem;
using protocol::json;

struct TempDir {
  fs::path path;
  TempDir();
  ~TempDir();
};

struct HttpReply {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;
  json json_body() const;
  std::string detail() const;
};

// Raw HTTP to 127.0.0.1:port (no signing of its own).
HttpReply http_get(int port, const std::string& path, const std::map<std::string, std::string>& headers = {});
HttpReply http_post(int port, const std::string& path, const std::string& body);

struct WorkerOptions {
  WorkerOptions() = default;
  WorkerOptions(std::string current, std::string previous, std::vector<std::string> extra_args = {},
                std::vector<std::pair<std::string, std::optional<std::string>>> extra_env = {})
      : secret(std::move(current)), previous_secret(std::move(previous)), args(std::move(extra_args)),
        env(std::move(extra_env)) {}
  std::string secret = "s3cret";
  std::string previous_secret;
  std::vector<std::string> args;                        // extra flags
  std::vector<std::pair<std::string, std::optional<std::string>>> env;  // extra environment
  std::vector<std::string> launcher;  // e.g. {"wine", ".../rayvault-worker.exe"}; default: the Linux worker
  std::chrono::seconds ready_within{20};
};

class WorkerProcess {
 public:
  // Starts a worker with its root under dir, on a free port, and waits (with a deadline) for its
  // ready file. Fails the test when it does not come up.
  WorkerProcess(const fs::path& dir, std::string worker_id, WorkerOptions options = {});
  ~WorkerProcess();
  int port() const { return port_; }
  long pid() const { return pid_; }
  const fs::path& root() const { return root_; }
  const std::string& id() const { return id_; }
  std::string output() const;  // what the worker printed
  void stop();                 // SIGTERM, as a service stop
  void crash();                // SIGKILL, as a power cut
  void start();                // again, on the same root (a new port)

 private:
  fs::path dir_, root_, ready_, log_;
  std::string id_;
  WorkerOptions options_;
  std::optional<platform::Child> child_;
  int port_ = 0;
  long pid_ = 0;
};

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;  // what it printed on stderr
  json doc;         // stdout parsed (null when it is not JSON)
};

// Runs rayvault-controller in cwd with args; env entries are added to the environment. A launcher
// (e.g. the test tailnet's `exec` on the controller host) goes before the program.
CliResult run_controller(const fs::path& cwd, const std::vector<std::string>& args,
                         std::vector<std::pair<std::string, std::optional<std::string>>> env = {},
                         const std::vector<std::string>& launcher = {});

// Writes `text` as cwd/state/cluster/nodes.json.
void write_nodes_file(const fs::path& cwd, const std::string& text);
// Writes cwd/state/cluster/nodes.json with one enabled worker node per (node_id, port).
void write_nodes(const fs::path& cwd, const std::vector<std::pair<std::string, int>>& nodes, double poll_interval = 0.2);

// A video with ffmpeg's lavfi sources (test pattern and a tone), `seconds` long.
fs::path make_video(const fs::path& dir, double seconds);

// A signed POST /job body.
json job_body(const std::string& run_id, const std::string& job_id, const std::string& step, const json& payload,
              const std::string& secret = "s3cret", std::optional<std::string> inputs_hash = std::nullopt);

// The query string of a signed GET for job_id with a control step.
std::string signed_query(const std::string& run_id, const std::string& job_id, std::string_view step,
                         const std::string& inputs_hash, const std::string& secret = "s3cret");

// Polls GET /job/{id} until `pred` holds for the record or the deadline passes; the last record.
json poll_job(int port, const std::string& run_id, const std::string& job_id, const std::string& inputs_hash,
              const std::function<bool(const json&)>& pred, std::chrono::seconds deadline = std::chrono::seconds(60));

std::string sha256_of(const fs::path& file);

// How often a worker (its root folder) queued a job: its job_queued and job_requeued log events.
int times_queued(const fs::path& root, const std::string& job_id);

// A stand-in for a deployed Python worker (version 1.1.0), for what a test cannot run here: the
// contract's endpoints on loopback with the contract's envelope checks, records whose unset fields
// are "", caps without protocol_features, and no artifact bytes (GET /job/{id}/artifacts/{name} is
// 404, as on a Python node). A job answers `queued`, then `running`, then `succeeded` with one
// listed artifact, or `failed` with `fail_code` (exit_code 2) when one is given.
// Flavor::older_rayvault answers as this project's worker 2.0.0 did and as a careless peer might:
// null for unset RECORD fields, `artifact_download` advertised, and an artifact row whose sha256
// is null.
class PythonWorkerStandIn {
 public:
  enum class Flavor { python, older_rayvault, never_finishes };
  explicit PythonWorkerStandIn(std::string worker_id, std::string fail_code = "", Flavor flavor = Flavor::python);
  ~PythonWorkerStandIn();
  int port() const;
  int job_submissions() const;        // POST /job that passed the envelope checks
  int artifact_byte_requests() const;  // GET /job/{id}/artifacts/{name}, which a controller must not send
  int wait_ms_requests() const;        // status polls carrying wait_ms, which a Python node ignores
  int status_polls() const;            // GET /job/{id} that passed the envelope checks

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A raw TCP connection to 127.0.0.1:port from another loopback address (the hostile peer's, so
// that per-address limits tell it from the test's good client on 127.0.0.1). Linux only.
class RawConnection {
 public:
  explicit RawConnection(int port, const std::string& source = "127.0.0.2");
  ~RawConnection();
  RawConnection(RawConnection&& other) noexcept;
  bool connected() const { return fd_ >= 0; }
  bool send(std::string_view bytes);
  // Reads until the peer closes or `within` passes; what arrived.
  std::string read_until_closed(std::chrono::milliseconds within);
  // True when the peer closes the connection (or resets it) within `within`.
  bool closed_by_peer(std::chrono::milliseconds within);

 private:
  int fd_ = -1;
};

// Resident memory of a process in KiB (from /proc), 0 when unknown.
long rss_kib(long pid);

// Milliseconds a fresh GET /health from 127.0.0.1 takes; -1 when it fails.
long health_ms(int port);

// Writes a shell script named `tool` into dir and returns a PATH value that finds it first: a
// stand-in for a tool's misbehaviour (hanging, printing bytes that are not UTF-8, ...). Like the
// real tool it answers -version and --version at once, unless answers_version is false.
std::string path_with_standin(const fs::path& dir, const std::string& tool, const std::string& script,
                              bool answers_version = true);

// path_with_standin for `tool` (in /usr/bin) that holds each call while the file `hold` exists (up
// to 60 s), then runs the real tool: jobs that stay running until a test lets them go.
std::string path_with_holding_standin(const fs::path& dir, const std::string& tool, const fs::path& hold);

}  // namespace rayvault::test
