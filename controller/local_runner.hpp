// Local execution on the controller: the worker engine in-process, with the local result cache
// state/cluster/local_cache/<step_lower>_<inputs_hash>.json.
#pragma once

#include <optional>
#include <string>

#include "controller/cluster.hpp"
#include "controller/staging.hpp"
#include "state/ledger.hpp"

namespace rayvault::controller {

struct JobRequest {
  std::string run_id, job_id, step_name, inputs_hash;
  json payload = json::object();  // with its paths as given: what runs here and on workers without "blobs"
  bool force = false;
  // The input files, and the payload naming them by digest, for workers that keep blobs.
  std::optional<StagedInputs> staged;
};

// Runs the job locally (or answers the cached result unless force), writes the receipt folder and
// the ledger row, and returns the submit output document. `reason` says why it runs locally;
// `attempts` are the nodes tried or passed over before (the local run is added to them).
Result<json> run_local(const Cluster& cluster, state::Ledger& ledger, const JobRequest& req, const std::string& reason,
                       const json& attempts = json::array());

}  // namespace rayvault::controller
