// Finding where a submitted job lives: the ledger's row, overridden by --node-id/--inputs-hash.
#pragma once

#include <optional>
#include <string>

#include "controller/cluster.hpp"
#include "controller/sync.hpp"
#include "state/ledger.hpp"

namespace rayvault::controller {

struct JobLookup {
  std::string run_id, job_id;               // as given, trimmed
  std::optional<state::LedgerEntry> entry;  // the ledger's row, if any
  bool local = false;                       // it ran on the controller (no node to ask)
  RemoteJob remote;                         // filled when !local
};

// Error (invalid_input) for ids the contract refuses or a missing inputs_hash, (not_found) for
// a job the ledger does not know when no node is given, or an unknown node.
Result<JobLookup> find_job(const Cluster& cluster, state::Ledger& ledger, const std::string& run_id,
                           const std::string& job_id, const std::string& node_id, const std::string& inputs_hash);

// Everything a command about one existing job needs: the cluster, its ledger, and the job.
struct OpenedJob {
  Cluster cluster;
  std::unique_ptr<state::Ledger> ledger;
  JobLookup job;
};

enum class Secret { optional, required };

// Loads nodes.json and the ledger and finds the job (see find_job for its errors). With
// Secret::required, error (config) first when no secret is configured.
Result<OpenedJob> open_job(const GlobalOptions& g, const std::string& run_id, const std::string& job_id,
                           const std::string& node_id, const std::string& inputs_hash,
                           Secret secret = Secret::optional);

}  // namespace rayvault::controller
