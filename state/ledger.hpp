// The controller's ledger in SQLite under state_dir: one row per (run_id, job_id) submission.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

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
  std::string attempts = "[]";  // JSON list: every node tried, with start, end and outcome
};

// What the controller last learnt of a node: its latest probe, when it last answered, and the
// cool-down after it failed a job. Kept across runs, so `nodes` can say a node went stale.
struct NodeState {
  std::string node_id, host;
  int port = 0;
  std::string last_probe_at;  // the latest probe, answered or not
  std::string last_seen;      // the latest probe it answered ("" never)
  std::string last_error;     // why the latest probe failed ("" when it answered)
  long long latency_ms = -1;
  std::string version, worker_id, compat_mode;
  int queue_depth = 0, running_jobs = 0, free_slots = 0;
  std::string caps_summary = "{}";  // JSON
  std::string cooldown_until;       // UTC; "" when none
  std::string cooldown_reason;
};

// Safe to use from several threads at once.
class Ledger {
 public:
  // Opens (creating) <state_dir>/controller.db. Error (io) when it cannot.
  static Result<std::unique_ptr<Ledger>> open(const std::filesystem::path& state_dir);
  ~Ledger();

  // Inserts or replaces the row of (run_id, job_id).
  Status record(const LedgerEntry& entry);

  std::optional<LedgerEntry> find(const std::string& run_id, const std::string& job_id);

  // Submissions, newest first, optionally only those of one status and/or one run.
  Result<std::vector<LedgerEntry>> list(const std::string& status, const std::string& run_id, int limit = 1000);

  // Records a probe's result. A failed probe keeps last_seen and the last answer's figures.
  Status record_probe(const NodeState& probe, bool answered);
  // Starts a node's cool-down after it failed a job, or ends it (until = "").
  Status set_cooldown(const std::string& node_id, const std::string& until, const std::string& reason);
  std::vector<NodeState> nodes();

 private:
  explicit Ledger(std::unique_ptr<SQLite::Database> db);
  std::unique_ptr<SQLite::Database> db_;
  std::mutex mu_;  // one connection, shared by a batch's threads
};

}  // namespace rayvault::state
