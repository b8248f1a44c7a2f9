// The job engine: admits jobs (idempotently), runs them in a bounded pool of slots, persists
// every state change and writes each job's receipt. It has no HTTP in it: the worker daemon
// serves it over the network, and the controller runs it in-process for local fallback.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "state/job_store.hpp"
#include "util/time.hpp"
#include "worker/slurm.hpp"
#include "worker/step.hpp"

namespace rayvault::worker {

class BlobStore;

struct EngineConfig {
  fs::path root;                 // jobs/, workspace/ and worker.db live here
  std::string worker_id;
  int slots = 1;                 // jobs running at once
  std::chrono::seconds job_timeout{1800};  // per step, unless payload.timeout_sec says less
  util::Clock clock = util::system_clock();
  StepConfig step_config;  // empty cache_dir: <root>/cache; empty env_file: <root>/worker.env
  std::vector<GpuDevice> gpus;  // GPU slots: jobs_per_gpu for each; GPU steps fail GPU_REQUIRED without one
  int jobs_per_gpu = 1;
  // The Slurm launch mode: the steps it names run as Slurm batch jobs (engine_slurm.cpp), the
  // others in the slots here. Null: every step runs here.
  std::shared_ptr<const slurm::Config> slurm;
  // Staged input files (extension "blobs"): a payload field {"blob", "name"} is given to the step
  // as the path of this store's copy. Null: such payloads are refused.
  std::shared_ptr<BlobStore> blobs;
};

struct Submission {
  std::string run_id, job_id, step_name, inputs_hash;
  json payload = json::object();
  bool force = false;         // run a finished job again instead of answering its record
  bool retry_failed = false;  // run a failed job again (any failure), answer a succeeded one
  int priority = 0;           // higher runs first among queued jobs; equal ones in arrival order
};

// What the slots are doing now: GET /health reports it so controllers place jobs by free slots.
struct EngineLoad {
  int cpu_slots = 0, cpu_running = 0, cpu_queued = 0;
  int gpu_slots = 0, gpu_running = 0, gpu_queued = 0;
};

struct Admitted {
  state::StoredJob job;
  bool idempotent = false;
};

class Engine {
 public:
  // Opens the store under config.root and marks jobs a previous process left running as failed
  // (WORKER_RESTARTED). Error (io) when the root or its database cannot be used.
  static Result<std::unique_ptr<Engine>> open(EngineConfig config, StepRegistry steps);
  ~Engine();

  // Starts the slot threads and queues the jobs still queued in the store.
  void start();
  // Stops taking jobs, stops running children, marks their jobs failed (WORKER_RESTARTED), joins.
  void stop();

  // Admits a job, or answers the existing one for the same STEP:inputs_hash or job_id. A job that
  // failed through a fault of the node (WORKER_RESTARTED, a missing tool, ...) is queued again, so
  // is any failed job when retry_failed is set, and any finished job when force is set. Ids are
  // trimmed; error (invalid_input) for ids the contract refuses (protocol::normalize_id).
  Result<Admitted> submit(const Submission& s);
  // The answer to a submission that changes nothing, found in memory: the same job id, run and
  // STEP:inputs_hash as a job held here that submit would answer as it stands (what a retrying
  // client sends). Null when submit must decide.
  std::shared_ptr<const state::JobView> known_submission(const Submission& s);

  // Cancels a job: a queued one ends at once without running; a running one has its whole process
  // tree stopped and is answered once it has ended, or as it is (still running) after `within`.
  // Either way its status becomes `cancelled`, error_code CANCELLED, and its message says why;
  // nothing it half made is published. A job already cancelled is answered as it is; a finished
  // one is error (conflict). Submitting a cancelled job again runs it.
  Result<state::StoredJob> cancel(const std::string& job_id, const std::string& reason,
                                  std::chrono::milliseconds within = std::chrono::seconds(20));

  std::optional<state::JobStore::Lookup> lookup(const std::string& run_id, const std::string& job_id);
  std::optional<state::JobStore::ViewLookup> lookup_view(const std::string& run_id, const std::string& job_id);

  // Blocks until the job is terminal or the deadline passes; returns its latest state.
  std::optional<state::StoredJob> wait(const std::string& job_id, std::chrono::steady_clock::time_point deadline);

  std::vector<state::LogLine> logs(const std::string& job_id);

  // The job as stored now, by its own id.
  std::optional<state::StoredJob> job(const std::string& job_id);

  // A counter that grows whenever a job changes state; wait_for_change blocks until it differs
  // from `seen`, the deadline passes or the engine stops, and returns its value then. For waiters
  // that watch many jobs at once (the server's long polls).
  std::uint64_t change_count();
  std::uint64_t wait_for_change(std::uint64_t seen, std::chrono::steady_clock::time_point deadline);

  int queue_depth();
  // The GPU figures describe the Slurm lane when it runs POSE_ESTIMATE: its capacity (max_jobs,
  // or fewer when the cluster has fewer GPUs free), jobs in Slurm, jobs waiting to be submitted.
  EngineLoad load();
  // What the Slurm lane last read from sinfo, for caps ({} before the first read); null when the
  // worker does not run Slurm jobs.
  json slurm_info();
  int slots() const { return config_.slots; }
  int gpu_slots() const { return static_cast<int>(config_.gpus.size()) * config_.jobs_per_gpu; }
  const EngineConfig& config() const { return config_; }
  std::vector<std::string> supported_steps() const;
  fs::path workspace_root() const { return config_.root / "workspace"; }

