// Job placement and failover.
#include "controller/dispatch.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <thread>

#include "controller/mesh.hpp"
#include "controller/staging.hpp"
#include "controller/sync.hpp"
#include "protocol/envelope.hpp"
#include "protocol/errors.hpp"
#include "protocol/ids.hpp"
#include "protocol/job_record.hpp"
#include "protocol/legacy.hpp"
#include "protocol/steps.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"

namespace rayvault::controller {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Attempt {
  bool final = false;   // the job's answer (success or a failure that is not the node's fault)
  std::string outcome;  // node_fault, lost, timed_out, unreachable (when !final)
  std::string reason;   // why the node failed, when !final
  json output;
};

json attempt_row(const state::NodeEntry& node, const std::string& outcome, const std::string& error,
                 const std::string& started_at, const std::string& finished_at) {
  return {{"node_id", node.node_id}, {"host", node.host},         {"port", node.port},
          {"outcome", outcome},      {"error", error},            {"started_at", started_at},
          {"finished_at", finished_at}};
}

// Runs the job on a v0.5 node: one signed POST /job in the v0.5 form, which the node answers when
// the job has run; the answer is the job's record. A v0.5 node serves no log, status or artifact
// bytes, so the receipt holds its answer and no artifacts.
Attempt run_legacy(const Cluster& cluster, state::Ledger& ledger, const state::NodeEntry& node, const JobRequest& req,
                   const json& attempts) {
  const auto& cc = cluster.config().controller;
  auto client = cluster.client_for(node, cc.request_timeout_sec);
  const std::string started_at = util::now_utc();
  const auto started = Clock::now();
  const std::string step = protocol::steps::normalize(req.step_name);
  auto answer = client.legacy_submit(req.run_id, req.job_id, step, req.payload, cc.poll_timeout_sec);
  if (!answer) {
    const bool refused = answer.error().kind != ErrorKind::unavailable;
    return {false, refused ? "node_fault" : "unreachable", answer.error().message, {}};
  }
  const json& a = *answer;
  const json job = a.contains("job") && a["job"].is_object() ? a["job"] : a;
  std::string status = protocol::string_field(job, "status");
  const bool said_ok = !(a.contains("ok") && a["ok"].is_boolean() && !a["ok"].get<bool>());
  if (status.empty()) status = said_ok ? "completed" : "failed";
  // An error is "CODE: message" or a message alone.
  std::string error = protocol::string_field(job, "error");
  if (error.empty()) error = protocol::string_field(job, "error_message");
  std::string code = protocol::string_field(job, "error_code");
  if (code.empty()) {
    const auto colon = error.find(':');
    const std::string head = error.substr(0, colon);
    if (colon != std::string::npos && !head.empty() &&
        std::all_of(head.begin(), head.end(), [](char c) { return (c >= 'A' && c <= 'Z') || c == '_' || (c >= '0' && c <= '9'); }))
      code = head;
  }
  const bool succeeded = said_ok && error.empty() && (status == "completed" || status == protocol::status::kSucceeded);
  if (!succeeded && (status == "error" || protocol::is_node_fault(code))) {
    std::string why = error.empty() ? status : error;
    if (!code.empty() && why.rfind(code, 0) != 0) why = code + ": " + why;
    return {false, "node_fault", why, {}};
  }

  const std::string finished_at = util::now_utc();
  json rows = attempts;
  rows.push_back(attempt_row(node, status, succeeded ? "" : (code.empty() ? error : code), started_at, finished_at));
  const fs::path dir = cluster.receipt_dir(req.run_id, req.job_id);
  const fs::path receipt_path = dir / "job_receipt.json";
  const json log_line{{"event", "legacy_v05"}, {"job_id", req.job_id}, {"level", "info"},
                      {"message", "a v0.5 worker keeps no log the controller can read; its answer is job_status in the receipt"},
                      {"ts", finished_at}};
  if (auto st = util::write_file_atomic(dir / "worker.log", protocol::dump_json(log_line) + "\n"); !st)
    return {false, "node_fault", "cannot write the receipt folder: " + st.error().message, {}};
  const int exit_code = succeeded ? 0 : (code.empty() ? 1 : 2);
  const std::string compat(protocol::legacy::kCompatModeHmac);
  const json receipt{{"mode", "remote"},
                     {"node_id", node.node_id},
                     {"run_id", req.run_id},
                     {"job_id", req.job_id},
                     {"inputs_hash", req.inputs_hash},
                     {"status", status},
                     {"exit_code", exit_code},
                     {"finished_at", finished_at},
                     {"job_status", job},
                     {"artifacts", json::array()},
                     {"downloaded_artifacts", json::array()},
                     {"artifacts_dir", util::u8(dir / "artifacts")},
                     {"artifacts_zip", ""},
                     {"remote_receipt_path", ""},
                     {"log_path", util::u8(dir / "worker.log")},
                     {"step_name", step},
                     {"remote_job_id", req.job_id},
                     {"host", node.host},
                     {"port", node.port},
                     {"worker_id", a.value("worker_id", json(""))},
                     {"error_code", code},
                     {"error_message", error},
                     {"metrics", job.contains("result") && job["result"].is_object() ? job["result"] : json::object()},
                     {"artifact_download", false},
                     {"synced_at", finished_at},
                     {"_compat_mode", compat},
                     {"attempts", rows}};
  if (auto st = util::write_file_atomic(receipt_path, protocol::dump_json(receipt, 2)); !st)
    return {false, "node_fault", "cannot write the receipt: " + st.error().message, {}};
  const long long ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
  (void)ledger.record(state::LedgerEntry{req.run_id, req.job_id, step, req.inputs_hash, "remote", node.node_id, node.host,
                                         node.port, req.job_id, status, exit_code, started_at, finished_at, ms,
                                         util::u8(receipt_path), protocol::dump_json(rows)});
  json out{{"ok", succeeded},
           {"mode", "remote"},
           {"run_id", req.run_id},
           {"job_id", req.job_id},
           {"step_name", step},
           {"inputs_hash", req.inputs_hash},
           {"status", status},
           {"node_id", node.node_id},
           {"idempotent", false},
           {"exit_code", exit_code},
           {"error_code", code},
           {"message", succeeded ? std::string("completed on a v0.5 worker") : error},
           {"remote_job_id", req.job_id},
           {"artifacts_downloaded", 0},
           {"receipt_path", util::u8(receipt_path)},
           {"_compat_mode", compat},
           {"attempts", rows}};
  return {true, status, {}, out};
}

// Runs the job on one node and follows it to a terminal state. `attempts` are the attempts before
// this one; this one's row is added to what the receipt records when it is the final one.
Attempt run_remote(const Cluster& cluster, state::Ledger& ledger, const state::NodeEntry& node, const json& caps,
                   const JobRequest& given, const DispatchOptions& opts, const json& attempts) {
  if (protocol::string_field(caps, "_compat_mode") == protocol::legacy::kCompatModeHmac)
    return run_legacy(cluster, ledger, node, given, attempts);
  // A worker that keeps blobs gets the input files themselves, and the job named by their bytes.
  const bool stage = given.staged && has_protocol_feature(caps, "blobs");
  JobRequest staged_req;
  if (stage) {
    staged_req = given;
    staged_req.payload = given.staged->payload;
    staged_req.inputs_hash = given.staged->inputs_hash;
  }
  const JobRequest& req = stage ? staged_req : given;
  const auto& cc = cluster.config().controller;
  auto client = cluster.client_for(node, cc.request_timeout_sec);
  const std::string submitted_at = util::now_utc();
  const auto started = Clock::now();
  std::optional<int> priority = has_protocol_feature(caps, "priority") ? opts.priority : std::nullopt;
  // The ledger names the node before the job is sent: a controller stopped in between (Ctrl-C in a
  // batch) leaves a row that the next run follows on this node instead of sending the job elsewhere.
  {
    json rows = attempts;
    rows.push_back(attempt_row(node, "submitting", "", submitted_at, ""));
    (void)ledger.record(state::LedgerEntry{req.run_id, req.job_id, protocol::steps::normalize(req.step_name),
                                           req.inputs_hash, "remote", node.node_id, node.host, node.port, req.job_id,
                                           "submitting", std::nullopt, submitted_at, "", 0,
                                           util::u8(cluster.receipt_dir(req.run_id, req.job_id) / "job_receipt.json"),
                                           protocol::dump_json(rows)});
  }
  UploadReport uploaded;
  auto upload = [&]() -> std::optional<Attempt> {
    auto sent = upload_inputs(client, given.staged->files);
    if (sent) {
      uploaded.bytes_sent += sent->bytes_sent;
      uploaded.uploaded += sent->uploaded;
      uploaded.held += sent->held;
      return std::nullopt;
    }
    const ErrorKind kind = sent.error().kind;
    const std::string why = "staging the input files: " + sent.error().message;
    if (kind != ErrorKind::invalid_input && kind != ErrorKind::io)
      return Attempt{false, kind == ErrorKind::unavailable ? "unreachable" : "node_fault", why, {}};
    // A file of this machine that changed or cannot be read: no other node would do better.
    const std::string finished_at = util::now_utc();
    json rows = attempts;
    rows.push_back(attempt_row(node, "failed", std::string(protocol::codes::kInvalidInput), submitted_at, finished_at));
    (void)ledger.record(state::LedgerEntry{req.run_id, req.job_id, protocol::steps::normalize(req.step_name), req.inputs_hash,
                                           "remote", node.node_id, node.host, node.port, req.job_id, "failed", 2,
                                           submitted_at, finished_at, 0, "", protocol::dump_json(rows)});
    return Attempt{true, "failed", {},
                   json{{"ok", false}, {"mode", "remote"}, {"run_id", req.run_id}, {"job_id", req.job_id},
                        {"step_name", protocol::steps::normalize(req.step_name)}, {"inputs_hash", req.inputs_hash},
                        {"status", "failed"}, {"node_id", node.node_id}, {"idempotent", false}, {"exit_code", 2},
                        {"error_code", std::string(protocol::codes::kInvalidInput)}, {"message", why},
                        {"receipt_path", ""}, {"attempts", rows}}};
  };
  if (stage)
    if (auto failed = upload()) return *failed;
  // A batch follows the job with the node's other jobs: the watch is told before the job is sent
  // (after its files: a long upload would keep the node's rounds short all along).
  const bool watched = opts.watch && has_protocol_feature(caps, "watch");
  std::optional<JobWatch::Submitting> submitting;
  if (watched) submitting.emplace(opts.watch->submitting(node));
  auto submitted = client.submit(req.run_id, req.job_id, req.step_name, req.inputs_hash, req.payload,
                                 req.force && has_protocol_feature(caps, "force"), priority);
  // A blob that went between its upload and the job (the worker made room for others): once more.
  if (stage && !submitted && submitted.error().kind == ErrorKind::conflict) {
    if (auto failed = upload()) return *failed;
    submitted = client.submit(req.run_id, req.job_id, req.step_name, req.inputs_hash, req.payload,
                              req.force && has_protocol_feature(caps, "force"), priority);
  }
  if (!submitted) {
    const bool refused = submitted.error().kind != ErrorKind::unavailable;
    return {false, refused ? "node_fault" : "unreachable", submitted.error().message, {}};
  }
  const bool idempotent = submitted->contains("idempotent") && (*submitted)["idempotent"] == true;
  json record = submitted->contains("job") && (*submitted)["job"].is_object() ? (*submitted)["job"] : json::object();
  // An idempotent answer names the existing job: follow that one.
  std::string follow = req.job_id;
  if (const auto c = submitted->find("cached_job_id"); c != submitted->end() && c->is_string() && !util::trim(c->get<std::string>()).empty()) {
    auto named = protocol::normalize_id(c->get<std::string>(), "cached_job_id");
    if (!named) return {false, "node_fault", "worker named an unusable job id", {}};
    follow = *named;
  }

  // The ledger knows the job from now on, so an interrupted submit can be followed up with
  // `status`, `logs` or `sync-artifacts` by run and job id alone.
  const fs::path receipt_dir = cluster.receipt_dir(req.run_id, req.job_id);
  const std::string step = protocol::steps::normalize(req.step_name);
  auto ledger_entry = [&](const std::string& status, std::optional<int> exit_code, const std::string& finished_at,
                          const json& rows) {
    const long long ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
    state::LedgerEntry e{req.run_id, req.job_id, step, req.inputs_hash, "remote", node.node_id, node.host,
                         node.port, follow, status, exit_code, submitted_at, finished_at, ms,
                         util::u8(receipt_dir / "job_receipt.json"), protocol::dump_json(rows)};
    return e;
  };
  json running_rows = attempts;
  running_rows.push_back(attempt_row(node, "running", "", submitted_at, ""));
  (void)ledger.record(ledger_entry(protocol::string_field(record, "status"), std::nullopt, "", running_rows));

  // Long polls where the worker offers them, kept well under the silence limit so that a node
  // that stops answering is noticed in time. Watched: the node's rounds answer for this job, and
  // this job's own connection is closed until its artifacts are fetched.
  std::unique_ptr<JobWatch::Follow> followed;
  if (watched) {
    followed = opts.watch->follow(node, req.run_id, follow, req.inputs_hash, record);
    submitting.reset();
    client.disconnect();
  }
  const bool long_poll = has_protocol_feature(caps, "wait_ms");
  const auto silence = std::chrono::milliseconds(static_cast<long long>(cc.node_silence_sec * 1000));
  // poll_timeout_sec counts from the job's submission, not from the upload of its files.
  const auto deadline = Clock::now() + std::chrono::milliseconds(static_cast<long long>(cc.poll_timeout_sec * 1000));
  const auto interval = std::chrono::milliseconds(static_cast<long long>(cc.poll_interval_sec * 1000));
  auto last_answer = Clock::now();
  std::string last_error;
  while (!protocol::is_terminal_status(protocol::string_field(record, "status"))) {
    const auto now = Clock::now();
    if (now >= deadline) {
      // Slow, not gone: ask it to drop the job so it does not go on spending a slot on it (only our
      // own job: after an idempotent hit it is another run's, which someone else may follow).
      if (has_protocol_feature(caps, "cancel") && follow == req.job_id) {
        auto quick = cluster.client_for(node, std::min(2.0, cc.request_timeout_sec));
        (void)quick.cancel(req.run_id, follow, req.inputs_hash, "the controller gave up after poll_timeout_sec");
      }
      return {false, "timed_out", "job did not finish within poll_timeout_sec", {}};
    }
    if (now - last_answer >= silence)
      return {false, "lost", fmt::format("no answer for {:g} s ({})", cc.node_silence_sec, last_error), {}};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(std::min<Clock::duration>(deadline - now, silence / 2)).count();
    if (followed) {
      const auto news = followed->next(now + std::chrono::milliseconds(left));
      if (news.gone) return {false, "node_fault", news.error, {}};
      last_answer = std::max(last_answer, news.answered_at);
      if (!news.error.empty()) last_error = news.error;
      record = news.record;
      continue;
    }
    const int wait_ms = long_poll ? static_cast<int>(std::clamp<long long>(left, 1, 30000)) : 0;
    auto st = client.job_status(req.run_id, follow, req.inputs_hash, wait_ms);
    if (!st) {
      // A worker that answers but no longer knows the job has lost it (its state folder went).
      if (st.error().kind == ErrorKind::not_found) return {false, "node_fault", st.error().message, {}};
      last_error = st.error().message;
      std::this_thread::sleep_for(std::min<Clock::duration>(interval, silence - (Clock::now() - last_answer)));
      continue;
    }
    last_answer = Clock::now();
    record = st->contains("job") && (*st)["job"].is_object() ? (*st)["job"] : json::object();
    if (!long_poll && !protocol::is_terminal_status(protocol::string_field(record, "status"))) std::this_thread::sleep_for(interval);
  }
  followed.reset();
  const auto rec = protocol::job_record_from_json(record);
  const bool succeeded = rec.status == protocol::status::kSucceeded ||
                         (rec.status == "completed" && rec.error_code.empty() && rec.error_message.empty());
  if (!succeeded && (rec.status == "error" || protocol::is_node_fault(rec.error_code)))
    return {false, "node_fault", (rec.error_code.empty() ? rec.status : rec.error_code) + ": " + rec.error_message, {}};

  const std::string finished_at = util::now_utc();
  json rows = attempts;
  rows.push_back(attempt_row(node, rec.status, succeeded ? "" : rec.error_code, submitted_at, finished_at));
  RemoteJob job{&node, req.run_id, req.job_id, follow, step, req.inputs_hash, has_protocol_feature(caps, "artifact_download"),
                rows};
  (void)ledger.record(ledger_entry(rec.status, rec.exit_code, finished_at, rows));
  auto synced = sync_remote_job(client, job, receipt_dir, &record);
  if (!synced) return {false, "node_fault", "job finished but could not be synced: " + synced.error().message, {}};

  std::string message = succeeded ? rec.message : (rec.error_message.empty() ? rec.message : rec.error_message);
  if (synced->failed > 0) message = std::to_string(synced->failed) + " artifact(s) failed to download or verify; see the receipt";
  json out{{"ok", succeeded && synced->failed == 0},
           {"mode", "remote"},
           {"run_id", req.run_id},
           {"job_id", req.job_id},
           {"step_name", job.step_name},
           {"inputs_hash", req.inputs_hash},
           {"status", rec.status},
           {"node_id", node.node_id},
           {"idempotent", idempotent},
           {"exit_code", rec.exit_code.value_or(0)},
           {"error_code", rec.error_code},
           {"message", message},
           {"remote_job_id", follow},
           {"artifacts_downloaded", synced->downloaded},
           {"receipt_path", util::u8(synced->receipt_path)},
           {"attempts", rows}};
  if (stage)
    out["staged"] = {{"files", given.staged->files.size()}, {"uploaded", uploaded.uploaded}, {"held", uploaded.held},
                     {"bytes_sent", uploaded.bytes_sent}};
  return {true, rec.status, {}, out};
}

}  // namespace

