// Harness implementation: httplib for raw HTTP, the platform layer for processes.
#include "tests/integration/harness.hpp"

#include <doctest/doctest.h>
#include <httplib.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <fstream>
#include <thread>

#include "protocol/steps.hpp"
#include "state/job_store.hpp"
#include "util/crypto.hpp"
#include "util/files.hpp"

namespace rayvault::test {

TempDir::TempDir() : path(fs::temp_directory_path() / ("rv-it-" + util::random_hex(6))) { fs::create_directories(path); }
TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path, ec);
}

json HttpReply::json_body() const {
  auto parsed = protocol::parse_json(body);
  return parsed ? *parsed : json();
}

std::string HttpReply::detail() const {
  const json j = json_body();
  return j.is_object() && j.contains("detail") && j["detail"].is_string() ? j["detail"].get<std::string>() : body;
}

namespace {
HttpReply convert(const httplib::Result& r) {
  HttpReply out;
  if (!r) return out;
  out.status = r->status;
  out.body = r->body;
  for (const auto& [k, v] : r->headers) out.headers[k] = v;
  return out;
}
httplib::Client client(int port) {
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(5, 0);
  c.set_read_timeout(30, 0);
  c.set_tcp_nodelay(true);
  return c;
}
}  // namespace

HttpReply http_get(int port, const std::string& path, const std::map<std::string, std::string>& headers) {
  httplib::Headers h(headers.begin(), headers.end());
  auto c = client(port);
  return convert(c.Get(path, h));
}

HttpReply http_post(int port, const std::string& path, const std::string& body) {
  auto c = client(port);
  return convert(c.Post(path, body, "application/json"));
}

WorkerProcess::WorkerProcess(const fs::path& dir, std::string worker_id, WorkerOptions options)
    : dir_(dir), root_(dir / ("root-" + worker_id)), ready_(dir / (worker_id + ".ready")),
      log_(dir / (worker_id + ".log")), id_(std::move(worker_id)), options_(std::move(options)) {
  start();
}

WorkerProcess::~WorkerProcess() {
  if (child_) child_->terminate(std::chrono::seconds(5));
}

void WorkerProcess::start() {
  std::error_code ec;
  fs::remove(ready_, ec);
  platform::ProcessSpec spec;
  spec.argv = options_.launcher.empty() ? std::vector<std::string>{RAYVAULT_WORKER_BIN} : options_.launcher;
  spec.argv.insert(spec.argv.end(), {"--host", "127.0.0.1", "--port", "0", "--root", root_.string(), "--worker-id", id_,
                                     "--ready-file", ready_.string()});
  spec.argv.insert(spec.argv.end(), options_.args.begin(), options_.args.end());
  if (std::find(options_.args.begin(), options_.args.end(), "--slots") == options_.args.end())
    spec.argv.insert(spec.argv.end(), {"--slots", "2"});
  spec.env = {{"RAYVAULT_CLUSTER_SECRET", options_.secret},
              {"RAYVAULT_CLUSTER_SECRET_CURRENT", std::nullopt},
              {"RAYVAULT_CLUSTER_SECRET_PREVIOUS",
               options_.previous_secret.empty() ? std::nullopt : std::optional<std::string>(options_.previous_secret)}};
  spec.env.insert(spec.env.end(), options_.env.begin(), options_.env.end());
  auto child = platform::Child::spawn(spec, log_);
  REQUIRE_MESSAGE(child.ok(), "cannot start worker");
  child_.emplace(std::move(child).value());
  const auto deadline = std::chrono::steady_clock::now() + options_.ready_within;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto text = util::read_file(ready_); text.ok()) {
      const json ready = json::parse(*text);
      port_ = ready["port"].get<int>();
      pid_ = ready["pid"].get<long>();
      return;
    }
    REQUIRE_MESSAGE(child_->running(), "worker exited at start: " << output());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  FAIL("worker did not become ready in time: " << output());
}

std::string WorkerProcess::output() const {
  auto text = util::read_file(log_);
  return text ? *text : std::string();
}

void WorkerProcess::stop() {
  if (child_) CHECK(child_->terminate(std::chrono::seconds(15)) == 0);
  child_.reset();
}

