// Placing one job on the mesh: probe the workers, keep those that fit, order them (free slots,
// queue, latency, cool-down), run the job on the first and follow it, fail over to the next on a
// fault of the node, and run it locally when none fits or all fail. Every node tried (or passed
// over) is an attempt in the submit output, the receipt and the ledger.
#pragma once

#include <optional>
#include <vector>

#include "controller/cluster.hpp"
#include "controller/local_runner.hpp"
#include "controller/selection.hpp"
#include "state/ledger.hpp"

namespace rayvault::controller {

struct DispatchOptions {
  bool no_local_fallback = false;
  std::optional<int> priority;  // sent to workers that advertise "priority"
};

// Runs the job and returns the submit output document ({ok, mode, ..., attempts}). `probes` are
// fresh /health answers of the enabled workers (probed here when null). Error only when the
// controller itself cannot go on (its ledger, its receipt folder).
Result<json> dispatch_job(const Cluster& cluster, state::Ledger& ledger, const JobRequest& req,
                          const Requirements& requirements, const DispatchOptions& options,
                          const std::vector<HealthProbe>* probes = nullptr);

}  // namespace rayvault::controller
