// Placing one job on the mesh: probe the workers, keep those that fit, order them (free slots,
// queue, latency, cool-down), run the job on the first and follow it, fail over to the next on a
// fault of the node, and run it locally when none fits or all fail. Every node tried (or passed
// over) is an attempt in the submit output, the receipt and the ledger.
#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <string_view>
#include <vector>

#include "controller/cluster.hpp"
#include "controller/local_runner.hpp"
#include "controller/selection.hpp"
#include "controller/watch.hpp"
#include "state/ledger.hpp"

namespace rayvault::controller {

struct DispatchOptions {
  bool no_local_fallback = false;
  std::optional<int> priority;  // sent to workers that advertise "priority"
  // A batch bounds the jobs it has on each node: acquire is asked before a node is tried (false:
  // the node is passed over for now, which is not an attempt) and release once it is done with it.
  std::function<bool(const state::NodeEntry&)> acquire;
  std::function<void(const state::NodeEntry&)> release;
  // Held while the job runs locally: one local engine at a time uses the local workspace.
  std::mutex* local_mutex = nullptr;
  // The node to try first (a batch's reservation, or the node that already has the job).
  std::string preferred;
  // Follows jobs on workers that advertise "watch" with one long poll a node for all of them (a
  // batch); null: each job with its own.
  JobWatch* watch = nullptr;
  // When fitting nodes were passed over only because acquire refused them, answer the error
  // kBusyRetry instead of running locally: the caller tries again when there is room.
  bool busy_means_retry = false;
};

inline constexpr std::string_view kBusyRetry = "every fitting worker is busy with this batch";

// A job as given (submit's flags, or one entry of a batch file), checked and made ready to place:
// ids normalized, payload an object, requirements from `requirements` or else payload.requirements
// (POSE_ESTIMATE: a GPU with 8 GB unless said otherwise), inputs_hash trimmed and lower-cased or
// the payload's hash. Error (invalid_input) naming what is wrong; `what` prefixes the message
// (e.g. "batch job 3: ").
struct JobSpec {
  std::string run_id, job_id, step_name, inputs_hash;
  json payload;       // null: {}
  json requirements;  // null: from the payload
  bool force = false;
  // Input files (controller/staging.hpp): the step's input fields and these are found and hashed
  // here, and staged to workers that keep blobs. stage false (--no-stage): paths travel as given.
  std::vector<std::string> input_fields;
  bool stage = true;
};
Result<std::pair<JobRequest, Requirements>> prepare_job(const JobSpec& spec);

// Runs the job and returns the submit output document ({ok, mode, ..., attempts}). `probes` are
// fresh /health answers of the enabled workers (probed here when null). Error only when the
// controller itself cannot go on (its ledger, its receipt folder).
Result<json> dispatch_job(const Cluster& cluster, state::Ledger& ledger, const JobRequest& req,
                          const Requirements& requirements, const DispatchOptions& options,
                          const std::vector<HealthProbe>* probes = nullptr);

}  // namespace rayvault::controller