void WorkerProcess::crash() {
  if (child_) child_->kill();
  child_.reset();
}

CliResult run_controller(const fs::path& cwd, const std::vector<std::string>& args,
                         std::vector<std::pair<std::string, std::optional<std::string>>> env,
                         const std::vector<std::string>& launcher) {
  platform::ProcessSpec spec;
  spec.argv = launcher;
  spec.argv.push_back(RAYVAULT_CONTROLLER_BIN);
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.cwd = cwd;
  spec.timeout = std::chrono::seconds(240);
  spec.env = {{"RAYVAULT_CLUSTER_SECRET", "s3cret"}, {"RAYVAULT_CLUSTER_SECRET_CURRENT", std::nullopt}};
  spec.env.insert(spec.env.end(), env.begin(), env.end());
  std::string err;
  spec.on_output_line = [&err](std::string_view l) { err += std::string(l) + "\n"; };
  auto r = platform::run_process(spec);
  REQUIRE(r.ok());
  CliResult out;
  out.exit_code = r->exit_code;
  out.out = r->stdout_text;
  out.err = err;
  auto parsed = protocol::parse_json(out.out);
  if (parsed) out.doc = *parsed;
  INFO("controller stderr: " << err);
  return out;
}

void write_nodes_file(const fs::path& cwd, const std::string& text) {
  REQUIRE(util::write_file_atomic(cwd / "state/cluster/nodes.json", text).ok());
}

void write_nodes(const fs::path& cwd, const std::vector<std::pair<std::string, int>>& nodes, double poll_interval) {
  json list = json::array();
  for (const auto& [id, port] : nodes)
    list.push_back({{"node_id", id}, {"host", "127.0.0.1"}, {"port", port}, {"enabled", true}, {"timeout_sec", 5}});
  const json doc{{"cluster_name", "test"},
                 {"state_dir", "state/cluster"},
                 {"auth", {{"secret_env", "RAYVAULT_CLUSTER_SECRET"}}},
                 {"controller", {{"node_id", "controller"}, {"poll_interval_sec", poll_interval}, {"poll_timeout_sec", 120}}},
                 {"nodes", list}};
  REQUIRE(util::write_file_atomic(cwd / "state/cluster/nodes.json", doc.dump(2)).ok());
}

fs::path make_video(const fs::path& dir, double seconds) {
  const fs::path out = dir / "sample video.mp4";  // a space, on purpose
  if (fs::exists(out)) return out;
  const std::string d = protocol::python_float_repr(seconds);
  platform::ProcessSpec spec;
  spec.argv = {"ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=duration=" + d + ":size=160x120:rate=10",
               "-f", "lavfi", "-i", "sine=frequency=440:duration=" + d, "-shortest", "-c:v", "mpeg4", "-c:a", "aac",
               out.string()};
  spec.timeout = std::chrono::seconds(60);
  auto r = platform::run_process(spec);
  REQUIRE(r.ok());
  REQUIRE(r->exit_code == 0);
  return out;
}

json job_body(const std::string& run_id, const std::string& job_id, const std::string& step, const json& payload,
              const std::string& secret, std::optional<std::string> inputs_hash) {
  const auto env = protocol::make_signed_envelope(run_id, job_id, step, inputs_hash.value_or(protocol::inputs_hash(payload)),
                                                  secret, std::chrono::system_clock::now());
  json body{{"message_type", "submit_job"}, {"payload", payload}};
  protocol::envelope_to_json(env, body);
  return body;
}

std::string signed_query(const std::string& run_id, const std::string& job_id, std::string_view step,
                         const std::string& inputs_hash, const std::string& secret) {
  const auto env = protocol::make_signed_envelope(run_id, job_id, std::string(step), inputs_hash, secret,
                                                  std::chrono::system_clock::now());
  auto enc = [](const std::string& v) { return httplib::detail::encode_query_param(v); };
  return "run_id=" + enc(env.run_id) + "&step_name=" + enc(env.step_name) + "&inputs_hash=" + enc(env.inputs_hash) +
         "&timestamp=" + enc(env.timestamp) + "&auth_token=" + enc(env.auth_token);
}

