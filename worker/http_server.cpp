// The worker's HTTP API on libmicrohttpd. Handlers follow one order: authenticate, decode, call
// the engine, encode. This is the only translation unit of the worker with a server library.
//
// Why libmicrohttpd (docs/security.md has the measurements): the worker faces every peer of the
// tailnet, and a thread-per-connection server is stalled by idle or slow connections and by long
// polls. Here a few polling threads serve any number of connections; the library caps connections
// per peer address and in all, closes idle ones, and bounds the memory of a request head. Bodies
// are refused before they are read when they are compressed, chunked or declared too large, and
// counted as they arrive otherwise. Long polls (`wait_ms`) hold no thread: the connection is
// suspended and resumed by one waiter thread when its job ends or its time is up; a watch
// (`POST /jobs/watch`) follows many jobs that way on one connection.
#include "worker/http_server.hpp"

#include <microhttpd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "platform/net.hpp"
#include "protocol/blobs.hpp"
#include "protocol/envelope.hpp"
#include "protocol/errors.hpp"
#include "protocol/job_record.hpp"
#include "protocol/steps.hpp"
#include "util/crypto.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"
#include "worker/blob_store.hpp"
#include "worker/caps.hpp"
#include "worker/engine.hpp"

namespace rayvault::worker {
namespace {

using protocol::json;

constexpr const char* kWorkerVersion = RAYVAULT_VERSION;

// How far past the body limit a declared body is still read (and thrown away) to answer 413.
constexpr std::uint64_t kDiscardBytes = 16u << 20;
constexpr int kMaxPriority = 1000;  // the priority a job may ask for, either way
constexpr std::size_t kMaxWatchedJobs = 256;  // jobs one watch may name (a batch has at most 256 in flight)

// What a handler answers: a status and a JSON or text body, or a byte range of a file.
struct Reply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  fs::path file;  // when set, the body is bytes [offset, offset + length) of this file
  std::uint64_t offset = 0, length = 0;
};

Reply json_reply(int status, const json& body) { return Reply{status, "application/json", protocol::dump_json(body), {}, {}, 0, 0}; }
Reply detail(int status, const std::string& message) { return json_reply(status, json{{"detail", message}}); }
Reply error_reply(const Error& e) { return detail(protocol::http_status(e.kind), e.message); }

// One request as the handlers see it: the decoded path, its query and headers, the whole body.
struct Request {
  std::string method, path;
  MHD_Connection* connection = nullptr;
  std::string body;
  std::string job_id, artifact;  // from /job/{job_id}[/artifacts/{artifact}]

  std::string param(const char* key) const {
    const char* v = MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, key);
    return v ? std::string(v) : std::string();
  }
  bool has_param(const char* key) const { return MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, key); }
  std::string header(const char* key) const {
    const char* v = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, key);
    return v ? std::string(v) : std::string();
  }
};

// A whole number of bytes as a query parameter or header gives it: digits only, no sign or spaces.
bool whole_number(std::string_view s, std::uint64_t& out) {
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && ec == std::errc() && p == s.data() + s.size();
}

// A byte range of `size` bytes asked by a Range header: whole (no header), one range, or 416.
struct RangeAnswer {
  enum Kind { whole, partial, unsatisfiable } kind = whole;
  std::uint64_t first = 0, last = 0;
};

RangeAnswer parse_range(const std::string& header, std::uint64_t size) {
  if (header.empty()) return {};
  const std::string h = util::trim(header);
  if (h.rfind("bytes=", 0) != 0 || h.find(',') != std::string::npos) return {RangeAnswer::unsatisfiable};
  const std::string spec = h.substr(6);
  const auto dash = spec.find('-');
  if (dash == std::string::npos) return {RangeAnswer::unsatisfiable};
  const std::string_view a(spec.data(), dash), b(spec.data() + dash + 1, spec.size() - dash - 1);
  std::uint64_t first = 0, last = 0;
  if (a.empty()) {  // the last b bytes
    if (!whole_number(b, last) || last == 0 || size == 0) return {RangeAnswer::unsatisfiable};
    return {RangeAnswer::partial, size - std::min(last, size), size - 1};
  }
  if (!whole_number(a, first) || first >= size) return {RangeAnswer::unsatisfiable};
  if (b.empty()) return {RangeAnswer::partial, first, size - 1};
  if (!whole_number(b, last) || last < first) return {RangeAnswer::unsatisfiable};
  return {RangeAnswer::partial, first, std::min(last, size - 1)};  // a range past the end is cut to it
}

}  // namespace

std::vector<std::string> worker_protocol_features() {
  return {"wire_v1", "hmac_rotation", "payload_hmac", "run_aliases", "wait_ms", "artifact_download", "range", "force", "cancel", "priority", "load", "watch", "blobs"};
}

// The access log: one "METHOD /path STATUS" line a request on stderr (the path only: query strings
// carry tokens). Lines gather in memory and a thread of its own writes them a block at a time, at
// least every 250 ms and at shutdown (one write a request cost the worker about a fifth of its
// throughput). A request thread only appends under a short lock: a stderr that does not drain
// stalls this thread, not the requests; past 1 MiB waiting, lines are dropped and counted.
class AccessLog {
 public:
  AccessLog() : writer_([this] { run(); }) {}
  ~AccessLog() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    writer_.join();
  }
  void add(std::string_view method, std::string_view path, int status) {
    std::lock_guard lock(mu_);
    if (pending_.size() >= kMaxPending) {
      ++dropped_;
      return;
    }
    pending_.append(method).append(" ").append(path).append(" ").append(std::to_string(status)).append("\n");
  }

 private:
  static constexpr std::size_t kMaxPending = 1u << 20;
  void run() {
    std::string out;
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait_for(lock, std::chrono::milliseconds(250), [this] { return stopping_; });
      out.swap(pending_);
      const std::size_t dropped = std::exchange(dropped_, 0);
      const bool last = stopping_;
      lock.unlock();
      if (dropped > 0) out += std::to_string(dropped) + " access log lines dropped (stderr did not keep up)\n";
      if (!out.empty()) {
        std::fwrite(out.data(), 1, out.size(), stderr);
        std::fflush(stderr);
        out.clear();
      }
      if (last) return;
      lock.lock();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::string pending_;
  std::size_t dropped_ = 0;
  bool stopping_ = false;
  std::thread writer_;  // last: starts once the rest is made
};