Result<std::pair<JobRequest, Requirements>> prepare_job(const JobSpec& spec) {
  auto run_id = protocol::normalize_id(spec.run_id, "run_id");
  if (!run_id) return run_id.error();
  auto job_id = protocol::normalize_id(spec.job_id, "job_id");
  if (!job_id) return job_id.error();
  json payload = spec.payload.is_null() ? json::object() : spec.payload;
  if (!payload.is_object()) return Error(ErrorKind::invalid_input, "payload must be a JSON object");
  const std::string step = protocol::steps::normalize(spec.step_name);
  if (step.empty()) return Error(ErrorKind::invalid_input, "step_name is required");
  json req_doc = spec.requirements;
  if (req_doc.is_null() && payload.contains("requirements")) req_doc = payload["requirements"];
  // Pose recovery needs a CUDA GPU with room for the model unless the job says otherwise.
  if (req_doc.is_null() && step == protocol::steps::kPoseEstimate) req_doc = json{{"gpu_required", true}, {"min_vram_gb", 8}};
  auto requirements = parse_requirements(req_doc);
  if (!requirements) return requirements.error();
  JobRequest req{*run_id, *job_id, step, protocol::normalize_hash(spec.inputs_hash), payload, spec.force, {}};
  const std::string given_hash = req.inputs_hash;
  if (req.inputs_hash.empty()) req.inputs_hash = protocol::inputs_hash(payload);
  if (req.inputs_hash.size() < 16 || !util::is_safe_component(req.inputs_hash))
    return Error(ErrorKind::invalid_input, "inputs_hash must be 16 to 128 letters, digits, '.', '_' or '-'");
  if (spec.stage) {
    auto inputs = find_job_inputs(step, payload, spec.input_fields, given_hash);
    if (!inputs) return inputs.error();
    if (!inputs->files.empty()) req.staged = std::move(inputs).value();
  }
  return std::pair{std::move(req), std::move(requirements).value()};
}