json poll_job(int port, const std::string& run_id, const std::string& job_id, const std::string& inputs_hash,
              const std::function<bool(const json&)>& pred, std::chrono::seconds deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  json last;
  while (std::chrono::steady_clock::now() < until) {
    const auto r = http_get(port, "/job/" + httplib::detail::encode_query_param(job_id) + "?" +
                                      signed_query(run_id, job_id, "JOB_STATUS", inputs_hash) + "&wait_ms=200");
    if (r.status == 200) {
      last = r.json_body()["job"];
      if (pred(last)) return last;
    }
  }
  return last;
}

struct PythonWorkerStandIn::Impl {
  std::string worker_id, fail_code, secret = "s3cret";
  Flavor flavor = Flavor::python;
  httplib::Server server;
  std::thread thread;
  int port = 0;
  std::mutex mu;
  std::map<std::string, json> jobs;  // job_id -> record
  std::map<std::string, int> polls;  // job_id -> status polls so far
  std::atomic<int> submissions{0}, artifact_bytes{0}, wait_ms{0}, status_polls{0};

  bool verify(const protocol::Envelope& env, const std::set<std::string>& steps, httplib::Response& res) const {
    auto ok = protocol::verify_envelope(env, protocol::VerifyPolicy{steps, {secret}, std::chrono::system_clock::now()});
    if (ok) return true;
    res.status = 401;
    res.set_content(json{{"detail", ok.error().message}}.dump(), "application/json");
    return false;
  }

  // The envelope of a GET, and the job it names; answers the refusal itself when there is none.
  std::optional<std::string> job_for(const httplib::Request& req, std::string_view step, httplib::Response& res) {
    auto p = [&req](const char* k) { return req.get_param_value(k); };
    const protocol::Envelope env{p("run_id"), req.matches[1].str(), p("step_name"), p("inputs_hash"), p("timestamp"),
                                 p("auth_token")};
    if (!verify(env, {std::string(step)}, res)) return std::nullopt;
    std::lock_guard lock(mu);
    const auto it = jobs.find(env.job_id);
    if (it == jobs.end()) {
      res.status = 404;
      res.set_content(json{{"detail", "job_id not found: " + env.job_id}}.dump(), "application/json");
      return std::nullopt;
    }
    if (it->second["run_id"] != env.run_id || it->second["inputs_hash"] != env.inputs_hash) {
      res.status = 403;
      res.set_content(json{{"detail", "job envelope mismatch"}}.dump(), "application/json");
      return std::nullopt;
    }
    return env.job_id;
  }

  void advance(json& r, int poll) {
    if (poll == 1 || flavor == Flavor::never_finishes) {
      r["status"] = "running";
      r["progress"] = 0.1;
      r["started_at"] = util::format_utc(std::chrono::system_clock::now());
      return;
    }
    r["finished_at"] = util::format_utc(std::chrono::system_clock::now());
    r["progress"] = 1.0;
    if (!fail_code.empty()) {
      r["status"] = "failed";
      r["exit_code"] = 2;
      r["error_code"] = fail_code;
      r["error_message"] = "the stand-in was told to fail with " + fail_code;
      return;
    }
    r["status"] = "succeeded";
    const std::string bytes = "{}";
    r["artifacts"] = json::array({{{"path", "/srv/rayvault/jobs/" + r["job_id"].get<std::string>() + "/artifacts/ffprobe.json"},
                                   {"sha256", util::sha256_hex(bytes)},
                                   {"size_bytes", bytes.size()}}});
    r["metrics"] = {{"media_path", "/srv/media/a.mp4"}};
    if (flavor == Flavor::older_rayvault) {
      r["artifacts"].push_back({{"path", "/srv/rayvault/x.bin"}, {"name", "x.bin"}, {"sha256", nullptr}, {"size_bytes", 1}});
      for (const char* key : {"error_code", "error_message", "cached_job_id"}) r[key] = nullptr;
    }
  }
};