 private:
  Engine(EngineConfig config, StepRegistry steps, std::unique_ptr<state::JobStore> store);
  // A slot: CPU slots take queue_, GPU slots take gpu_queue_ and hold `gpu`.
  void slot_loop(const GpuDevice* gpu);
  void run_job(const std::string& job_id, const std::atomic<bool>& cancel, const GpuDevice* gpu);
  // Puts a job on the queue of the slots that run its step, after every queued job of its priority
  // or higher. Caller holds mu_.
  void enqueue_locked(const std::string& job_id, const std::string& step_name, int priority);
  void finish(state::StoredJob& job);
  // The payload the step is given: each blob reference replaced by the path of a link to the
  // blob, named as the reference says, in `inputs` (created). Error (BLOB_MISSING) for a blob
  // that is not held.
  Result<json> resolve_inputs(const json& payload, const fs::path& inputs) const;
  // Keeps the blobs a job's payload names while it is queued or running (those held now).
  void pin_blobs(const std::string& job_id, const json& payload);
  // Sets a job's fields for its end as cancelled.
  void mark_cancelled(state::StoredJob& job, const std::string& reason);
  void log(const std::string& job_id, LogLevel level, std::string_view event, std::string_view message);
  Result<fs::path> artifact_dir_for(const state::StoredJob& job) const;
  void notify();
  // Terminal states the store could not take (a full disk) are answered from memory: overlay
  // puts one in place of what the store read, then tries to write them all again.
  void overlay(state::StoredJob& job);
  std::shared_ptr<const state::JobView> overlay(std::shared_ptr<const state::JobView> view);
  // Claims the job's artifact folder (refusing one another job holds) and stores the claim.
  Result<fs::path> claim_artifact_dir(state::StoredJob& job);
  // Moves each named file from staging into dir (copying across file systems) and hashes it:
  // the RECORD's artifact rows. Error (STORAGE_FAILED) when one cannot be moved.
  static Result<json> publish_artifacts(const fs::path& staging, const fs::path& dir, const std::vector<std::string>& names);
  // Sets a job's fields for a failure with the given code.
  void mark_failed(state::StoredJob& job, const Error& e);
  // Sets a job's fields for a step that ran to its end: succeeded, or failed by its verdict.
  void mark_finished(state::StoredJob& job, json metrics, std::string message, bool verdict_failed);

  // The Slurm lane (engine_slurm.cpp): one thread submits the jobs of Slurm's steps, follows them
  // all with one squeue call a round (backing off while nothing changes), and ends them here.
  bool slurm_handles(const std::string& step_name) const;
  void slurm_loop();
  void slurm_submit(const std::string& job_id);
  bool slurm_poll();
  void slurm_end(const std::string& job_id, const slurm::JobState& st);
  void slurm_update(const std::string& job_id, const slurm::JobState& st);
  // The Slurm jobs to follow again after a restart, and the ones still to submit.
  void slurm_resume_locked(const state::StoredJob& job);
  // A job that ends before it reached Slurm: an sbatch whose answer never came is cancelled by
  // its job name, and its folder in the shared folder goes.
  void slurm_drop_submission(state::StoredJob& job);
  // scancel for a job that ended here; retried by the lane while Slurm does not answer.
  void slurm_cancel_job(const std::string& slurm_id);
  EngineConfig config_;
  StepRegistry steps_;
  std::unique_ptr<state::JobStore> store_;

  std::mutex mu_;
  std::condition_variable queue_cv_;   // slots wait for work
  std::condition_variable change_cv_;  // waiters for job changes
  struct Queued {
    std::string job_id;
    int priority = 0;
  };
  std::deque<Queued> queue_;      // for CPU slots, highest priority first
  std::deque<Queued> gpu_queue_;  // for GPU slots
  std::map<std::string, std::shared_ptr<std::atomic<bool>>> running_;  // job_id -> cancel flag
  int cpu_running_ = 0, gpu_running_ = 0;  // runs under way (a map entry may be a newer run's)
  std::map<std::string, std::string> cancel_reasons_;  // running jobs asked to stop, and why
  bool stopping_ = false;
  std::uint64_t changes_ = 0;
  std::atomic<std::uint64_t> submissions_{0};  // names the blob pins of submissions being admitted
  std::mutex claim_mu_;  // a job's check and claim of its artifact folder are one step
  std::mutex unsaved_mu_;
  std::map<std::string, state::StoredJob> unsaved_;
  std::vector<std::thread> threads_;

  std::unique_ptr<slurm::Client> slurm_client_;
  std::deque<Queued> slurm_queue_;  // admitted jobs of Slurm's steps, not yet submitted
  std::string slurm_submitting_;    // the job sbatch is being run for
  struct Followed {
    std::string slurm_id, state, reason;
    int restarts = 0;
    fs::path dir;          // the job's folder in the shared folder
    bool resumed = false;  // followed again after a restart of the worker
    std::chrono::steady_clock::time_point end_seen{};  // Slurm said it ended, its result not yet seen
  };
  std::map<std::string, Followed> slurm_jobs_;  // job_id -> its Slurm job
  std::vector<std::string> slurm_orphans_;      // Slurm job ids to scancel (their jobs ended here)
  json slurm_info_ = json::object();
  std::chrono::steady_clock::time_point slurm_retry_at_{};  // no sbatch before (slurmctld did not answer)
  std::chrono::milliseconds slurm_retry_wait_{0};
  std::condition_variable slurm_cv_;
  // Held while a followed job's state is written: the lane's updates and a cancel that ends the
  // job never interleave (taken before mu_).
  std::mutex slurm_mu_;
};

}  // namespace rayvault::worker
