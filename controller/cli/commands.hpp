// The controller's subcommands. Each prints one JSON document on stdout and returns the exit code.
#pragma once

#include <optional>
#include <string>

#include "controller/cluster.hpp"

namespace rayvault::controller::cli {

// How a view prints: JSON (scripts), a table (people), or a table only on a terminal.
enum class ViewFormat { automatic, json, table };

// `health`: the Python controller's document (a table with --table).
int run_health(const GlobalOptions& g, ViewFormat format);
// `nodes`: every worker node, reachable or not, with what the ledger kept of it.
int run_nodes(const GlobalOptions& g, ViewFormat format);

// `jobs`: submissions from the ledger, newest first.
struct JobsOptions {
  std::string status, run_id;
  int limit = 1000;
  ViewFormat format = ViewFormat::automatic;
};
int run_jobs(const GlobalOptions& g, const JobsOptions& o);

struct CapsOptions {
  std::string node_id;
  std::string run_id = "cluster_caps_probe";
};
int run_caps(const GlobalOptions& g, const CapsOptions& o);

struct SubmitOptions {
  std::string run_id, job_id, step_name;
  std::string payload_json, payload_file;
  std::string requirements_json, requirements_file;
  std::string inputs_hash;
  bool force = false;
  bool no_local_fallback = false;
  std::optional<int> priority;  // sent to workers that advertise "priority"
  std::vector<std::string> inputs;  // --input FIELD=PATH: a file to stage, set as payload.FIELD
  bool no_stage = false;             // --no-stage: paths travel as given, no file is sent
  std::string batch_file;       // --batch: many jobs at once (controller/batch.hpp)
  int max_per_worker = 0;
};
int run_submit(const GlobalOptions& g, const SubmitOptions& o);

struct SyncOptions {
  std::string run_id, job_id, node_id, inputs_hash;
};
int run_sync_artifacts(const GlobalOptions& g, const SyncOptions& o);

// `status`: the ledger's row and the worker's live record. `logs`: the job's log lines.
using JobOptions = SyncOptions;
int run_status(const GlobalOptions& g, const JobOptions& o);
int run_logs(const GlobalOptions& g, const JobOptions& o);

// `cancel`: asks the node that runs a job to cancel it and follows it until it has stopped.
// Exit 0 when it is cancelled, 2 when it had already ended (or ran locally), 5 when it is still
// stopping after wait_sec.
struct CancelOptions : SyncOptions {
  std::string reason;
  int wait_sec = 60;
};
int run_cancel(const GlobalOptions& g, const CancelOptions& o);

}  // namespace rayvault::controller::cli