PythonWorkerStandIn::PythonWorkerStandIn(std::string worker_id, std::string fail_code, Flavor flavor)
    : impl_(std::make_unique<Impl>()) {
  Impl* self = impl_.get();
  self->worker_id = std::move(worker_id);
  self->fail_code = std::move(fail_code);
  self->flavor = flavor;
  auto& s = self->server;
  s.Get("/health", [self](const httplib::Request&, httplib::Response& res) {
    json caps{{"os", "linux"}, {"cpu", "stand-in"}, {"ram_gb", 15.5}, {"gpu_model", ""}, {"vram_gb", 0.0},
              {"python_version", "3.11.7"}, {"ffmpeg_version", "ffmpeg version 5.1"}, {"davinci_available", false},
              {"platform", "linux"}, {"python", "3.11.7"}, {"ffmpeg", true}, {"ffprobe", true},
              {"openclaw_available", false}, {"gpu", false}, {"tts_provider", "mock"}, {"ui_session_active", false}};
    if (self->flavor == Flavor::older_rayvault) caps["protocol_features"] = {"wire_v1", "artifact_download"};
    res.set_content(json{{"ok", true}, {"version", "1.1.0"}, {"worker_id", self->worker_id},
                         {"time", util::format_utc(std::chrono::system_clock::now())}, {"queue_depth", 0}, {"caps", caps}}
                        .dump(),
                    "application/json");
  });
  s.Post("/job", [self](const httplib::Request& req, httplib::Response& res) {
    const json body = json::parse(req.body, nullptr, false);
    if (!body.is_object() || body.value("message_type", "") != "submit_job") {
      res.status = 400;
      res.set_content(R"({"detail":"message_type must be 'submit_job'"})", "application/json");
      return;
    }
    const auto env = protocol::envelope_from_json(body);
    if (!self->verify(env, protocol::steps::job_steps(), res)) return;
    ++self->submissions;
    std::lock_guard lock(self->mu);
    json record{{"run_id", env.run_id}, {"job_id", env.job_id}, {"step_name", protocol::steps::normalize(env.step_name)},
                {"inputs_hash", env.inputs_hash}, {"status", "queued"}, {"progress", 0.0}, {"message", "queued"},
                {"created_at", util::format_utc(std::chrono::system_clock::now())}, {"started_at", ""},
                {"finished_at", ""}, {"exit_code", 0}, {"metrics", json::object()}, {"artifacts", json::array()},
                {"error_code", ""}, {"error_message", ""}, {"idempotent", false}, {"cached_job_id", ""},
                {"worker_id", self->worker_id}, {"log_path", "/srv/rayvault/jobs/" + env.job_id + "/worker.log"},
                {"receipt_path", "/srv/rayvault/jobs/" + env.job_id + "/job_receipt.json"}};
    if (self->flavor == Flavor::older_rayvault)
      for (const char* key : {"started_at", "finished_at", "exit_code", "error_code", "error_message", "cached_job_id"})
        record[key] = nullptr;
    self->jobs[env.job_id] = record;
    res.set_content(json{{"ok", true}, {"idempotent", false}, {"job", record}}.dump(), "application/json");
  });
  s.Get(R"(/job/([^/]+))", [self](const httplib::Request& req, httplib::Response& res) {
    if (req.has_param("wait_ms")) ++self->wait_ms;
    const auto id = self->job_for(req, protocol::steps::kJobStatus, res);
    if (!id) return;
    ++self->status_polls;
    std::lock_guard lock(self->mu);
    json& r = self->jobs[*id];
    self->advance(r, ++self->polls[*id]);
    res.set_content(json{{"ok", true}, {"job", r}}.dump(), "application/json");
  });
  s.Get(R"(/job/([^/]+)/logs)", [self](const httplib::Request& req, httplib::Response& res) {
    const auto id = self->job_for(req, protocol::steps::kJobLogs, res);
    if (!id) return;
    res.set_content(json{{"event", "job_finished"}, {"job_id", *id}, {"level", "info"}, {"message", "done"},
                         {"ts", util::format_utc(std::chrono::system_clock::now())}}
                            .dump() + "\n",
                    "text/plain");
  });
  s.Get(R"(/job/([^/]+)/artifacts)", [self](const httplib::Request& req, httplib::Response& res) {
    const auto id = self->job_for(req, protocol::steps::kJobArtifacts, res);
    if (!id) return;
    std::lock_guard lock(self->mu);
    const json& r = self->jobs[*id];
    res.set_content(json{{"ok", true}, {"job_id", *id}, {"status", r["status"]}, {"artifacts", r["artifacts"]},
                         {"receipt_path", r["receipt_path"]}}
                        .dump(),
                    "application/json");
  });
  s.Get(R"(/job/([^/]+)/artifacts/(.+))", [self](const httplib::Request&, httplib::Response& res) {
    ++self->artifact_bytes;
    res.status = 404;
    res.set_content(R"({"detail":"Not Found"})", "application/json");
  });
  // The socket listens once bound: connections wait in its backlog until the thread accepts them.
  self->port = s.bind_to_any_port("127.0.0.1");
  REQUIRE(self->port > 0);
  self->thread = std::thread([self] { self->server.listen_after_bind(); });
}

