// Local fallback: same steps, same engine, same receipts as a remote worker.
#include "controller/local_runner.hpp"

#include "protocol/errors.hpp"
#include "protocol/job_record.hpp"
#include "protocol/steps.hpp"
#include "util/crypto.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"
#include "worker/caps.hpp"
#include "worker/engine.hpp"

namespace rayvault::controller {
namespace {

namespace fs = std::filesystem;

// Copies the engine's artifacts into the receipt folder (via a .part file, verified).
json copy_artifacts(const json& artifacts, const fs::path& art_dir) {
  json out = json::array();
  std::error_code ec;
  fs::create_directories(art_dir, ec);
  for (const auto& a : artifacts) {
    auto text = [&a](const char* key) { return protocol::string_field(a, key); };
    if (!a.is_object() || text("name").empty() || text("path").empty()) continue;
    const std::string name = text("name");
    const fs::path dest = util::resolve_within(art_dir, name);
    if (dest.empty()) continue;
    fs::path part = dest;
    part += ".part";
    fs::create_directories(dest.parent_path(), ec);
    fs::copy_file(util::path_from_utf8(text("path")), part, fs::copy_options::overwrite_existing, ec);
    auto sha = util::sha256_file_hex(part);
    if (ec || !sha || text("sha256") != *sha) {
      fs::remove(part, ec);
      continue;
    }
    fs::rename(part, dest, ec);
    if (ec) continue;
    out.push_back({{"name", name}, {"local_path", util::u8(dest)}, {"size", fs::file_size(dest, ec)}, {"sha256", *sha},
                   {"verified", true}});
  }
  return out;
}

// The attempts before a local run, and the local run itself.
json with_local_attempt(const json& attempts, const std::string& outcome, const std::string& error,
                        const std::string& started_at) {
  json rows = attempts.is_array() ? attempts : json::array();
  rows.push_back({{"node_id", "local"}, {"host", ""}, {"port", 0}, {"outcome", outcome}, {"error", error},
                  {"started_at", started_at}, {"finished_at", util::format_utc(std::chrono::system_clock::now())}});
  return rows;
}

json output_doc(const JobRequest& req, const std::string& mode, const json& receipt, const fs::path& receipt_path,
                bool idempotent, const std::string& message) {
  const std::string status = receipt.value("status", "");
  return json{{"ok", status == protocol::status::kSucceeded},
              {"mode", mode},
              {"run_id", req.run_id},
              {"job_id", req.job_id},
              {"step_name", protocol::steps::normalize(req.step_name)},
              {"inputs_hash", req.inputs_hash},
              {"status", status},
              {"node_id", "local"},
              {"idempotent", idempotent},
              {"exit_code", receipt.value("exit_code", json(0))},
              {"error_code", receipt.value("error_code", "")},
              {"message", message},
              {"receipt_path", util::u8(receipt_path)},
              {"attempts", receipt.value("attempts", json::array())}};
}

}  // namespace

Result<json> run_local(const Cluster& cluster, state::Ledger& ledger, const JobRequest& req, const std::string& reason,
                       const json& attempts) {
  const auto& cfg = cluster.config();
  const std::string step = protocol::steps::normalize(req.step_name);
  const fs::path cache = cfg.state_dir / "local_cache" / (util::ascii_lower(step) + "_" + req.inputs_hash + ".json");
  const fs::path receipt_dir = cluster.receipt_dir(req.run_id, req.job_id);
  const fs::path receipt_path = receipt_dir / "job_receipt.json";
  const std::string submitted_at = util::format_utc(std::chrono::system_clock::now());

  auto record_ledger = [&](const std::string& mode, const json& receipt) {
    state::LedgerEntry e{req.run_id, req.job_id, step, req.inputs_hash, mode, "local", "", 0, req.job_id,
                         receipt.value("status", ""), std::nullopt, submitted_at,
                         util::format_utc(std::chrono::system_clock::now()), receipt.value("duration_ms", 0LL),
                         util::u8(receipt_path), protocol::dump_json(receipt.value("attempts", json::array()))};
    if (receipt.contains("exit_code") && receipt["exit_code"].is_number_integer()) e.exit_code = receipt["exit_code"].get<int>();
    return ledger.record(e);
  };

  // A succeeded local result is answered again (never a failed one: only successes are cached),
  // with its artifacts and log copied into this job's receipt folder; if they are gone, it runs.
  if (!req.force) {
    if (auto cached = util::read_file(cache, 16u << 20); cached) {
      auto doc = protocol::parse_json(*cached);
      if (doc && doc->is_object() && (*doc)["status"] == protocol::status::kSucceeded && (*doc)["artifacts"].is_array() &&
          (*doc)["local_log_path"].is_string()) {
        json receipt = *doc;
        const json rows = copy_artifacts(receipt["artifacts"], receipt_dir / "artifacts");
        auto log = util::read_file(util::path_from_utf8(receipt["local_log_path"].get<std::string>()));
        if (rows.size() == receipt["artifacts"].size() && log) {
          if (auto st = util::write_file_atomic(receipt_dir / "worker.log", *log); !st) return st.error();
          receipt["mode"] = "local_cached";
          receipt["run_id"] = req.run_id;
          receipt["job_id"] = req.job_id;
          receipt["downloaded_artifacts"] = rows;
          receipt["artifacts_dir"] = util::u8(receipt_dir / "artifacts");
          receipt["log_path"] = util::u8(receipt_dir / "worker.log");
          receipt["fallback_reason"] = reason;
          receipt["cached_from"] = util::u8(cache);
          receipt["attempts"] = with_local_attempt(attempts, "local_cached", "", submitted_at);
          if (auto st = util::write_file_atomic(receipt_path, protocol::dump_json(receipt, 2)); !st) return st.error();
          if (auto st = record_ledger("local_cached", receipt); !st) return st.error();
          return output_doc(req, "local_cached", receipt, receipt_path, true,
                            reason + "; used local fallback: a cached local result (--force runs it again)");
        }
      }
    }
  }

  worker::EngineConfig ec;
  ec.root = cfg.controller.local_workspace_root;
  ec.worker_id = cfg.controller.node_id;
  ec.slots = 1;
  ec.gpus = worker::detect_gpus();  // GPU steps run here only when this machine has a GPU
  auto engine = worker::Engine::open(ec, worker::make_default_steps());
  if (!engine) return engine.error();
  (*engine)->start();
  const auto started = std::chrono::steady_clock::now();
  // One local job per STEP:inputs_hash, whatever job_id names it, so a fixed input is a new job
  // rather than the old job_id's record; a failed local run is never reused (retry_failed).
  const std::string local_job_id = "local_" + util::sha256_hex(state::idempotency_key(step, req.inputs_hash)).substr(0, 32);
  worker::Submission submission{req.run_id, local_job_id, step, req.inputs_hash, req.payload, req.force};
  submission.retry_failed = true;
  auto admitted = (*engine)->submit(submission);
  if (!admitted) return admitted.error();
  const std::string local_id = admitted->job.record.job_id;
  const auto deadline = started + std::chrono::milliseconds(static_cast<long long>(cfg.controller.poll_timeout_sec * 1000));
  auto job = (*engine)->wait(local_id, deadline);
  const auto logs = (*engine)->logs(local_id);
  (*engine)->stop();
  if (!job) return Error(ErrorKind::internal, "local job vanished");
  const auto& r = job->record;
  const long long duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();

  if (auto st = util::write_file_atomic(receipt_dir / "worker.log", state::render_log(local_id, logs)); !st)
    return st.error();

  json receipt{{"mode", "local"},
               {"run_id", req.run_id},
               {"job_id", req.job_id},
               {"local_job_id", local_id},
               {"step_name", step},
               {"inputs_hash", req.inputs_hash},
               {"node_id", "local"},
               {"worker_id", r.worker_id},
               {"status", r.status},
               {"job_status", protocol::to_json(r)},
               {"exit_code", r.exit_code.value_or(0)},
               {"error_code", r.error_code},
               {"error_message", r.error_message},
               {"started_at", r.started_at.value_or("")},
               {"finished_at", r.finished_at.value_or("")},
               {"duration_ms", duration_ms},
               {"metrics", r.metrics},
               {"artifacts", r.artifacts},
               {"downloaded_artifacts", copy_artifacts(r.artifacts, receipt_dir / "artifacts")},
               {"artifacts_dir", util::u8(receipt_dir / "artifacts")},
               {"log_path", util::u8(receipt_dir / "worker.log")},
               {"fallback_reason", reason},
               {"local_receipt_path", r.receipt_path},
               {"local_log_path", r.log_path}};
  if (!protocol::is_terminal_status(r.status)) {
    receipt["status"] = "failed";
    receipt["exit_code"] = 1;
    receipt["error_code"] = protocol::codes::kTimeout;
    receipt["error_message"] = "local run did not finish within poll_timeout_sec";
  }
  receipt["attempts"] = with_local_attempt(attempts, receipt["status"].get<std::string>(),
                                           receipt["error_code"].get<std::string>(), submitted_at);
  if (auto st = util::write_file_atomic(receipt_path, protocol::dump_json(receipt, 2)); !st) return st.error();
  if (r.status == protocol::status::kSucceeded) {
    if (auto st = util::write_file_atomic(cache, protocol::dump_json(receipt, 2)); !st) return st.error();
  }
  if (auto st = record_ledger("local", receipt); !st) return st.error();
  // The Python controller's phrases: "<reason>; used local fallback", or "CODE: message" first
  // when the local run failed.
  std::string message = reason + "; used local fallback";
  if (receipt["status"] != protocol::status::kSucceeded) {
    const std::string code = receipt["error_code"].get<std::string>();
    const std::string text = receipt["error_message"].get<std::string>();
    message = (code.empty() ? "FAILED" : code) + ": " + (text.empty() ? r.message : text) + " (" + message + ")";
  }
  return output_doc(req, "local", receipt, receipt_path, admitted->idempotent, message);
}

}  // namespace rayvault::controller
