// `submit`: choose a fitting worker, run the job there and bring it home; fail over to the next
// worker on a node fault, and to local execution when no worker fits or all fail.
#include <thread>

#include "controller/cli/commands.hpp"
#include "controller/local_runner.hpp"
#include "controller/selection.hpp"
#include "controller/sync.hpp"
#include "protocol/errors.hpp"
#include "protocol/job_record.hpp"
#include "protocol/steps.hpp"
#include "state/ledger.hpp"
#include "util/files.hpp"

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

bool has_feature(const json& caps, const char* feature) {
  if (!caps.is_object() || !caps.contains("protocol_features") || !caps["protocol_features"].is_array()) return false;
  for (const auto& f : caps["protocol_features"])
    if (f == feature) return true;
  return false;
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
                                 req.force && has_feature(caps, "force"));
  if (!submitted) return {false, submitted.error().message, {}};
  const bool idempotent = submitted->contains("idempotent") && (*submitted)["idempotent"] == true;
  json record = submitted->contains("job") && (*submitted)["job"].is_object() ? (*submitted)["job"] : json::object();
  // An idempotent answer names the existing job: follow that one.
  std::string follow = req.job_id;
  if (submitted->contains("cached_job_id") && (*submitted)["cached_job_id"].is_string())
    follow = (*submitted)["cached_job_id"].get<std::string>();
  if (!util::is_safe_component(follow)) return {false, "worker named an unusable job id", {}};

  const bool long_poll = has_feature(caps, "wait_ms");
  const auto deadline = started + std::chrono::milliseconds(static_cast<long long>(cc.poll_timeout_sec * 1000));
  int transient = 0;
  auto status_of = [](const json& r) { return r.contains("status") && r["status"].is_string() ? r["status"].get<std::string>() : ""; };
  while (!protocol::is_terminal_status(status_of(record))) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return {false, "job did not finish within poll_timeout_sec on " + node.node_id, {}};
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
    return {false, node.node_id + ": " + (rec.error_code.empty() ? rec.status : rec.error_code) + " " + rec.error_message, {}};

  const fs::path receipt_dir = cluster.receipt_dir(req.run_id, req.job_id);
  RemoteJob job{&node, req.run_id, req.job_id, follow, protocol::steps::normalize(req.step_name), req.inputs_hash};
  auto synced = sync_remote_job(client, job, receipt_dir, &record);
  if (!synced) return {false, "job finished on " + node.node_id + " but could not be synced: " + synced.error().message, {}};
  const long long duration_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
  state::LedgerEntry entry{req.run_id, req.job_id, job.step_name, req.inputs_hash, "remote", node.node_id, node.host,
                           node.port, follow, rec.status, rec.exit_code, submitted_at,
                           util::format_utc(std::chrono::system_clock::now()), duration_ms, util::u8(synced->receipt_path)};
  (void)ledger.record(entry);

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
           {"exit_code", rec.exit_code ? json(*rec.exit_code) : json()},
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
  if (!util::is_safe_component(o.run_id) || !util::is_safe_component(o.job_id))
    return print_error(Error(ErrorKind::invalid_input, "run_id and job_id may hold only letters, digits, '.', '_' and '-'"));
  auto payload = read_json_arg(o.payload_json, o.payload_file, "payload");
  if (!payload) return print_error(payload.error());
  if (payload->is_null()) *payload = json::object();
  if (!payload->is_object()) return print_error(Error(ErrorKind::invalid_input, "payload must be a JSON object"));
  auto req_doc = read_json_arg(o.requirements_json, o.requirements_file, "requirements");
  if (!req_doc) return print_error(req_doc.error());
  if (req_doc->is_null() && payload->contains("requirements")) *req_doc = (*payload)["requirements"];
  auto requirements = parse_requirements(*req_doc);
  if (!requirements) return print_error(requirements.error());

  JobRequest req{o.run_id, o.job_id, protocol::steps::normalize(o.step_name), o.inputs_hash, *payload, o.force};
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

  std::vector<const state::NodeEntry*> eligible;
  for (const auto& n : cluster->config().nodes)
    if (n.takes_jobs()) eligible.push_back(&n);
  json attempts = json::array();
  auto fallback = [&](const std::string& reason) -> int {
    if (o.no_local_fallback) {
      return finish({{"ok", false}, {"mode", "remote"}, {"run_id", req.run_id}, {"job_id", req.job_id},
                     {"step_name", req.step_name}, {"inputs_hash", req.inputs_hash}, {"status", "failed"},
                     {"node_id", json()}, {"idempotent", false}, {"exit_code", json()},
                     {"message", reason + "; local fallback disabled"}, {"receipt_path", json()},
                     {"attempts", attempts}});
    }
    return local(reason);
  };
  if (eligible.empty()) return fallback("no enabled worker in the nodes file");
  if (cluster->secret().value.empty()) return fallback("no cluster secret to sign remote requests");

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
  std::string reason = candidates.empty() ? "no worker meets the requirements" : "every fitting worker failed";
  if (!attempts.empty()) {
    reason += " (";
    for (std::size_t i = 0; i < attempts.size(); ++i)
      reason += (i ? "; " : "") + attempts[i]["node_id"].get<std::string>() + ": " + attempts[i]["error"].get<std::string>();
    reason += ")";
  }
  return fallback(reason);
}

}  // namespace rayvault::controller::cli
