// Receipt folder writing and verified artifact download.
#include "controller/sync.hpp"

#include "protocol/job_record.hpp"
#include "util/crypto.hpp"
#include "util/files.hpp"

namespace rayvault::controller {
namespace {

namespace fs = std::filesystem;

// The worker's RECORD as scripts read it: every field of the contract present and none null (an
// older worker of ours wrote null for unset ones), anything else it sent kept as sent.
json record_without_nulls(const json& record) {
  json out = record.is_object() ? record : json::object();
  const json complete = protocol::to_json(protocol::job_record_from_json(record));
  for (const auto& [key, value] : complete.items())
    if (!out.contains(key) || out[key].is_null()) out[key] = value;
  return out;
}

std::string artifact_name(const json& a) {
  if (std::string name = protocol::string_field(a, "name"); !name.empty()) return name;
  if (const std::string p = protocol::string_field(a, "path"); !p.empty()) {
    // Python workers list only absolute paths, with either separator.
    const auto cut = p.find_last_of("/\\");
    return cut == std::string::npos ? p : p.substr(cut + 1);
  }
  return {};
}

}  // namespace

Result<SyncOutcome> sync_remote_job(WorkerClient& client, const RemoteJob& job, const fs::path& receipt_dir,
                                    const json* known_record) {
  json record;
  if (known_record) {
    record = *known_record;
  } else {
    auto st = client.job_status(job.run_id, job.remote_job_id, job.inputs_hash);
    if (!st) return st.error();
    record = st->is_object() ? st->value("job", json::object()) : json::object();
  }
  const auto rec = protocol::job_record_from_json(record);

  auto listing = client.job_artifacts(job.run_id, job.remote_job_id, job.inputs_hash);
  if (!listing) return listing.error();
  const json artifacts = listing->contains("artifacts") && (*listing)["artifacts"].is_array() ? (*listing)["artifacts"]
                                                                                               : json::array();
  SyncOutcome out;
  const fs::path art_dir = receipt_dir / "artifacts";
  std::error_code ec;
  fs::create_directories(art_dir, ec);
  if (ec) return Error(ErrorKind::io, "cannot create " + util::u8(art_dir) + ": " + ec.message());

  // Rows as the Python controller writes them: {name, local_path, size, sha256}, or
  // {name, local_path: "", error, sha256} for an artifact that did not arrive whole.
  json downloaded = json::array();
  auto failed = [&](const std::string& name, const std::string& expected, const std::string& error) {
    downloaded.push_back({{"name", name}, {"local_path", ""}, {"error", error}, {"sha256", expected}});
    ++out.failed;
  };
  auto arrived = [&](const std::string& name, const fs::path& dest, const std::string& sha, json extra) {
    json row{{"name", name}, {"local_path", util::u8(dest)}, {"size", fs::file_size(dest, ec)}, {"sha256", sha},
             {"verified", true}};
    row.update(extra);
    downloaded.push_back(std::move(row));
    ++out.downloaded;
  };
  // A worker that does not serve artifact bytes (any Python node) is not asked for them: its
  // artifact rows are recorded, and the job is not failed for it.
  for (const auto& a : job.artifact_download ? artifacts : json::array()) {
    if (!a.is_object()) continue;
    const std::string name = artifact_name(a);
    const std::string expected = protocol::string_field(a, "sha256");
    // A hostile worker must not make us write outside the receipt folder.
    const fs::path dest = util::resolve_within(art_dir, name);
    if (name.empty() || dest.empty()) {
      failed(name, expected, "unsafe artifact name refused");
      continue;
    }
    if (fs::is_regular_file(dest, ec)) {
      if (auto sha = util::sha256_file_hex(dest); sha && *sha == expected) {
        arrived(name, dest, *sha, {{"skipped", true}});
        continue;
      }
    }
    fs::path part = dest;
    part += ".part";
    fs::create_directories(dest.parent_path(), ec);
    auto got = client.download_artifact(job.run_id, job.remote_job_id, job.inputs_hash, name, part);
    if (!got) {
      failed(name, expected, got.error().message);
      continue;
    }
    if (expected.empty() || !util::hex_equal_constant_time(got->sha256, expected)) {
      fs::remove(part, ec);
      failed(name, expected,
             "sha256 mismatch: worker listed " + (expected.empty() ? "none" : expected) + ", received " + got->sha256 +
                 "; the file was not kept");
      continue;
    }
    fs::rename(part, dest, ec);
    if (ec) {
      failed(name, expected, "cannot move into place: " + ec.message());
      continue;
    }
    arrived(name, dest, got->sha256, {{"resumed", got->resumed}});
  }

  std::string log_text;
  if (auto logs = client.job_logs(job.run_id, job.remote_job_id, job.inputs_hash)) log_text = *logs;
  else log_text = protocol::dump_json(json{{"event", "log_unavailable"}, {"message", logs.error().message}}) + "\n";
  if (auto st = util::write_file_atomic(receipt_dir / "worker.log", log_text); !st) return st.error();

  // The Python controller's receipt shape; fields after log_path are this project's additions.
  out.receipt = {{"mode", "remote"},
                 {"node_id", job.node->node_id},
                 {"run_id", job.run_id},
                 {"job_id", job.job_id},
                 {"inputs_hash", job.inputs_hash},
                 {"status", rec.status},
                 {"exit_code", rec.exit_code.value_or(0)},
                 {"finished_at", rec.finished_at.value_or("")},
                 {"job_status", record_without_nulls(record)},
                 {"artifacts", artifacts},
                 {"downloaded_artifacts", downloaded},
                 {"artifacts_dir", util::u8(art_dir)},
                 {"artifacts_zip", ""},
                 {"remote_receipt_path", rec.receipt_path},
                 {"log_path", util::u8(receipt_dir / "worker.log")},
                 {"step_name", job.step_name.empty() ? rec.step_name : job.step_name},
                 {"remote_job_id", job.remote_job_id},
                 {"host", job.node->host},
                 {"port", job.node->port},
                 {"worker_id", rec.worker_id},
                 {"error_code", rec.error_code},
                 {"error_message", rec.error_message},
                 {"metrics", rec.metrics},
                 {"artifact_download", job.artifact_download},
                 {"synced_at", util::format_utc(std::chrono::system_clock::now())}};
  out.receipt_path = receipt_dir / "job_receipt.json";
  json attempts = job.attempts;
  if (attempts.is_null()) {
    // A later sync keeps the attempts the submission recorded.
    if (auto old = util::read_file(out.receipt_path, 16u << 20); old)
      if (auto doc = protocol::parse_json(*old); doc && doc->is_object() && doc->contains("attempts")) attempts = (*doc)["attempts"];
  }
  if (!attempts.is_null()) out.receipt["attempts"] = attempts;
  if (auto st = util::write_file_atomic(out.receipt_path, protocol::dump_json(out.receipt, 2)); !st) return st.error();
  return out;
}

}  // namespace rayvault::controller
