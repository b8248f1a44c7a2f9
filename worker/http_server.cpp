// HTTP handlers. Each follows one order: authenticate, decode, call the engine, encode.
// This is the only translation unit of the worker that includes httplib.
#include "worker/http_server.hpp"

#include <httplib.h>

#include <charconv>
#include <cstdio>
#include <fstream>
#include <functional>

#include "protocol/envelope.hpp"
#include "protocol/errors.hpp"
#include "protocol/job_record.hpp"
#include "protocol/steps.hpp"
#include "util/crypto.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"
#include "worker/caps.hpp"
#include "worker/engine.hpp"

namespace rayvault::worker {
namespace {

using protocol::json;

constexpr const char* kWorkerVersion = RAYVAULT_VERSION;

void reply_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(protocol::dump_json(body), "application/json");
}

void reply_error(httplib::Response& res, const Error& e) {
  reply_json(res, protocol::http_status(e.kind), json{{"detail", e.message}});
}

void reply_detail(httplib::Response& res, int status, const std::string& message) {
  reply_json(res, status, json{{"detail", message}});
}

std::set<std::string> only(std::string_view step) { return {std::string(step)}; }

}  // namespace

std::vector<std::string> worker_protocol_features() {
  return {"wire_v1", "hmac_rotation", "payload_hmac", "run_aliases", "wait_ms", "artifact_download", "range", "force"};
}

struct WorkerServer::Impl {
  ServerConfig config;
  Engine& engine;
  CapsCache& caps;
  httplib::Server server;

  Impl(ServerConfig c, Engine& e, CapsCache& k) : config(std::move(c)), engine(e), caps(k) {}

  protocol::VerifyPolicy policy(std::set<std::string> steps) const {
    return protocol::VerifyPolicy{std::move(steps), config.secrets, config.clock(), protocol::kMaxSkewSeconds};
  }

  // Decodes a POST body: a JSON object whose message_type is `expected` (checked before the
  // envelope, as the contract says).
  Result<json> decode_post(const httplib::Request& req, std::string_view expected) const {
    auto body = protocol::parse_json(req.body);
    if (!body) return body.error();
    if (!body->is_object()) return Error(ErrorKind::invalid_input, "request body must be a JSON object");
    const auto mt = body->find("message_type");
    if (mt == body->end() || !mt->is_string() || util::trim(mt->get_ref<const std::string&>()) != expected)
      return Error(ErrorKind::invalid_input, "message_type must be '" + std::string(expected) + "'");
    return body;
  }

  // The envelope of a GET: job_id from the path, the other fields from the query string; each
  // trimmed, as in a body.
  protocol::Envelope query_envelope(const httplib::Request& req) const {
    auto param = [&req](const char* key) { return util::trim(req.get_param_value(key)); };
    return protocol::Envelope{param("run_id"),      util::trim(req.matches[1].str()), param("step_name"),
                              param("inputs_hash"), param("timestamp"),               param("auth_token")};
  }

  // Authenticates a GET on /job/{id}... and finds the job it names (through run aliases).
  Result<state::StoredJob> authorize_job_read(const httplib::Request& req, std::string_view step) {
    const auto env = query_envelope(req);
    if (auto ok = protocol::verify_envelope(env, policy(only(step))); !ok) return ok.error();
    auto found = engine.lookup(env.run_id, env.job_id);
    if (!found) return Error(ErrorKind::not_found, "job_id not found: " + env.job_id);
    if (!found->run_matches || found->job.record.inputs_hash != protocol::normalize_hash(env.inputs_hash))
      return Error(ErrorKind::forbidden, "job envelope mismatch");
    return found->job;
  }

  void health(const httplib::Request&, httplib::Response& res) {
    reply_json(res, 200,
               json{{"ok", true},
                    {"version", kWorkerVersion},
                    {"worker_id", engine.config().worker_id},
                    {"time", util::format_utc(config.clock())},
                    {"queue_depth", engine.queue_depth()},
                    {"caps", caps.get()}});
  }

  void post_caps(const httplib::Request& req, httplib::Response& res) {
    auto body = decode_post(req, "register_caps");
    if (!body) return reply_error(res, body.error());
    // /caps is not bound to its payload: the controller picks its own inputs_hash here.
    if (auto ok = protocol::verify_envelope(protocol::envelope_from_json(*body), policy(only(protocol::steps::kRegisterCaps)));
        !ok)
      return reply_error(res, ok.error());
    const json c = caps.get();
    json out{{"ok", true}, {"version", kWorkerVersion}, {"worker_id", engine.config().worker_id}, {"capabilities", c}};
    for (const char* key : {"os", "cpu", "ram_gb", "gpu_model", "vram_gb", "python_version", "ffmpeg_version",
                            "davinci_available"})
      out[key] = c.value(key, json());
    reply_json(res, 200, out);
  }

