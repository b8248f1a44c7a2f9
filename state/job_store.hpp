// The worker's durable state in SQLite: jobs, the idempotency index, run aliases and job logs.
#pragma once

#include <filesystem>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "protocol/job_record.hpp"
#include "protocol/json.hpp"
#include "util/error.hpp"

namespace SQLite {
class Database;
}

namespace rayvault::state {

// A job as stored: its wire record plus what the worker needs to run it again after a restart.
struct StoredJob {
  protocol::JobRecord record;
  protocol::json payload = protocol::json::object();
  std::string artifact_dir;  // where its artifacts live (output_dir or jobs/<id>/artifacts)
  int priority = 0;          // its place among queued jobs (higher first)
  // Where the job was handed to run outside this process ({"slurm_job_id", "dir", ...} for a
  // Slurm job); empty while it runs, or is to run, in the worker's own slots.
  protocol::json launch = protocol::json::object();
};

// A job as readers share it: the stored job and its RECORD as the wire writes it, plain and as the
// answer to a repeated submission (idempotent, cached_job_id = its own id). Never changed once made;
// a write of the job makes a new one.
struct JobView {
  StoredJob job;
  std::string record_text;      // protocol::record_json(job.record)
  std::string idempotent_text;  // the same with idempotent = true, cached_job_id = job_id
};
std::shared_ptr<const JobView> make_view(StoredJob job);

struct LogLine {
  std::string ts, level, event, message;
};

// A job's log as the wire serves it: one {event, job_id, level, message, ts} object a line.
std::string render_log(const std::string& job_id, const std::vector<LogLine>& lines);

enum class Admission { created, existing };

class JobStore {
 public:
  // Opens (creating) the database file; error (io) when it cannot be opened or migrated.
  static Result<std::unique_ptr<JobStore>> open(const std::filesystem::path& db_path);
  ~JobStore();

  // Inserts job unless its idempotency key (STEP:inputs_hash) or its job_id is already known, in
  // one transaction. Returns the stored job and whether it was created. Records (run_id, job_id)
  // as an alias of the existing job when the submission came from another run.
  Result<std::pair<StoredJob, Admission>> admit(const StoredJob& job);

  std::optional<StoredJob> get(const std::string& job_id);

  // Resolves a (run_id, job_id) asked by a client to the stored job, through aliases.
  // nullopt when no job has that id; the job with forbidden=true when the run does not match.
  struct Lookup {
    StoredJob job;
    bool run_matches = false;
  };
  std::optional<Lookup> lookup(const std::string& run_id, const std::string& job_id);
  // The same, shared rather than copied (status polls).
  struct ViewLookup {
    std::shared_ptr<const JobView> view;
    bool run_matches = false;
  };
  std::optional<ViewLookup> lookup_view(const std::string& run_id, const std::string& job_id);

  // The job a repeated submission names, from memory only: its idempotency key (STEP:inputs_hash)
  // is known to belong to job_id, stored under run_id. Null otherwise (admit decides then).
  std::shared_ptr<const JobView> known_submission(const std::string& step_name, const std::string& inputs_hash,
                                                  const std::string& run_id, const std::string& job_id);

  // Writes the mutable fields of a job (status, progress, timings, results).
  Status update(const StoredJob& job);

  Status append_log(const std::string& job_id, const LogLine& line);
  std::vector<LogLine> logs(const std::string& job_id);

  // Jobs still queued, oldest first (to re-enqueue at start).
  std::vector<std::string> queued_job_ids();

  // Jobs still running that were handed to a launcher (Slurm), oldest first: a restarted worker
  // follows them again.
  std::vector<std::string> running_launched_job_ids();

  // Marks every job left 'running' by a previous process as failed/WORKER_RESTARTED; returns them.
  // With keep_launched, jobs handed to a launcher (still running there) are left as they are.
  std::vector<std::string> fail_interrupted(const std::string& now, const std::string& message, bool keep_launched = false);

  // Number of jobs queued or running.
  int active_count();

  // Another job (not job_id) whose artifacts are, or are being, written into artifact_dir: one
  // that is running there, is in Slurm (queued there, with a claimed folder), or that published
  // artifacts there. Empty when none.
  std::string other_job_in(const std::string& artifact_dir, const std::string& job_id);

 private:
  explicit JobStore(std::unique_ptr<SQLite::Database> db);
  // Reads of a job go through a small cache of recently read jobs (status polls read the same
  // jobs many times a second); every write of a job drops its entry. Caller holds mu_.
  std::shared_ptr<const JobView> view_cached(const std::string& job_id);
  std::optional<StoredJob> select_cached(const std::string& job_id);
  void forget(const std::string& job_id);
  void remember_key(const std::string& key, const std::string& job_id);
  static constexpr std::size_t kRememberedKeys = 65536;
  std::unique_ptr<SQLite::Database> db_;
  std::mutex mu_;
  static constexpr std::size_t kCachedJobs = 1024;
  static constexpr std::size_t kCachedBytes = 8u << 20;  // payloads can be large (TTS texts)
  struct Cached {
    std::shared_ptr<const JobView> view;
    std::list<std::string>::iterator at;
    std::size_t bytes = 0;
  };
  std::list<std::string> recent_;  // most recently read first
  std::unordered_map<std::string, Cached> cache_;
  std::size_t cached_bytes_ = 0;
  std::unordered_map<std::string, std::string> idempotency_;  // idempotency key -> job id (never changes once set)
};

// The idempotency key of a job.
std::string idempotency_key(const std::string& step_name, const std::string& inputs_hash);

}  // namespace rayvault::state