PythonWorkerStandIn::~PythonWorkerStandIn() {
  // stop() only ends a loop that has begun: let the thread reach it first.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!impl_->server.is_running() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

int PythonWorkerStandIn::port() const { return impl_->port; }
int PythonWorkerStandIn::job_submissions() const { return impl_->submissions; }
int PythonWorkerStandIn::artifact_byte_requests() const { return impl_->artifact_bytes; }
int PythonWorkerStandIn::wait_ms_requests() const { return impl_->wait_ms; }
int PythonWorkerStandIn::status_polls() const { return impl_->status_polls; }

RawConnection::RawConnection(int port, const std::string& source) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd_ < 0) return;
  sockaddr_in from{};
  from.sin_family = AF_INET;
  ::inet_pton(AF_INET, source.c_str(), &from.sin_addr);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<std::uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0 ||
      ::connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

RawConnection::~RawConnection() {
  if (fd_ >= 0) ::close(fd_);
}

RawConnection::RawConnection(RawConnection&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

bool RawConnection::send(std::string_view bytes) {
  while (!bytes.empty()) {
    const auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

std::string RawConnection::read_until_closed(std::chrono::milliseconds within) {
  std::string out;
  const auto until = std::chrono::steady_clock::now() + within;
  while (fd_ >= 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[4096];
    const auto n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) {
      ::close(fd_);
      fd_ = -1;
      break;
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

bool RawConnection::closed_by_peer(std::chrono::milliseconds within) {
  (void)read_until_closed(within);
  return fd_ < 0;
}

long rss_kib(long pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  return 0;
}

long health_ms(int port) {
  const auto start = std::chrono::steady_clock::now();
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(5, 0);
  c.set_read_timeout(5, 0);
  auto r = c.Get("/health");
  if (!r || r->status != 200) return -1;
  return static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count());
}

std::string path_with_standin(const fs::path& dir, const std::string& tool, const std::string& script, bool answers_version) {
  // Like the real tool, the stand-in answers a version query at once (the worker's caps ask).
  const std::string version = answers_version ? "case \"$1\" in -version|--version) echo '" + tool +
                                                    " version 0.0 (stand-in)'; exit 0 ;; esac\n"
                                              : std::string();
  REQUIRE(util::write_file_atomic(dir / tool, "#!/bin/sh\n" + version + script + "\n").ok());
  fs::permissions(dir / tool, fs::perms::owner_all);
  const char* path = std::getenv("PATH");
  return dir.string() + ":" + (path ? path : "/usr/bin:/bin");
}

std::string path_with_holding_standin(const fs::path& dir, const std::string& tool, const fs::path& hold) {
  fs::create_directories(dir);
  return path_with_standin(dir, tool,
                           "n=0; while [ -e '" + hold.string() + "' ] && [ $n -lt 1200 ]; do sleep 0.05; n=$((n+1)); done\n"
                           "exec /usr/bin/" + tool + " \"$@\"");
}

std::string sha256_of(const fs::path& file) {
  auto r = util::sha256_file_hex(file);
  return r ? *r : std::string();
}

int times_queued(const fs::path& root, const std::string& job_id) {
  auto store = state::JobStore::open(root / "worker.db");
  REQUIRE(store.ok());
  int n = 0;
  for (const auto& l : (*store)->logs(job_id)) n += (l.event == "job_queued" || l.event == "job_requeued") ? 1 : 0;
  return n;
}

}  // namespace rayvault::test