  void post_job(const httplib::Request& req, httplib::Response& res) {
    auto body = decode_post(req, "submit_job");
    if (!body) return reply_error(res, body.error());
    const auto env = protocol::envelope_from_json(*body);
    auto secret_index = protocol::verify_envelope(env, policy(protocol::steps::job_steps()));
    if (!secret_index) return reply_error(res, secret_index.error());

    json payload = json::object();
    if (const auto p = body->find("payload"); p != body->end() && !p->is_null()) {
      if (!p->is_object()) return reply_detail(res, 400, "payload must be an object");
      payload = *p;
    }
    // Bind the payload to the token: implicitly through inputs_hash, else through payload_hmac.
    const std::string claimed = protocol::normalize_hash(env.inputs_hash);
    if (protocol::inputs_hash(payload) != claimed && !config.allow_custom_inputs_hash) {
      bool bound = false;
      if (const auto h = body->find("payload_hmac"); h != body->end() && h->is_string()) {
        for (const auto& secret : config.secrets) {
          if (!secret.empty() && util::hex_equal_constant_time(protocol::payload_hmac(secret, env.timestamp, payload),
                                                               h->get<std::string>()))
            bound = true;
        }
      }
      if (!bound) return reply_detail(res, 401, "payload does not match inputs_hash");
    }
    // Extension: "force": true runs a finished job again (controller --force).
    const auto force = body->find("force");
    const bool forced = force != body->end() && force->is_boolean() && force->get<bool>();
    auto admitted = engine.submit(Submission{env.run_id, env.job_id, env.step_name, claimed, payload, forced});
    if (!admitted) return reply_error(res, admitted.error());
    json record = protocol::to_json(admitted->job.record);
    json out{{"ok", true}, {"idempotent", admitted->idempotent}};
    if (admitted->idempotent) {
      record["idempotent"] = true;
      record["cached_job_id"] = admitted->job.record.job_id;
      out["cached_job_id"] = admitted->job.record.job_id;
    }
    out["job"] = std::move(record);
    reply_json(res, 200, out);
  }

  void get_job(const httplib::Request& req, httplib::Response& res) {
    auto job = authorize_job_read(req, protocol::steps::kJobStatus);
    if (!job) return reply_error(res, job.error());
    if (req.has_param("wait_ms")) {
      long long wait_ms = 0;
      const std::string raw = req.get_param_value("wait_ms");
      const auto [p, ec] = std::from_chars(raw.data(), raw.data() + raw.size(), wait_ms);
      if (ec != std::errc() || p != raw.data() + raw.size() || wait_ms < 0)
        return reply_detail(res, 400, "wait_ms must be a whole number of milliseconds");
      wait_ms = std::min<long long>(wait_ms, config.max_wait_ms);
      if (wait_ms > 0 && !protocol::is_terminal_status(job->record.status)) {
        if (auto latest = engine.wait(job->record.job_id,
                                      std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms)))
          *job = std::move(*latest);
      }
    }
    reply_json(res, 200, json{{"ok", true}, {"job", protocol::to_json(job->record)}});
  }

  void get_logs(const httplib::Request& req, httplib::Response& res) {
    auto job = authorize_job_read(req, protocol::steps::kJobLogs);
    if (!job) return reply_error(res, job.error());
    const std::string text = state::render_log(job->record.job_id, engine.logs(job->record.job_id));
    res.status = 200;
    res.set_content(text, "text/plain; charset=utf-8");
  }

  void get_artifacts(const httplib::Request& req, httplib::Response& res) {
    auto job = authorize_job_read(req, protocol::steps::kJobArtifacts);
    if (!job) return reply_error(res, job.error());
    const auto& r = job->record;
    reply_json(res, 200,
               json{{"ok", true}, {"job_id", r.job_id}, {"status", r.status}, {"artifacts", r.artifacts},
                    {"receipt_path", r.receipt_path}});
  }

  void get_artifact_bytes(const httplib::Request& req, httplib::Response& res) {
    auto job = authorize_job_read(req, protocol::steps::kJobArtifacts);
    if (!job) return reply_error(res, job.error());
    const std::string name = req.matches[2].str();
    // Only a listed artifact is served, and only from inside the job's artifact folder.
    const json* entry = nullptr;
    for (const auto& a : job->record.artifacts)
      if (a.is_object() && a.value("name", "") == name) entry = &a;
    const fs::path path = entry ? util::resolve_within(util::path_from_utf8(job->artifact_dir), name) : fs::path();
    std::error_code ec;
    if (path.empty() || !fs::is_regular_file(path, ec)) return reply_detail(res, 404, "artifact not found: " + name);
    const auto size = fs::file_size(path, ec);
    if (ec) return reply_detail(res, 404, "artifact not found: " + name);
    if (!req.ranges.empty()) {
      const auto& [first, last] = req.ranges.front();
      if (req.ranges.size() > 1 || (first >= 0 && static_cast<std::uintmax_t>(first) >= size) ||
          (first < 0 && last <= 0)) {
        res.set_header("Content-Range", "bytes */" + std::to_string(size));
        return reply_detail(res, 416, "range not satisfiable (one range within " + std::to_string(size) + " bytes)");
      }
    }
    res.set_header("X-Artifact-SHA256", entry->value("sha256", ""));
    auto file = std::make_shared<std::ifstream>(path, std::ios::binary);
    res.set_content_provider(static_cast<std::size_t>(size), "application/octet-stream",
                             [file](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
                               std::vector<char> buf(std::min<std::size_t>(length, 1 << 16));
                               file->clear();
                               file->seekg(static_cast<std::streamoff>(offset));
                               file->read(buf.data(), static_cast<std::streamsize>(buf.size()));
                               const auto got = file->gcount();
                               if (got <= 0) return false;
                               return sink.write(buf.data(), static_cast<std::size_t>(got));
                             });
  }
};

