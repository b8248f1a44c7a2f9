// `submit`: choose a fitting worker, run the job there and bring it home; fail over to the next
// worker on a node fault, and to local execution when no worker fits or all fail.
#include <cstdio>
#include <thread>

#include "controller/cli/commands.hpp"
#include "controller/local_runner.hpp"
#include "controller/selection.hpp"
#include "controller/sync.hpp"
#include "protocol/envelope.hpp"
#include "protocol/errors.hpp"
#include "protocol/ids.hpp"
#include "protocol/job_record.hpp"
#include "protocol/steps.hpp"
#include "state/ledger.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"

namespace rayvault::controller::cli {
namespace {

namespace fs = std::filesystem;

Result<json> read_json_arg(const std::string& inline_text, const std::string& file, const char* what) {
  if (!inline_text.empty() && !file.empty())
    return Error(ErrorKind::invalid_input, std::string("give --") + what + "-json or --" + what + "-file, not both");
  std::string text = inline_text;
  if (!file.empty()) {
    auto read = util::read_file(util::path_from_utf8(file), 16u << 20);
    if (!read) return Error(ErrorKind::invalid_input, std::string("cannot read --") + what + "-file: " + read.error().message);
    text = std::move(read).value();
  }
  if (text.empty()) return json();
  auto parsed = protocol::parse_json(text);
  if (!parsed) return Error(ErrorKind::invalid_input, std::string(what) + ": " + parsed.error().message);
  return parsed;
}

struct Attempt {
  bool final = false;  // the job's answer (success or a failure that is not the node's fault)
  std::string reason;  // why the node failed, when !final
  json output;
};

// Runs the job on one node and follows it to a terminal state.
Attempt run_remote(const Cluster& cluster, state::Ledger& ledger, const state::NodeEntry& node, const json& caps,
                   const JobRequest& req) {
  const auto& cc = cluster.config().controller;
  auto client = cluster.client_for(node, cc.request_timeout_sec);
  const std::string submitted_at = util::format_utc(std::chrono::system_clock::now());
  const auto started = std::chrono::steady_clock::now();
  auto submitted = client.submit(req.run_id, req.job_id, req.step_name, req.inputs_hash, req.payload,
                                 req.force && has_protocol_feature(caps, "force"));
  if (!submitted) return {false, submitted.error().message, {}};
  const bool idempotent = submitted->contains("idempotent") && (*submitted)["idempotent"] == true;
  json record = submitted->contains("job") && (*submitted)["job"].is_object() ? (*submitted)["job"] : json::object();
  // An idempotent answer names the existing job: follow that one.
  std::string follow = req.job_id;
  if (const auto c = submitted->find("cached_job_id"); c != submitted->end() && c->is_string() && !util::trim(c->get<std::string>()).empty()) {
    auto named = protocol::normalize_id(c->get<std::string>(), "cached_job_id");
    if (!named) return {false, "worker named an unusable job id", {}};
    follow = *named;
  }

  // The ledger knows the job from now on, so an interrupted submit can be followed up with
  // `status`, `logs` or `sync-artifacts` by run and job id alone.
  const fs::path receipt_dir = cluster.receipt_dir(req.run_id, req.job_id);
  const std::string step = protocol::steps::normalize(req.step_name);
  auto ledger_entry = [&](const std::string& status, std::optional<int> exit_code, const std::string& finished_at) {
    const long long ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
    return state::LedgerEntry{req.run_id, req.job_id, step, req.inputs_hash, "remote", node.node_id, node.host,
                              node.port, follow, status, exit_code, submitted_at, finished_at, ms,
                              util::u8(receipt_dir / "job_receipt.json")};
  };
  (void)ledger.record(ledger_entry(protocol::string_field(record, "status"), std::nullopt, ""));

  const bool long_poll = has_protocol_feature(caps, "wait_ms");
  const auto deadline = started + std::chrono::milliseconds(static_cast<long long>(cc.poll_timeout_sec * 1000));
  int transient = 0;
  auto status_of = [](const json& r) { return r.contains("status") && r["status"].is_string() ? r["status"].get<std::string>() : ""; };
  while (!protocol::is_terminal_status(status_of(record))) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return {false, "job did not finish within poll_timeout_sec", {}};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
    const int wait_ms = long_poll ? static_cast<int>(std::min<long long>(left, 30000)) : 0;
    auto st = client.job_status(req.run_id, follow, req.inputs_hash, wait_ms);
    if (!st) {
      if (++transient >= 3) return {false, st.error().message, {}};
      std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<long long>(cc.poll_interval_sec * 1000)));
      continue;
    }
    transient = 0;
    record = st->contains("job") && (*st)["job"].is_object() ? (*st)["job"] : json::object();
    if (!long_poll && !protocol::is_terminal_status(status_of(record)))
      std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<long long>(cc.poll_interval_sec * 1000)));
  }
  const auto rec = protocol::job_record_from_json(record);
  const bool succeeded = rec.status == protocol::status::kSucceeded ||
                         (rec.status == "completed" && rec.error_code.empty() && rec.error_message.empty());
  if (!succeeded && (rec.status == "error" || protocol::is_node_fault(rec.error_code)))
    return {false, (rec.error_code.empty() ? rec.status : rec.error_code) + ": " + rec.error_message, {}};

  RemoteJob job{&node, req.run_id, req.job_id, follow, step, req.inputs_hash, has_protocol_feature(caps, "artifact_download")};
  (void)ledger.record(ledger_entry(rec.status, rec.exit_code, util::format_utc(std::chrono::system_clock::now())));
  auto synced = sync_remote_job(client, job, receipt_dir, &record);
  if (!synced) return {false, "job finished but could not be synced: " + synced.error().message, {}};

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
           {"receipt_path", util::u8(synced->receipt_path)}};
  return {true, {}, out};
}

