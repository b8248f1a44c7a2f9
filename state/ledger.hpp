// The controller's ledger in SQLite under state_dir: one row per (run_id, job_id) submission.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "util/error.hpp"

namespace SQLite {
class Database;
}

namespace rayvault::state {

struct LedgerEntry {
  std::string run_id, job_id, step_name, inputs_hash;
  std::string mode;           // remote, local, local_cached
  std::string node_id;        // "local" for local runs
  std::string host;
  int port = 0;
  std::string remote_job_id;  // the job the worker answers for (cached_job_id on idempotent hits)
  std::string status;
  std::optional<int> exit_code;
  std::string submitted_at, finished_at;
  long long duration_ms = 0;
  std::string receipt_path;
};

class Ledger {
 public:
  // Opens (creating) <state_dir>/controller.db. Error (io) when it cannot.
  static Result<std::unique_ptr<Ledger>> open(const std::filesystem::path& state_dir);
  ~Ledger();

  // Inserts or replaces the row of (run_id, job_id).
  Status record(const LedgerEntry& entry);

  std::optional<LedgerEntry> find(const std::string& run_id, const std::string& job_id);

 private:
  explicit Ledger(std::unique_ptr<SQLite::Database> db);
  std::unique_ptr<SQLite::Database> db_;
};

}  // namespace rayvault::state