WorkerServer::WorkerServer(ServerConfig config, Engine& engine, CapsCache& caps)
    : impl_(std::make_unique<Impl>(std::move(config), engine, caps)) {
  auto& s = impl_->server;
  Impl* self = impl_.get();
  using Handler = void (Impl::*)(const httplib::Request&, httplib::Response&);
  struct Route {
    bool post;
    const char* pattern;
    Handler handler;
  };
  static const Route kRoutes[] = {
      {false, "/health", &Impl::health},
      {true, "/caps", &Impl::post_caps},
      {true, "/job", &Impl::post_job},
      {false, R"(/job/([^/]+))", &Impl::get_job},
      {false, R"(/job/([^/]+)/logs)", &Impl::get_logs},
      {false, R"(/job/([^/]+)/artifacts)", &Impl::get_artifacts},
      {false, R"(/job/([^/]+)/artifacts/(.+))", &Impl::get_artifact_bytes},
  };
  for (const auto& route : kRoutes) {
    auto fn = [self, h = route.handler](const httplib::Request& req, httplib::Response& res) { (self->*h)(req, res); };
    if (route.post) s.Post(route.pattern, fn);
    else s.Get(route.pattern, fn);
  }
  s.set_tcp_nodelay(true);
  s.set_keep_alive_max_count(10000);
  s.set_keep_alive_timeout(30);
  s.set_read_timeout(30, 0);
  s.set_write_timeout(60, 0);
  s.set_payload_max_length(self->config.max_body_bytes);
  const int threads = self->config.threads;
  s.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<std::size_t>(threads)); };
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    reply_detail(res, 500, "internal error");
  });
  // Statuses httplib answers itself (unknown route, body too large, bad request) get a JSON detail.
  s.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    const char* text = res.status == 404   ? "Not Found"
                       : res.status == 413 ? "request body too large"
                       : res.status == 405 ? "Method Not Allowed"
                                           : "request error";
    reply_detail(res, res.status, text);
  });
  s.set_logger([](const httplib::Request& req, const httplib::Response& res) {
    // The path only: the query string carries tokens.
    std::fprintf(stderr, "%s %s %d\n", req.method.c_str(), req.path.c_str(), res.status);
  });
}

WorkerServer::~WorkerServer() = default;

Result<int> WorkerServer::bind() {
  auto& s = impl_->server;
  const auto& c = impl_->config;
  const int port = c.port == 0 ? s.bind_to_any_port(c.host) : (s.bind_to_port(c.host, c.port) ? c.port : -1);
  if (port <= 0)
    return Error(ErrorKind::unavailable, "cannot listen on " + c.host + ":" + std::to_string(c.port));
  return port;
}

void WorkerServer::serve() { impl_->server.listen_after_bind(); }

void WorkerServer::stop() { impl_->server.stop(); }

}  // namespace rayvault::worker