struct WorkerServer::Impl {
  ServerConfig config;
  AccessLog access_log;
  Engine& engine;
  CapsCache& caps;
  MHD_Daemon* daemon = nullptr;

  // A job a long poll waits on: until it is terminal (`known` empty: GET /job/{id}?wait_ms) or its
  // status is no longer `known` (a watch), or it is gone.
  struct Watched {
    std::string run_id, job_id, known, inputs_hash;
  };
  // What a handler asks of a request it holds: how long, on which job (GET /job/{id}) or jobs (a
  // watch, answered from this list when resumed: its body is gone by then), and (a watch's
  // `since`) until the worker's change counter moves from this value.
  struct Hold {
    std::chrono::milliseconds wait{0};
    std::optional<Watched> job;
    std::shared_ptr<const std::vector<Watched>> watch;
    std::optional<std::uint64_t> since;
    std::uint64_t seen = 0;  // the change counter before the jobs were read: moved since, answer now
  };
  bool ready(const Watched& w) {
    const auto found = engine.lookup_view(w.run_id, w.job_id);
    if (!found) return true;
    const std::string& status = found->view->job.record.status;
    return w.known.empty() ? protocol::is_terminal_status(status) : status != w.known;
  }
  // True when what a held request waits for has happened, the worker's change counter being `changes`.
  bool done(const Hold& h, std::uint64_t changes) {
    return (h.since && *h.since != changes) || (h.job && ready(*h.job)) ||
           (h.watch && std::any_of(h.watch->begin(), h.watch->end(), [&](const Watched& w) { return ready(w); }));
  }

  // Long polls: suspended connections, resumed by the waiter thread.
  struct LongPoll {
    MHD_Connection* connection;
    Hold hold;
    std::string peer;
    std::chrono::steady_clock::time_point deadline;
  };
  std::mutex polls_mu;
  std::vector<LongPoll> polls;
  std::map<std::string, int> polls_per_peer;
  std::thread waiter;
  std::atomic<bool> stopping{false};
  std::mutex stop_mu;
  std::condition_variable stop_cv;
  bool stop_requested = false;

  Impl(ServerConfig c, Engine& e, CapsCache& k) : config(std::move(c)), engine(e), caps(k) {
    secrets_now = std::make_shared<const std::vector<std::string>>(config.secrets);
  }

  // The secrets as they are now (a reload swaps them while requests are served).
  mutable std::mutex secrets_mu;
  std::shared_ptr<const std::vector<std::string>> secrets_now;
  std::shared_ptr<const std::vector<std::string>> secrets() const {
    std::lock_guard lock(secrets_mu);
    return secrets_now;
  }

  protocol::VerifyPolicy policy(std::set<std::string> steps) const {
    return protocol::VerifyPolicy{std::move(steps), *secrets(), config.clock(), protocol::kMaxSkewSeconds};
  }
  static std::set<std::string> only(std::string_view step) { return {std::string(step)}; }

