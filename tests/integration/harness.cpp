// Harness implementation: httplib for raw HTTP, the platform layer for processes.
#include "tests/integration/harness.hpp"

#include <doctest/doctest.h>
#include <httplib.h>

#include <algorithm>
#include <fstream>
#include <thread>

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
      port_ = json::parse(*text)["port"].get<int>();
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
                         std::vector<std::pair<std::string, std::optional<std::string>>> env) {
  platform::ProcessSpec spec;
  spec.argv = {RAYVAULT_CONTROLLER_BIN};
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
  auto parsed = protocol::parse_json(out.out);
  if (parsed) out.doc = *parsed;
  INFO("controller stderr: " << err);
  return out;
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
    const auto r = http_get(port, "/job/" + job_id + "?" + signed_query(run_id, job_id, "JOB_STATUS", inputs_hash) +
                                      "&wait_ms=200");
    if (r.status == 200) {
      last = r.json_body()["job"];
      if (pred(last)) return last;
    }
  }
  return last;
}

std::string path_with_standin(const fs::path& dir, const std::string& tool, const std::string& script) {
  REQUIRE(util::write_file_atomic(dir / tool, "#!/bin/sh\n" + script + "\n").ok());
  fs::permissions(dir / tool, fs::perms::owner_all);
  const char* path = std::getenv("PATH");
  return dir.string() + ":" + (path ? path : "/usr/bin:/bin");
}

std::string sha256_of(const fs::path& file) {
  auto r = util::sha256_file_hex(file);
  return r ? *r : std::string();
}

}  // namespace rayvault::test
