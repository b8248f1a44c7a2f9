// `submit --batch FILE`: many jobs at once over every fitting worker. A fixed set of threads (as
// many as the jobs the batch may have in flight: each worker's slots, or --max-per-worker) places
// the jobs through dispatch_job. A worker that advertises "watch" is asked after all of the
// batch's jobs on it with one long poll at a time (JobWatch); others get one long poll per job it
// runs, so at most that many of the batch's connections, however long the batch. Progress on stderr (a
// status line on a terminal, a line per finished job elsewhere), one receipt per job, a summary
// document on stdout and under state_dir/batches/. Jobs the ledger shows as succeeded with the
// same inputs_hash and a receipt are skipped, so a batch interrupted (Ctrl-C) and started again
// goes on where it stopped.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "controller/cluster.hpp"
#include "controller/dispatch.hpp"

namespace rayvault::controller {

struct BatchOptions {
  std::string run_id;            // for jobs that name none
  bool force = false;            // every job (a job's own "force" also counts)
  bool no_local_fallback = false;
  std::optional<int> priority;   // for jobs that name none
  int max_per_worker = 0;        // jobs in flight on one worker; 0: its slots
  bool no_stage = false;         // paths travel as given (controller/staging.hpp)
  double refresh_sec = 5.0;      // how often the workers are probed again
};

// A payload field that names an artifact of another job of the batch:
// {"artifact": "<job_id>", "name": "<artifact name>"}. Once that job has succeeded, the field is
// the path of the controller's synced copy, staged to the worker like any input file.
struct ArtifactInput {
  std::string field, job_id, name;
  std::size_t from = 0;  // the job's index in the batch
};

struct BatchJob {
  JobSpec spec;
  std::optional<int> priority;
  std::vector<std::string> need_ids;    // as written: `needs`, then the jobs of its artifacts
  std::vector<std::size_t> needs;       // the same as indices into the batch
  std::vector<ArtifactInput> artifacts;
};

// Reads a batch file: a JSON list of job objects, or one JSON object a line (blank lines and lines
// starting with '#' skipped). A job: {job_id, step_name, run_id?, payload?, requirements?,
// inputs_hash?, priority?, force?, needs?}. `needs` lists job ids of the same batch that must
// succeed first; a payload field {"artifact": JOB, "name": NAME} takes an artifact of JOB (which it
// then needs too). Error (invalid_input) naming the entry and what is wrong: not JSON, not an
// object, an unknown key, a missing or unusable field, a (run_id, job_id) given twice, a need that
// names no job of the batch (or two), a job that needs itself, a cycle of needs (named).
Result<std::vector<BatchJob>> read_batch_file(const std::filesystem::path& file, const BatchOptions& options);

// Runs the batch and prints its summary; returns the exit code: 0 when every job succeeded (or had
// already), 2 when one failed or the file is refused, 130 when interrupted.
int run_batch(const Cluster& cluster, const std::filesystem::path& file, const BatchOptions& options);

}  // namespace rayvault::controller