Result<json> dispatch_job(const Cluster& cluster, state::Ledger& ledger, const JobRequest& req,
                          const Requirements& requirements, const DispatchOptions& options,
                          const std::vector<HealthProbe>* given_probes) {
  json attempts = json::array();
  auto local = [&](const std::string& reason) -> Result<json> {
    std::unique_lock<std::mutex> lock;
    if (options.local_mutex) lock = std::unique_lock(*options.local_mutex);
    return run_local(cluster, ledger, req, reason, attempts);
  };
  if (!protocol::steps::is_job_step(req.step_name)) return local(req.step_name + " is not a job step");

  auto fallback = [&](const std::string& reason) -> Result<json> {
    if (options.no_local_fallback) {
      // The ledger must not keep the last node's running row for a job that ended here.
      (void)ledger.record(state::LedgerEntry{req.run_id, req.job_id, protocol::steps::normalize(req.step_name),
                                             req.inputs_hash, "remote", "", "", 0, "", "failed", 1, util::now_utc(),
                                             util::now_utc(), 0, "", protocol::dump_json(attempts)});
      return json{{"ok", false}, {"mode", "remote"}, {"run_id", req.run_id}, {"job_id", req.job_id},
                  {"step_name", req.step_name}, {"inputs_hash", req.inputs_hash}, {"status", "failed"},
                  {"node_id", ""}, {"idempotent", false}, {"exit_code", 1},
                  {"message", reason + "; local fallback disabled"}, {"receipt_path", ""},
                  {"attempts", attempts}};
    }
    return local(reason);
  };
  // The Python controller's phrases, which scripts match, with the reasons of each node after them.
  auto reason_with_attempts = [&attempts](const std::string& phrase) {
    std::string why;
    for (const auto& a : attempts)
      why += (why.empty() ? "" : "; ") + a["node_id"].get<std::string>() + ": " + a["error"].get<std::string>();
    return phrase + " (" + why + ")";
  };
  const auto eligible = cluster.worker_nodes();
  if (eligible.empty()) return fallback("No worker satisfies requirements (no enabled worker in the nodes file)");

  // Probe, match and order.
  std::vector<HealthProbe> fresh;
  if (!given_probes) {
    fresh = probe_health(cluster, eligible);
    record_probes(ledger, fresh);
  }
  const auto& probes = given_probes ? *given_probes : fresh;
  const auto cooling = cooling_nodes(ledger);
  const std::string step = protocol::steps::normalize(req.step_name);
  std::vector<Candidate> candidates;
  for (std::size_t i = 0; i < probes.size(); ++i) {
    const auto& p = probes[i];
    if (!p.ok) {
      attempts.push_back(attempt_row(*p.node, "unreachable", p.error, "", ""));
      continue;
    }
    const json caps = p.answer.value("caps", json::object());
    std::string why = unmet_reason(caps, requirements, step, p.node->tags);
    if (why.empty() && protocol::string_field(caps, "_compat_mode") == protocol::legacy::kCompatModePlain)
      why = "a plain-token v0.5 node is sent no jobs (the secret itself would travel with each)";
    if (!why.empty()) {
      attempts.push_back(attempt_row(*p.node, "does_not_fit", "does not fit: " + why, "", ""));
      continue;
    }
    const NodeLoad load = load_for_step(p.answer, step);
    candidates.push_back({i, load.free_slots, load.queue_depth, p.elapsed_ms, cooling.count(p.node->node_id) > 0});
  }
  if (candidates.empty()) return fallback(reason_with_attempts("No worker satisfies requirements"));
  order_candidates(candidates);
  // The node a batch holds for this job goes first, whatever its cool-down or load.
  if (!options.preferred.empty())
    std::stable_partition(candidates.begin(), candidates.end(),
                          [&](const Candidate& c) { return probes[c.index].node->node_id == options.preferred; });
  bool passed_busy = false;
  for (const auto& c : candidates) {
    const auto& p = probes[c.index];
    if (options.acquire && !options.acquire(*p.node)) {
      passed_busy = true;
      continue;
    }
    // Released however the attempt ends.
    struct Release {
      const DispatchOptions& o;
      const state::NodeEntry& n;
      ~Release() {
        if (o.release) o.release(n);
      }
    } release{options, *p.node};
    const std::string started_at = util::now_utc();
    auto attempt = run_remote(cluster, ledger, *p.node, p.answer.value("caps", json::object()), req, options, attempts);
    if (attempt.final) {
      end_cooldown(ledger, p.node->node_id);
      return attempt.output;
    }
    attempts.push_back(attempt_row(*p.node, attempt.outcome, attempt.reason, started_at, util::now_utc()));
    start_cooldown(ledger, cluster, p.node->node_id, attempt.reason);
  }
  // A batch would rather wait for room on a fitting worker than run the job locally.
  if (passed_busy && options.busy_means_retry) return Error(ErrorKind::conflict, std::string(kBusyRetry));
  return fallback(reason_with_attempts("remote failed"));
}

}  // namespace rayvault::controller