int finish(json out) {
  const bool ok = out.value("ok", false) == true;
  print_json(out);
  return ok ? 0 : 2;
}

}  // namespace

int run_submit(const GlobalOptions& g, const SubmitOptions& o) {
  auto cluster = Cluster::load(g);
  if (!cluster) return print_error(cluster.error());
  // Without a secret no worker can be asked: say so instead of quietly running locally.
  if (auto st = cluster->require_secret(); !st) return print_error(st.error());
  auto run_id = protocol::normalize_id(o.run_id, "--run-id");
  if (!run_id) return print_error(run_id.error());
  auto job_id = protocol::normalize_id(o.job_id, "--job-id");
  if (!job_id) return print_error(job_id.error());
  auto payload = read_json_arg(o.payload_json, o.payload_file, "payload");
  if (!payload) return print_error(payload.error());
  if (payload->is_null()) *payload = json::object();
  if (!payload->is_object()) return print_error(Error(ErrorKind::invalid_input, "payload must be a JSON object"));
  auto req_doc = read_json_arg(o.requirements_json, o.requirements_file, "requirements");
  if (!req_doc) return print_error(req_doc.error());
  if (req_doc->is_null() && payload->contains("requirements")) *req_doc = (*payload)["requirements"];
  // Pose recovery needs a CUDA GPU with room for the model unless the job says otherwise.
  if (req_doc->is_null() && protocol::steps::normalize(o.step_name) == protocol::steps::kPoseEstimate)
    *req_doc = json{{"gpu_required", true}, {"min_vram_gb", 8}};
  auto requirements = parse_requirements(*req_doc);
  if (!requirements) return print_error(requirements.error());
  for (const auto& w : requirements->warnings) std::fprintf(stderr, "rayvault-controller: warning: %s\n", w.c_str());

  JobRequest req{*run_id, *job_id, protocol::steps::normalize(o.step_name), protocol::normalize_hash(o.inputs_hash),
                 *payload, o.force};
  if (req.inputs_hash.empty()) req.inputs_hash = protocol::inputs_hash(*payload);
  if (req.inputs_hash.size() < 16 || !util::is_safe_component(req.inputs_hash))
    return print_error(Error(ErrorKind::invalid_input, "--inputs-hash must be 16 to 128 letters, digits, '.', '_' or '-'"));
  if (req.step_name.empty()) return print_error(Error(ErrorKind::invalid_input, "--step-name is required"));
  auto ledger = state::Ledger::open(cluster->config().state_dir);
  if (!ledger) return print_error(ledger.error());

  auto local = [&](const std::string& reason) -> int {
    auto out = run_local(*cluster, **ledger, req, reason);
    if (!out) return print_error(out.error());
    return finish(*out);
  };
  if (!protocol::steps::is_job_step(req.step_name)) return local(req.step_name + " is not a job step");

  json attempts = json::array();
  auto fallback = [&](const std::string& reason) -> int {
    if (o.no_local_fallback) {
      return finish({{"ok", false}, {"mode", "remote"}, {"run_id", req.run_id}, {"job_id", req.job_id},
                     {"step_name", req.step_name}, {"inputs_hash", req.inputs_hash}, {"status", "failed"},
                     {"node_id", ""}, {"idempotent", false}, {"exit_code", 1},
                     {"message", reason + "; local fallback disabled"}, {"receipt_path", ""},
                     {"attempts", attempts}});
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
  const auto eligible = cluster->worker_nodes();
  if (eligible.empty()) return fallback("No worker satisfies requirements (no enabled worker in the nodes file)");

  // Probe, match and order.
  const auto probes = probe_health(*cluster, eligible);
  std::vector<Candidate> candidates;
  for (std::size_t i = 0; i < probes.size(); ++i) {
    const auto& p = probes[i];
    if (!p.ok) {
      attempts.push_back({{"node_id", p.node->node_id}, {"error", p.error}});
      continue;
    }
    const json caps = p.answer.value("caps", json::object());
    if (auto why = unmet_reason(caps, *requirements, req.step_name); !why.empty()) {
      attempts.push_back({{"node_id", p.node->node_id}, {"error", "does not fit: " + why}});
      continue;
    }
    const json qd = p.answer.value("queue_depth", json(0));
    const json slots = caps.value("slots", json(1));
    candidates.push_back({i, qd.is_number_integer() ? qd.get<int>() : 0, slots.is_number_integer() ? slots.get<int>() : 1});
  }
  if (candidates.empty()) return fallback(reason_with_attempts("No worker satisfies requirements"));
  order_by_load(candidates);
  for (const auto& c : candidates) {
    const auto& p = probes[c.index];
    auto attempt = run_remote(*cluster, **ledger, *p.node, p.answer.value("caps", json::object()), req);
    if (attempt.final) {
      attempt.output["attempts"] = attempts;
      return finish(attempt.output);
    }
    attempts.push_back({{"node_id", p.node->node_id}, {"error", attempt.reason}});
  }
  return fallback(reason_with_attempts("remote failed"));
}

}  // namespace rayvault::controller::cli
