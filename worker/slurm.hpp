// The Slurm launch mode's parts that know Slurm: the worker's Slurm settings, the batch script it
// writes for a job, and the calls to sbatch, squeue, scontrol, sacct, scancel and sinfo (each with
// a timeout, their output parsed here). The engine's Slurm lane (engine_slurm.cpp) drives them.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/json.hpp"
#include "util/error.hpp"

namespace rayvault::worker::slurm {

namespace fs = std::filesystem;
using protocol::json;

// What one Slurm job of a step asks for. The worker's configuration sets the limits; a payload's
// `slurm` object may lower them (never raise them), and pick a partition the configuration lists.
struct Resources {
  std::string partition;   // "": Slurm's default partition
  int time_limit_min = 60;  // --time, whole minutes (Slurm's smallest is 1)
  int gpus = 1;            // --gres=gpu[:type]:N; 0: no GPU asked
  std::string gpu_type;    // "": any GPU type
  int cpus = 1;            // --cpus-per-task
  int mem_mb = 0;          // --mem; 0: the partition's default
  std::string account, qos;
  std::vector<std::string> extra;  // further sbatch options, each one "--name[=value]" token
};

struct Config {
  std::vector<std::string> steps{"POSE_ESTIMATE"};  // the steps that go to Slurm; others run here
  fs::path shared_dir;     // job folders (script, inputs, results); must be seen by the compute nodes
  fs::path worker_binary;  // what the batch script runs; default: this program
  fs::path bin_dir;        // where Slurm's commands are; empty: PATH
  Resources defaults;
  std::map<std::string, Resources> step_options;  // per step, in place of defaults
  std::vector<std::string> partitions;            // partitions a payload may choose
  int max_jobs = 64;                   // Slurm jobs of this worker queued or running at once
  std::chrono::milliseconds poll_min{1000}, poll_max{30000};  // squeue backoff
  std::chrono::seconds command_timeout{30};                  // one Slurm command's limit
  std::chrono::seconds info_refresh{60};                     // sinfo for caps and /health
  std::string gpu_model;    // caps: what the cluster's GPUs are (Slurm knows only the GRES type)
  double gpu_vram_gb = 0;   // caps: what one of them holds

  bool handles(std::string_view step) const;
  const Resources& limits_for(std::string_view step) const;
};

// The settings from a JSON file (the README shows one); missing keys keep their defaults. Error
// (config) naming the key for anything malformed: a value Slurm would read otherwise than meant
// (whitespace, quotes, '%' in paths), an option the worker sets itself, an unknown key.
Result<Config> load_config(const fs::path& file);
// Defaults: shared_dir <root>/slurm, worker_binary this program. Error (config) when a path the
// batch script names holds what Slurm or the shell would misread.
Status complete_config(Config& config, const fs::path& root);

// What one job gets: its step's limits lowered by payload.slurm and payload.timeout_sec. Notes
// say what was asked above a limit and kept at it. Error (invalid_input) for a malformed
// payload.slurm or a partition not in the configuration's list.
Result<Resources> resources_for(const Config& config, std::string_view step, const json& payload,
                                std::vector<std::string>& notes);

// The Slurm job name: carries the worker, the job id and the attempt (a token new for each
// submission of the job), so a restarted worker finds exactly this attempt's Slurm job again.
std::string job_name(std::string_view worker_id, std::string_view job_id, std::string_view attempt);

// The batch script for a job folder: #SBATCH lines for the resources, --requeue, the output files
// DIR/slurm-%j.out and .err (appended across requeues), then the worker's own program running the
// step (`rayvault-worker slurm-step DIR`).
std::string batch_script(const Resources& r, const std::string& name, const fs::path& dir, const fs::path& worker_binary,
                         const std::string& about);

// A job as Slurm reports it.
struct JobState {
  std::string id, state, reason, nodes;  // state: PENDING, RUNNING, COMPLETED, FAILED, ...
  int restarts = 0;
  std::string exit_code;                 // "exit:signal", when known
  std::string time_limit, partition;
};
// True once Slurm will not run the job again (COMPLETED, FAILED, TIMEOUT, CANCELLED, ...).
bool is_terminal(std::string_view state);
// The wire error code for an end other than COMPLETED.
std::string_view error_code_for(std::string_view state);
// A reason Slurm gives for a pending job that no wait will clear (a time limit over the
// partition's, an account or QoS the job may not use, constraints no node meets).
bool never_starts(std::string_view reason);

// Slurm's GRES list ("gpu:a100:4(S:0-1),gpu:2") as {type, count} for its GPUs.
struct GresGpu {
  std::string type;
  int count = 0;
};
std::vector<GresGpu> parse_gres_gpus(std::string_view gres);

class Client {
 public:
  explicit Client(const Config& config) : config_(config) {}
  // sbatch --parsable SCRIPT in dir; the Slurm job id. Errors carry SLURM_MISSING,
  // SLURM_UNAVAILABLE (timed out, controller unreachable) or SLURM_SUBMIT_FAILED with Slurm's words.
  Result<std::string> submit(const fs::path& script, const fs::path& dir) const;
  // One squeue call for all ids; ids Slurm no longer lists are absent from the answer.
  Result<std::map<std::string, JobState>> query(const std::vector<std::string>& ids) const;
  // scontrol show job, else sacct (the job completion log) for a job squeue has forgotten;
  // nullopt when neither knows it.
  Result<std::optional<JobState>> show(const std::string& id) const;
  // This user's jobs of that name: those squeue still lists (any state), else those the
  // accounting database or the job completion log knows.
  Result<std::vector<std::string>> find_by_name(const std::string& name) const;
  Status cancel(const std::string& id) const;
  // scancel of this user's jobs of that name (a submission whose answer never came).
  Status cancel_by_name(const std::string& name) const;
  // sinfo: the partitions, their GPU types and counts, free GPUs; for caps.
  Result<json> cluster_info() const;

 private:
  struct Output {
    int exit_code = 0;
    std::string out, err;
  };
  Result<Output> run(const std::string& tool, std::vector<std::string> args) const;
  const Config& config_;
};

}  // namespace rayvault::worker::slurm

namespace rayvault::worker {
// `rayvault-worker slurm-step DIR`, run by the batch script on a compute node: runs the step that
// DIR/job.json describes with this build's step code, its artifacts in DIR/staging, its log as
// JSON lines on stdout (the Slurm job's output, which the worker joins to the job's log), and
// writes DIR/result.json. SIGTERM (scancel, a time limit) stops the step's tools. Exit 0 when the
// step succeeded, 3 when it failed, 1 when it could not run at all.
int run_slurm_step(const std::filesystem::path& dir);
}  // namespace rayvault::worker
