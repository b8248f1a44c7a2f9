// Receipt folder writing and verified artifact download.
#include "controller/sync.hpp"

#include "protocol/job_record.hpp"
#include "util/crypto.hpp"
#include "util/files.hpp"

namespace rayvault::controller {
namespace {

namespace fs = std::filesystem;

std::string artifact_name(const json& a) {
  if (a.contains("name") && a["name"].is_string()) return a["name"].get<std::string>();
  if (a.contains("path") && a["path"].is_string()) {
    // Older workers list only absolute paths, with either separator.
    const std::string p = a["path"].get<std::string>();
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
    record = st->value("job", json::object());
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

  json downloaded = json::array();
  json errors = json::array();
  for (const auto& a : artifacts) {
    if (!a.is_object()) continue;
    const std::string name = artifact_name(a);
    const std::string expected = a.value("sha256", "");
    // A hostile worker must not make us write outside the receipt folder.
    const fs::path dest = util::resolve_within(art_dir, name);
    if (name.empty() || dest.empty()) {
      errors.push_back({{"name", name}, {"error", "unsafe artifact name refused"}});
      ++out.failed;
      continue;
    }
    if (fs::is_regular_file(dest, ec)) {
      if (auto sha = util::sha256_file_hex(dest); sha && *sha == expected) {
        downloaded.push_back({{"name", name}, {"path", util::u8(dest)}, {"sha256", *sha},
                              {"size_bytes", fs::file_size(dest, ec)}, {"verified", true}, {"skipped", true}});
        ++out.downloaded;
        continue;
      }
    }
    fs::path part = dest;
    part += ".part";
    fs::create_directories(dest.parent_path(), ec);
    auto got = client.download_artifact(job.run_id, job.remote_job_id, job.inputs_hash, name, part);
    if (!got) {
      errors.push_back({{"name", name}, {"error", got.error().message}});
      ++out.failed;
      continue;
    }
    if (expected.empty() || !util::hex_equal_constant_time(got->sha256, expected)) {
      fs::remove(part, ec);
      errors.push_back({{"name", name},
                        {"error", "sha256 mismatch: worker listed " + (expected.empty() ? "none" : expected) +
                                      ", received " + got->sha256 + "; the file was not kept"}});
      ++out.failed;
      continue;
    }
    fs::rename(part, dest, ec);
    if (ec) {
      errors.push_back({{"name", name}, {"error", "cannot move into place: " + ec.message()}});
      ++out.failed;
      continue;
    }
    downloaded.push_back({{"name", name}, {"path", util::u8(dest)}, {"sha256", got->sha256},
                          {"size_bytes", got->size_bytes}, {"verified", true}, {"resumed", got->resumed}});
    ++out.downloaded;
  }

  std::string log_text;
  if (auto logs = client.job_logs(job.run_id, job.remote_job_id, job.inputs_hash)) log_text = *logs;
  else log_text = protocol::dump_json(json{{"event", "log_unavailable"}, {"message", logs.error().message}}) + "\n";
  if (auto st = util::write_file_atomic(receipt_dir / "worker.log", log_text); !st) return st.error();

  out.receipt = {{"mode", "remote"},
                 {"run_id", job.run_id},
                 {"job_id", job.job_id},
                 {"remote_job_id", job.remote_job_id},
                 {"step_name", job.step_name.empty() ? rec.step_name : job.step_name},
                 {"inputs_hash", job.inputs_hash},
                 {"node_id", job.node->node_id},
                 {"host", job.node->host},
                 {"port", job.node->port},
                 {"worker_id", rec.worker_id},
                 {"job_status", rec.status},
                 {"status", rec.status},
                 {"exit_code", record.value("exit_code", json())},
                 {"error_code", rec.error_code},
                 {"error_message", rec.error_message},
                 {"created_at", rec.created_at},
                 {"started_at", record.value("started_at", json())},
                 {"finished_at", record.value("finished_at", json())},
                 {"metrics", rec.metrics},
                 {"artifacts", artifacts},
                 {"downloaded_artifacts", downloaded},
                 {"download_errors", errors},
                 {"remote_receipt_path", rec.receipt_path},
                 {"synced_at", util::format_utc(std::chrono::system_clock::now())}};
  out.receipt_path = receipt_dir / "job_receipt.json";
  if (auto st = util::write_file_atomic(out.receipt_path, protocol::dump_json(out.receipt, 2)); !st) return st.error();
  return out;
}

}  // namespace rayvault::controller