  // Decodes a POST body: a JSON object whose message_type is `expected` (checked before the
  // envelope, as the contract says).
  static Result<json> decode_post(const Request& req, std::string_view expected) {
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
  static protocol::Envelope query_envelope(const Request& req) {
    auto p = [&req](const char* key) { return util::trim(req.param(key)); };
    return protocol::Envelope{p("run_id"), util::trim(req.job_id), p("step_name"), p("inputs_hash"),
                              p("timestamp"), p("auth_token")};
  }

  // Authenticates a GET on /job/{id}... and finds the job it names (through run aliases).
  // The job a signed read names, shared with the store's cache (not copied: status polls are hot).
  Result<std::shared_ptr<const state::JobView>> authorize_job_read(const Request& req, std::string_view step) {
    const auto env = query_envelope(req);
    if (auto ok = protocol::verify_envelope(env, policy(only(step))); !ok) return ok.error();
    auto found = engine.lookup_view(env.run_id, env.job_id);
    if (!found) return Error(ErrorKind::not_found, "job_id not found: " + env.job_id);
    if (!found->run_matches || found->view->job.record.inputs_hash != protocol::normalize_hash(env.inputs_hash))
      return Error(ErrorKind::forbidden, "job envelope mismatch");
    return found->view;
  }

  Reply health(const Request&) {
    // Extension: what the slots are doing, so a controller places a job where a slot is free.
    const EngineLoad l = engine.load();
    const int running = l.cpu_running + l.gpu_running;
    return json_reply(200, json{{"ok", true},
                                {"version", kWorkerVersion},
                                {"worker_id", engine.config().worker_id},
                                {"time", util::format_utc(config.clock())},
                                {"queue_depth", engine.queue_depth()},
                                {"running_jobs", running},
                                {"free_slots", std::max(0, l.cpu_slots - l.cpu_running - l.cpu_queued)},
                                {"load", {{"cpu_slots", l.cpu_slots},
                                          {"cpu_running", l.cpu_running},
                                          {"cpu_queued", l.cpu_queued},
                                          {"gpu_slots", l.gpu_slots},
                                          {"gpu_running", l.gpu_running},
                                          {"gpu_queued", l.gpu_queued}}},
                                {"caps", caps_now()}});
  }

  // The detected capabilities, and the blob store as it is now (its room changes with each upload).
  json caps_now() {
    json c = caps.get();
    if (const auto& blobs = engine.config().blobs; blobs && c.is_object()) c["blob_store"] = blobs->describe();
    return c;
  }

  // The envelope of a blob request: every field from the query string, bound to the digest in the
  // path (its inputs_hash). Error as the contract answers a bad envelope.
  Status authorize_blob(const Request& req, const std::string& digest, std::string_view step) const {
    auto p = [&req](const char* key) { return util::trim(req.param(key)); };
    const protocol::Envelope env{p("run_id"), p("job_id"), p("step_name"), p("inputs_hash"), p("timestamp"), p("auth_token")};
    if (auto ok = protocol::verify_envelope(env, policy(only(step))); !ok) return ok.error();
    if (protocol::normalize_hash(env.inputs_hash) != digest)
      return Error(ErrorKind::unauthorized, "the envelope is not bound to this blob (inputs_hash must be its digest)");
    return ok_status();
  }

  // GET /blobs/{sha256} (extension "blobs", a BLOB_STAT envelope in the query): what this worker
  // holds of the blob, so that a controller sends only what is missing.
  //   {"ok": true, "sha256", "held": true, "size"} | {"ok": true, "sha256", "held": false,
  //    "partial": bytes kept of an interrupted upload, "uploading": an upload is under way}
  Reply get_blob(const Request& req, const std::string& digest) {
    const auto& blobs = engine.config().blobs;
    if (!blobs) return detail(404, "this worker keeps no blob store");
    if (!is_blob_digest(digest)) return detail(400, "a blob is named by its SHA-256: 64 lowercase hex digits");
    if (auto ok = authorize_blob(req, digest, protocol::kBlobStat); !ok) return error_reply(ok.error());
    const BlobState st = blobs->stat(digest);
    json out{{"ok", true}, {"sha256", digest}, {"held", st.held}};
    if (st.held) {
      out["size"] = st.size;
    } else {
      out["partial"] = st.partial;
      out["uploading"] = st.uploading;
      // ?size=S: whether an upload of S bytes would find room now. A refusal answered before a
      // large body is read can reach the sender as a cut connection; asked first, it is plain.
      if (req.has_param("size")) {
        std::uint64_t size = 0;
        if (!whole_number(req.param("size"), size)) return detail(400, "size must be a whole number of bytes");
        const Status room = blobs->room_for(digest, size);
        out["room"] = room.ok();
        if (!room) out["room_detail"] = room.error().message;
      }
    }
    return json_reply(200, out);
  }

  Reply post_caps(const Request& req) {
    auto body = decode_post(req, "register_caps");
    if (!body) return error_reply(body.error());
    // /caps is not bound to its payload: the controller picks its own inputs_hash here.
    if (auto ok = protocol::verify_envelope(protocol::envelope_from_json(*body), policy(only(protocol::steps::kRegisterCaps)));
        !ok)
      return error_reply(ok.error());
    const json c = caps_now();
    json out{{"ok", true}, {"version", kWorkerVersion}, {"worker_id", engine.config().worker_id}, {"capabilities", c}};
    for (const char* key : {"os", "cpu", "ram_gb", "gpu_model", "vram_gb", "python_version", "ffmpeg_version",
                            "davinci_available"})
      out[key] = c.value(key, json());
    return json_reply(200, out);
  }

  Reply post_job(const Request& req) {
    auto body = decode_post(req, "submit_job");
    if (!body) return error_reply(body.error());
    const auto env = protocol::envelope_from_json(*body);
    auto secret_index = protocol::verify_envelope(env, policy(protocol::steps::job_steps()));
    if (!secret_index) return error_reply(secret_index.error());

    json payload = json::object();
    if (const auto p = body->find("payload"); p != body->end() && !p->is_null()) {
      if (!p->is_object()) return detail(400, "payload must be an object");
      payload = std::move(*p);  // taken, not copied: the body's other fields are read by name below
    }
    // Bind the payload to the token: implicitly through inputs_hash, else through payload_hmac.
    const std::string claimed = protocol::normalize_hash(env.inputs_hash);
    if (protocol::inputs_hash(payload) != claimed && !config.allow_custom_inputs_hash) {
      bool bound = false;
      if (const auto h = body->find("payload_hmac"); h != body->end() && h->is_string()) {
        for (const auto& secret : *secrets()) {
          if (!secret.empty() && util::hex_equal_constant_time(protocol::payload_hmac(secret, env.timestamp, payload),
                                                               h->get<std::string>()))
            bound = true;
        }
      }
      if (!bound) return detail(401, "payload does not match inputs_hash");
    }
    // Extension: "force": true runs a finished job again (controller --force).
    const auto force = body->find("force");
    const bool forced = force != body->end() && force->is_boolean() && force->get<bool>();
    // Extension: "priority": an integer; higher runs first among this worker's queued jobs.
    int priority = 0;
    if (const auto p = body->find("priority"); p != body->end() && !p->is_null()) {
      if (!p->is_number_integer() || p->get<long long>() < -kMaxPriority || p->get<long long>() > kMaxPriority)
        return detail(400, "priority must be an integer from -" + std::to_string(kMaxPriority) + " to " +
                               std::to_string(kMaxPriority));
      priority = p->get<int>();
    }
    Submission submission{env.run_id, env.job_id, env.step_name, claimed, std::move(payload), forced};
    submission.priority = priority;
    if (const auto known = engine.known_submission(submission)) return submit_answer(*known, true);
    auto admitted = engine.submit(submission);
    if (!admitted) return error_reply(admitted.error());
    return submit_answer(*state::make_view(std::move(admitted->job)), admitted->idempotent);
  }

  // {"cached_job_id"?, "idempotent", "job": RECORD, "ok": true}, keys sorted as dump_json writes
  // them, the RECORD text the view already holds (the idempotent answer is a hot path of retrying
  // clients).
  static Reply submit_answer(const state::JobView& view, bool idempotent) {
    std::string text = "{";
    if (idempotent) text += "\"cached_job_id\":" + protocol::dump_json(json(view.job.record.job_id)) + ",";
    text += std::string("\"idempotent\":") + (idempotent ? "true" : "false") + ",\"job\":" +
            (idempotent ? view.idempotent_text : view.record_text) + ",\"ok\":true}";
    return Reply{200, "application/json", std::move(text), {}, {}, 0, 0};
  }

  // POST /job/{id}/cancel (JOB_CANCEL envelope in a JSON body, message_type cancel_job, optional
  // reason). A queued job is cancelled at once (200); a running one is being stopped (202, follow
  // GET /job/{id}); a finished one is 409. The polling thread never waits for the stop.
  Reply post_cancel(const Request& req) {
    auto body = decode_post(req, "cancel_job");
    if (!body) return error_reply(body.error());
    auto env = protocol::envelope_from_json(*body);
    const std::string path_id = util::trim(req.job_id);
    if (!util::trim(env.job_id).empty() && util::trim(env.job_id) != path_id)
      return detail(400, "job_id in the body does not match the path");
    env.job_id = path_id;
    if (auto ok = protocol::verify_envelope(env, policy(only(protocol::steps::kJobCancel))); !ok) return error_reply(ok.error());
    auto found = engine.lookup(env.run_id, env.job_id);
    if (!found) return detail(404, "job_id not found: " + env.job_id);
    if (!found->run_matches || found->job.record.inputs_hash != protocol::normalize_hash(env.inputs_hash))
      return detail(403, "job envelope mismatch");
    std::string reason;
    if (const auto r = body->find("reason"); r != body->end() && r->is_string()) {
      for (const char c : util::trim(r->get_ref<const std::string&>()).substr(0, 500))
        reason.push_back(static_cast<unsigned char>(c) < 0x20 ? ' ' : c);
    }
    auto job = engine.cancel(found->job.record.job_id, reason, std::chrono::milliseconds(0));
    if (!job) return error_reply(job.error());
    const bool done = job->record.status == protocol::status::kCancelled;
    return json_reply(done ? 200 : 202, json{{"ok", true}, {"cancelled", done}, {"job", protocol::to_json(job->record)}});
  }

  // GET /job/{id}. With wait_ms, a job that is not terminal yet is held: `hold` receives how long
  // (the caller suspends the connection) and the answer comes when it is asked again.
  Reply get_job(const Request& req, Hold* hold) {
    const std::uint64_t seen = engine.change_count();
    auto found = authorize_job_read(req, protocol::steps::kJobStatus);
    if (!found) return error_reply(found.error());
    const state::JobView& view = **found;
    const state::StoredJob* job = &view.job;
    if (hold && req.has_param("wait_ms")) {
      long long wait_ms = 0;
      const std::string raw = req.param("wait_ms");
      const auto [p, ec] = std::from_chars(raw.data(), raw.data() + raw.size(), wait_ms);
      if (ec != std::errc() || p != raw.data() + raw.size() || wait_ms < 0)
        return detail(400, "wait_ms must be a whole number of milliseconds");
      wait_ms = std::min<long long>(wait_ms, config.max_wait_ms);
      if (wait_ms > 0 && !protocol::is_terminal_status(job->record.status)) {
        hold->wait = std::chrono::milliseconds(wait_ms);
        hold->job = Watched{job->record.run_id, job->record.job_id, "", job->record.inputs_hash};
        hold->seen = seen;
        return {};
      }
    }
    // {"job": RECORD, "ok": true}, as dump_json writes it (keys sorted), without building it.
    return Reply{200, "application/json", "{\"job\":" + view.record_text + ",\"ok\":true}", {}, {}, 0, 0};
  }

  // POST /jobs/watch (extension "watch"): many jobs followed with one long poll, so that a
  // controller following hundreds of jobs here holds one connection, not one a job. A JOB_WATCH
  // envelope bound to its payload (inputs_hash is the payload's hash):
  //   {"jobs": [{"run_id", "job_id", "inputs_hash", "status"}...], "wait_ms"?, "since"?}
  // `status` is the one the caller knows ("" or absent: any counts as news). The answer lists the
  // jobs whose status is not the one given ({"run_id", "job_id", "inputs_hash", "job": RECORD}) and
  // those that cannot be read (the same ids, "error": "not_found" | "forbidden", "detail"); with none
  // and wait_ms, it is held until one of them changes, or (with `since`) until the worker's change
  // counter is no longer `since`, or the wait ends. `cursor` is that counter as the answer was made:
  // the caller's next `since`, so that a job it adds in between is not missed.
  Reply post_watch(const Request& req, Hold* hold) {
    auto body = decode_post(req, "watch_jobs");
    if (!body) return error_reply(body.error());
    const auto env = protocol::envelope_from_json(*body);
    if (auto ok = protocol::verify_envelope(env, policy(only(protocol::steps::kJobWatch))); !ok) return error_reply(ok.error());
    const auto p = body->find("payload");
    if (p == body->end() || !p->is_object()) return detail(400, "payload must be an object");
    if (protocol::inputs_hash(*p) != protocol::normalize_hash(env.inputs_hash))
      return detail(401, "payload does not match inputs_hash");
    const auto jobs = p->find("jobs");
    if (jobs == p->end() || !jobs->is_array() || jobs->empty() || jobs->size() > kMaxWatchedJobs)
      return detail(400, "payload.jobs must list 1 to " + std::to_string(kMaxWatchedJobs) + " jobs");
    long long wait_ms = 0;
    if (const auto w = p->find("wait_ms"); w != p->end() && !w->is_null()) {
      if (!w->is_number_integer() || w->get<long long>() < 0) return detail(400, "wait_ms must be a whole number of milliseconds");
      wait_ms = std::min<long long>(w->get<long long>(), config.max_wait_ms);
    }
    std::optional<std::uint64_t> since;
    if (const auto v = p->find("since"); v != p->end() && !v->is_null()) {
      if (!v->is_number_unsigned()) return detail(400, "since must be a cursor the worker answered");
      since = v->get<std::uint64_t>();
    }
    auto list = std::make_shared<std::vector<Watched>>();
    for (std::size_t i = 0; i < jobs->size(); ++i) {
      const json& j = (*jobs)[i];
      auto field = [&j](const char* key) {
        const auto f = j.is_object() ? j.find(key) : j.end();
        return f != j.end() && f->is_string() ? util::trim(f->get_ref<const std::string&>()) : std::string();
      };
      Watched w{field("run_id"), field("job_id"), field("status"), protocol::normalize_hash(field("inputs_hash"))};
      if (w.run_id.empty() || w.job_id.empty())
        return detail(400, "payload.jobs[" + std::to_string(i) + "] needs run_id and job_id");
      list->push_back(std::move(w));
    }
    bool news = false;
    std::uint64_t cursor = 0;
    Reply answer = watch_answer(*list, &news, &cursor);
    if (!news && hold && wait_ms > 0 && !(since && *since != cursor)) {
      hold->wait = std::chrono::milliseconds(wait_ms);
      hold->watch = std::move(list);
      hold->since = since;
      hold->seen = cursor;
      return {};
    }
    return answer;
  }

  // The answer to a watch of `jobs` as they stand: {"cursor", "jobs", "ok", "unchanged"}, keys
  // sorted as dump_json writes them. *news: a job is listed (changed or unreadable).
  Reply watch_answer(const std::vector<Watched>& jobs, bool* news = nullptr, std::uint64_t* cursor_out = nullptr) {
    // Read before the jobs: a change after this point moves the counter past the cursor answered.
    const std::uint64_t cursor = engine.change_count();
    if (cursor_out) *cursor_out = cursor;
    std::size_t unchanged = 0;
    std::string listed;
    auto text = [](const std::string& v) { return protocol::dump_json(json(v)); };
    for (const Watched& w : jobs) {
      const auto found = engine.lookup_view(w.run_id, w.job_id);
      // Each item names the job as asked (run, job and inputs_hash), keys sorted.
      const std::string hash = "\"inputs_hash\":" + text(w.inputs_hash) + ",";
      const std::string ids = "\"job_id\":" + text(w.job_id) + ",\"run_id\":" + text(w.run_id) + "}";
      std::string item;
      if (!found) {
        item = "{\"detail\":" + text("job_id not found: " + w.job_id) + ",\"error\":\"not_found\"," + hash + ids;
      } else if (!found->run_matches || found->view->job.record.inputs_hash != w.inputs_hash) {
        item = "{\"detail\":\"job envelope mismatch\",\"error\":\"forbidden\"," + hash + ids;
      } else if (w.known.empty() || found->view->job.record.status != w.known) {
        item = "{" + hash + "\"job\":" + found->view->record_text + "," + ids;
      } else {
        ++unchanged;
        continue;
      }
      listed += (listed.empty() ? "" : ",") + item;
    }
    if (news) *news = !listed.empty();
    return Reply{200, "application/json",
                 "{\"cursor\":" + std::to_string(cursor) + ",\"jobs\":[" + listed + "],\"ok\":true,\"unchanged\":" +
                     std::to_string(unchanged) + "}",
                 {}, {}, 0, 0};
  }

  Reply get_logs(const Request& req) {
    auto found = authorize_job_read(req, protocol::steps::kJobLogs);
    if (!found) return error_reply(found.error());
    const state::StoredJob* job = &(*found)->job;
    Reply r;
    r.content_type = "text/plain; charset=utf-8";
    r.body = state::render_log(job->record.job_id, engine.logs(job->record.job_id));
    return r;
  }

  Reply get_artifacts(const Request& req) {
    auto found = authorize_job_read(req, protocol::steps::kJobArtifacts);
    if (!found) return error_reply(found.error());
    const state::StoredJob* job = &(*found)->job;
    const auto& r = job->record;
    return json_reply(200, json{{"ok", true}, {"job_id", r.job_id}, {"status", r.status}, {"artifacts", r.artifacts},
                                {"receipt_path", r.receipt_path}});
  }

  Reply get_artifact_bytes(const Request& req) {
    auto found = authorize_job_read(req, protocol::steps::kJobArtifacts);
    if (!found) return error_reply(found.error());
    const state::StoredJob* job = &(*found)->job;
    const std::string& name = req.artifact;
    // Only a listed artifact is served, and only from inside the job's artifact folder.
    const json* entry = nullptr;
    for (const auto& a : job->record.artifacts)
      if (protocol::string_field(a, "name") == name) entry = &a;
    const fs::path folder = util::path_from_utf8(job->artifact_dir);
    const fs::path path = entry ? util::resolve_within(folder, name) : fs::path();
    std::error_code ec;
    if (path.empty() || !fs::is_regular_file(path, ec)) return detail(404, "artifact not found: " + name);
    // What a job published is a plain file under the worker's root, reached by no link: a folder
    // or file swapped for a symlink, or a hard link to a file elsewhere, is not served.
    // The other links allowed are the worker's own: its blob store's (artifacts are blobs too)
    // and one for each job that pins the blob (it links the blob into its inputs while it runs).
    const auto links = fs::hard_link_count(path, ec);
    bool blob_link = false;
    if (!ec && links >= 2 && engine.config().blobs) {
      const std::string digest = protocol::string_field(*entry, "sha256");
      const fs::path blob = links <= 2u + static_cast<unsigned>(engine.config().blobs->pin_count(digest))
                                ? engine.config().blobs->path_of(digest)
                                : fs::path();
      std::error_code same;
      blob_link = !blob.empty() && fs::equivalent(blob, path, same) && !same;
    }
    if (!util::is_within(engine.config().root, folder) || ec || (links != 1 && !blob_link))
      return detail(404, "artifact not found: " + name);
    for (fs::path p = path; p != folder && p.has_relative_path() && p != p.parent_path(); p = p.parent_path())
      if (fs::is_symlink(fs::symlink_status(p, ec))) return detail(404, "artifact not found: " + name);
    if (fs::is_symlink(fs::symlink_status(folder, ec))) return detail(404, "artifact not found: " + name);
    const std::uint64_t size = fs::file_size(path, ec);
    if (ec) return detail(404, "artifact not found: " + name);
    const RangeAnswer range = parse_range(req.header(MHD_HTTP_HEADER_RANGE), size);
    if (range.kind == RangeAnswer::unsatisfiable) {
      Reply r = detail(416, "range not satisfiable (one range within " + std::to_string(size) + " bytes)");
      r.headers.emplace_back(MHD_HTTP_HEADER_CONTENT_RANGE, "bytes */" + std::to_string(size));
      return r;
    }
    Reply r;
    r.content_type = "application/octet-stream";
    r.file = path;
    r.headers.emplace_back("X-Artifact-SHA256", protocol::string_field(*entry, "sha256"));
    r.headers.emplace_back(MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
    if (range.kind == RangeAnswer::partial) {
      r.status = 206;
      r.offset = range.first;
      r.length = range.last - range.first + 1;
      r.headers.emplace_back(MHD_HTTP_HEADER_CONTENT_RANGE, "bytes " + std::to_string(range.first) + "-" +
                                                                std::to_string(range.last) + "/" + std::to_string(size));
    } else {
      r.length = size;
    }
    return r;
  }

  // Routes a whole request by splitting its path (no regular expressions: their recursion on a long
  // path would overflow the stack). hold: see get_job (null when already held once).
  Reply route(Request& req, Hold* hold) {
    const bool get = req.method == "GET" || req.method == "HEAD";
    const bool post = req.method == "POST";
    const auto wrong_method = [] { return detail(405, "Method Not Allowed"); };
    if (req.path == "/health") return get ? health(req) : wrong_method();
    if (req.path == "/caps") return post ? post_caps(req) : wrong_method();
    if (req.path == "/job") return post ? post_job(req) : wrong_method();
    if (req.path == "/jobs/watch") return post ? post_watch(req, hold) : wrong_method();
    if (req.path.rfind("/blobs/", 0) == 0) return get ? get_blob(req, req.path.substr(7)) : wrong_method();  // PUT: on_request
    constexpr std::string_view kJobPrefix = "/job/";
    if (req.path.rfind(kJobPrefix, 0) != 0) return detail(404, "Not Found");
    const std::string rest = req.path.substr(kJobPrefix.size());
    const auto slash = rest.find('/');
    req.job_id = rest.substr(0, slash);
    if (req.job_id.empty()) return detail(404, "Not Found");
    const std::string tail = slash == std::string::npos ? std::string() : rest.substr(slash + 1);
    if (slash == std::string::npos) return get ? get_job(req, hold) : wrong_method();
    if (tail == "logs") return get ? get_logs(req) : wrong_method();
    if (tail == "cancel") return post ? post_cancel(req) : wrong_method();
    if (tail == "artifacts") return get ? get_artifacts(req) : wrong_method();
    if (tail.rfind("artifacts/", 0) == 0 && tail.size() > 10) {
      req.artifact = tail.substr(10);
      return get ? get_artifact_bytes(req) : wrong_method();
    }
    return detail(404, "Not Found");
  }

  // --- libmicrohttpd glue ---------------------------------------------------------------------

  // What one request accumulates between the library's calls.
  struct Pending {
    std::string body;
    bool too_large = false;
    bool over_budget = false;  // the bodies being received in all would pass max_buffered_bytes
    bool held = false;         // suspended once as a long poll; answer now when called again
    std::shared_ptr<const std::vector<Watched>> watch;  // held: a watch's jobs
    // PUT /blobs/{sha256}: the body goes to the blob store as it arrives, never to `body`.
    bool blob_put = false;
    std::unique_ptr<BlobUpload> upload;  // null once it failed (the error below) or ended
    std::optional<Error> upload_error;
    std::atomic<std::size_t>* buffered = nullptr;  // the server's count of body bytes held
    ~Pending() {
      if (buffered) *buffered -= body.size();
    }
  };
  std::atomic<std::size_t> buffered{0};

  MHD_Result queue(MHD_Connection* c, const Request& req, const Reply& r) {
    MHD_Response* response = nullptr;
    if (!r.file.empty()) {
      auto file = std::make_unique<std::ifstream>(r.file, std::ios::binary);
      if (!*file) return queue(c, req, detail(404, "artifact not found"));
      file->seekg(static_cast<std::streamoff>(r.offset));
      response = MHD_create_response_from_callback(
          r.length, 64 * 1024,
          [](void* cls, std::uint64_t, char* buf, std::size_t max) -> ssize_t {
            auto* in = static_cast<std::ifstream*>(cls);
            in->read(buf, static_cast<std::streamsize>(max));
            const auto got = in->gcount();
            return got > 0 ? static_cast<ssize_t>(got) : MHD_CONTENT_READER_END_WITH_ERROR;
          },
          file.get(), [](void* cls) { delete static_cast<std::ifstream*>(cls); });
      if (response) (void)file.release();
    } else {
      response = MHD_create_response_from_buffer(r.body.size(), const_cast<char*>(r.body.data()), MHD_RESPMEM_MUST_COPY);
    }
    if (!response) return MHD_NO;
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, r.content_type.c_str());
    for (const auto& [k, v] : r.headers) MHD_add_response_header(response, k.c_str(), v.c_str());
    const MHD_Result ok = MHD_queue_response(c, static_cast<unsigned>(r.status), response);
    MHD_destroy_response(response);
    access_log.add(req.method, req.path, r.status);
    return ok;
  }

  // A refusal before the body is read: the connection closes after it.
  MHD_Result refuse(MHD_Connection* c, const Request& req, int status, const std::string& message) {
    return queue(c, req, detail(status, message));
  }

  MHD_Result on_request(MHD_Connection* c, const char* url, const char* method, const char* upload,
                        std::size_t* upload_size, void** state) {
    Request req;
    req.method = method ? method : "";
    req.path = url ? url : "";
    req.connection = c;
    auto* pending = static_cast<Pending*>(*state);
    if (!pending) {
      // The head is here and no byte of the body has been read: refuse what cannot be served.
      pending = new Pending;
      pending->buffered = &buffered;
      *state = pending;
      if (!req.header(MHD_HTTP_HEADER_CONTENT_ENCODING).empty())
        return refuse(c, req, 415, "Content-Encoding is not accepted: send the body as it is");
      if (!req.header(MHD_HTTP_HEADER_TRANSFER_ENCODING).empty())
        return refuse(c, req, 411, "a request body needs Content-Length (Transfer-Encoding is not accepted)");
      // Two Content-Length headers are how requests are smuggled past a proxy (RFC 9112 6.3).
      int lengths = 0;
      MHD_get_connection_values(
          c, MHD_HEADER_KIND,
          [](void* cls, MHD_ValueKind, const char* key, const char*) {
            if (util::ascii_lower(key ? key : "") == "content-length") ++*static_cast<int*>(cls);
            return MHD_YES;
          },
          &lengths);
      if (lengths > 1) return refuse(c, req, 400, "more than one Content-Length header");
      if (req.method == "PUT" && req.path.rfind("/blobs/", 0) == 0) return begin_blob_put(c, req, *pending);
      if (const std::string length = req.header(MHD_HTTP_HEADER_CONTENT_LENGTH); !length.empty()) {
        std::uint64_t n = 0;
        const auto [p, ec] = std::from_chars(length.data(), length.data() + length.size(), n);
        // A body somewhat over the limit is read and thrown away, so that a client that sends it
        // whole before reading (most do) still gets its 413; for a larger one the connection is
        // closed at once, before any of it is read.
        if (ec != std::errc() || n > config.max_body_bytes + kDiscardBytes) {
          std::fprintf(stderr, "%s %s closed: declared body of %s bytes\n", req.method.c_str(), req.path.c_str(),
                       length.c_str());
          return MHD_NO;
        }
        pending->too_large = n > config.max_body_bytes;
      }
      return MHD_YES;
    }
    if (pending->blob_put) return blob_put_data(c, req, *pending, upload, upload_size);
    if (*upload_size > 0) {
      if (pending->too_large || pending->body.size() + *upload_size > config.max_body_bytes) {
        pending->too_large = true;
      } else if (pending->over_budget || buffered.fetch_add(*upload_size) + *upload_size > config.max_buffered_bytes) {
        // Bodies held by all connections together are bounded too: past it, this one is dropped.
        if (!pending->over_budget) buffered -= *upload_size;
        pending->over_budget = true;
        buffered -= pending->body.size();
        std::string().swap(pending->body);
      } else {
        pending->body.append(upload, *upload_size);
      }
      *upload_size = 0;
      return MHD_YES;
    }
    if (pending->too_large) return queue(c, req, detail(413, "request body too large"));
    if (pending->over_budget)
      return queue(c, req, detail(503, "the worker is receiving too many request bodies at once; try again"));
    buffered -= pending->body.size();
    req.body = std::move(pending->body);
    pending->body.clear();

    Hold hold;
    Reply reply;
    try {
      reply = pending->watch ? watch_answer(*pending->watch) : route(req, pending->held || stopping ? nullptr : &hold);
    } catch (const std::exception&) {
      reply = detail(500, "internal error");
    }
    if (hold.wait.count() > 0) {
      auto watch = hold.watch;
      if (suspend(c, std::move(hold))) {
        pending->held = true;
        pending->watch = std::move(watch);
        return MHD_YES;
      }
    }
    if (hold.wait.count() > 0) reply = route(req, nullptr);  // no budget left: answer now
    return queue(c, req, reply);
  }

  // PUT /blobs/{sha256}?offset=N&size=S (extension "blobs", a BLOB_PUT envelope in the query bound
  // to the digest): bytes [offset, size) of the blob, Content-Length size - offset. Checked as the
  // head arrives, before any byte of the body is read; a refusal closes the connection. offset is
  // 0 or the size of the part an interrupted upload left (GET /blobs/{sha256} says which).
  MHD_Result begin_blob_put(MHD_Connection* c, const Request& req, Pending& pending) {
    const auto& blobs = engine.config().blobs;
    if (!blobs) return refuse(c, req, 404, "this worker keeps no blob store");
    const std::string digest = req.path.substr(7);
    if (!is_blob_digest(digest)) return refuse(c, req, 400, "a blob is named by its SHA-256: 64 lowercase hex digits");
    if (auto ok = authorize_blob(req, digest, protocol::kBlobPut); !ok)
      return queue(c, req, error_reply(ok.error()));
    std::uint64_t offset = 0, size = 0, length = 0;
    if (!whole_number(req.param("size"), size)) return refuse(c, req, 400, "size (the blob's whole size in bytes) is required");
    if (req.has_param("offset") && !whole_number(req.param("offset"), offset))
      return refuse(c, req, 400, "offset must be a whole number of bytes");
    if (offset > size) return refuse(c, req, 400, "offset is past the blob's size");
    if (!whole_number(req.header(MHD_HTTP_HEADER_CONTENT_LENGTH), length) || length != size - offset)
      return refuse(c, req, 400, "Content-Length must be size - offset (" + std::to_string(size - offset) + ")");
    if (const BlobState st = blobs->stat(digest); st.held)
      return queue(c, req, json_reply(200, json{{"ok", true}, {"sha256", digest}, {"held", true}, {"size", st.size}, {"stored", false}}));
    auto up = blobs->begin_upload(digest, offset, size);
    if (!up) {
      Reply r = error_reply(up.error());
      if (up.error().kind == ErrorKind::conflict) {
        const BlobState st = blobs->stat(digest);
        r = json_reply(409, json{{"detail", up.error().message}, {"partial", st.partial}, {"uploading", st.uploading}});
      }
      if (up.error().kind == ErrorKind::unavailable || up.error().kind == ErrorKind::conflict) r.headers.emplace_back("Retry-After", "1");
      return queue(c, req, r);
    }
    pending.blob_put = true;
    pending.upload = std::move(up).value();
    return MHD_YES;
  }

  // The body of a blob upload, a chunk at a time, then its answer: 201 once verified and stored.
  MHD_Result blob_put_data(MHD_Connection* c, const Request& req, Pending& pending, const char* data, std::size_t* size) {
    if (*size > 0) {
      if (pending.upload) {
        if (auto st = pending.upload->write(data, *size); !st) {
          pending.upload_error = st.error();
          pending.upload.reset();
        }
      }
      *size = 0;  // after a failure the rest is read and dropped, so the client sees the answer
      return MHD_YES;
    }
    if (pending.upload_error) return queue(c, req, error_reply(*pending.upload_error));
    if (!pending.upload) return queue(c, req, detail(500, "internal error"));
    const std::uint64_t bytes = pending.upload->expected();
    const auto st = pending.upload->finish();
    pending.upload.reset();
    if (!st) return queue(c, req, error_reply(st.error()));
    const std::string digest = req.path.substr(7);
    return queue(c, req, json_reply(201, json{{"ok", true}, {"sha256", digest}, {"held", true},
                                              {"size", engine.config().blobs->stat(digest).size}, {"stored", true},
                                              {"received", bytes}}));
  }

  // Suspends a long poll unless its peer (or the worker) has used up its budget of held polls.
  bool suspend(MHD_Connection* c, Hold&& hold) {
    const auto* info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const std::string peer = info ? platform::address_text(info->client_addr) : std::string();
    {
      std::lock_guard lock(polls_mu);
      if (stopping || static_cast<int>(polls.size()) >= config.max_long_polls ||
          polls_per_peer[peer] >= config.max_long_polls_per_peer)
        return false;
      // A job changed after the handler read it, and the waiter may have looked before this poll
      // was listed: when the change is what it waits for, it is answered now.
      if (const auto changes = engine.change_count(); changes != hold.seen && done(hold, changes)) return false;
      ++polls_per_peer[peer];
      const auto deadline = std::chrono::steady_clock::now() + hold.wait;
      polls.push_back({c, std::move(hold), peer, deadline});
      // Suspended under the lock, so the waiter cannot resume it first.
      MHD_suspend_connection(c);
    }
    return true;
  }

  // Resumes every held poll whose time is up, or (check_jobs) whose jobs have changed as it waits
  // for; all of them when stopping.
  void resume_ready(bool all, bool check_jobs) {
    std::lock_guard lock(polls_mu);
    const auto now = std::chrono::steady_clock::now();
    const std::uint64_t changes = engine.change_count();
    std::erase_if(polls, [&](const LongPoll& p) {
      bool go = all || now >= p.deadline;
      if (!go && check_jobs) go = done(p.hold, changes);
      if (!go) return false;
      if (--polls_per_peer[p.peer] <= 0) polls_per_peer.erase(p.peer);
      MHD_resume_connection(p.connection);
      return true;
    });
  }

  void waiter_loop() {
    std::uint64_t seen = engine.change_count();
    while (!stopping) {
      auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(250);
      {
        std::lock_guard lock(polls_mu);
        for (const auto& p : polls) until = std::min(until, p.deadline);
      }
      const std::uint64_t now_seen = engine.wait_for_change(seen, until);
      resume_ready(false, now_seen != seen);
      seen = now_seen;
    }
  }

  // Stops serving, once: held polls are resumed (and answered as they stand), then the library
  // closes every connection.
  void shutdown() {
    if (!daemon) return;
    stopping = true;
    if (waiter.joinable()) waiter.join();
    resume_ready(true, false);
    MHD_stop_daemon(daemon);
    daemon = nullptr;
  }
};

WorkerServer::WorkerServer(ServerConfig config, Engine& engine, CapsCache& caps)
    : impl_(std::make_unique<Impl>(std::move(config), engine, caps)) {}

WorkerServer::~WorkerServer() { impl_->shutdown(); }

// Never share the port with another process. POSIX: libmicrohttpd's default, SO_REUSEADDR (a
// second listener is still refused, and a restarted worker need not wait out the TIME_WAIT of the
// connections its predecessor had open; passing the option at all, even as "no reuse", drops it).
// Windows: SO_EXCLUSIVEADDRUSE.
#if defined(_WIN32)
const MHD_OptionItem kReuseOptions[] = {{MHD_OPTION_LISTENING_ADDRESS_REUSE, -1, nullptr}, {MHD_OPTION_END, 0, nullptr}};
#else
const MHD_OptionItem kReuseOptions[] = {{MHD_OPTION_END, 0, nullptr}};
#endif

Result<int> WorkerServer::bind() {
  auto& s = *impl_;
  const auto& c = s.config;
  auto address = platform::listen_address(c.host, c.port);
  if (!address) return address.error();
  unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
  if (address->ipv6) flags |= MHD_USE_IPv6;
  auto handler = [](void* cls, MHD_Connection* conn, const char* url, const char* method, const char*,
                    const char* upload, std::size_t* upload_size, void** state) {
    return static_cast<Impl*>(cls)->on_request(conn, url, method, upload, upload_size, state);
  };
  auto completed = [](void*, MHD_Connection*, void** state, MHD_RequestTerminationCode) {
    delete static_cast<Impl::Pending*>(*state);
    *state = nullptr;
  };
  s.daemon = MHD_start_daemon(
      flags, 0, nullptr, nullptr, handler, &s,
      MHD_OPTION_SOCK_ADDR, address->data(),
      MHD_OPTION_ARRAY, kReuseOptions,
      MHD_OPTION_THREAD_POOL_SIZE, static_cast<unsigned>(std::max(1, c.threads)),
      MHD_OPTION_CONNECTION_LIMIT, static_cast<unsigned>(c.max_connections),
      MHD_OPTION_PER_IP_CONNECTION_LIMIT, static_cast<unsigned>(c.max_connections_per_peer),
      MHD_OPTION_CONNECTION_TIMEOUT, static_cast<unsigned>(c.idle_timeout_sec),
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, static_cast<std::size_t>(c.max_head_bytes),
      MHD_OPTION_NOTIFY_COMPLETED, static_cast<MHD_RequestCompletedCallback>(completed), nullptr,
      MHD_OPTION_END);
  if (!s.daemon) return Error(ErrorKind::unavailable, "cannot listen on " + c.host + ":" + std::to_string(c.port));
  const auto* info = MHD_get_daemon_info(s.daemon, MHD_DAEMON_INFO_BIND_PORT);
  const int port = info ? static_cast<int>(info->port) : c.port;
  s.waiter = std::thread([&s] { s.waiter_loop(); });
  return port;
}

void WorkerServer::serve() {
  {
    std::unique_lock lock(impl_->stop_mu);
    impl_->stop_cv.wait(lock, [this] { return impl_->stop_requested; });
  }
  impl_->shutdown();
}

void WorkerServer::set_secrets(std::vector<std::string> secrets) {
  auto next = std::make_shared<const std::vector<std::string>>(std::move(secrets));
  std::lock_guard lock(impl_->secrets_mu);
  impl_->secrets_now = std::move(next);
}

void WorkerServer::stop() {
  // Notified under the lock: serve() cannot return, and the server be destroyed, while this
  // thread (the signal handler's) still uses it.
  std::lock_guard lock(impl_->stop_mu);
  impl_->stop_requested = true;
  impl_->stop_cv.notify_all();
}

}  // namespace rayvault::worker
