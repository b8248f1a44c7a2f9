// What every controller command shares: nodes.json, the secret and where it came from, the
// state folders, and probing workers in parallel.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "controller/worker_client.hpp"
#include "state/nodes_config.hpp"

namespace rayvault::controller {

struct GlobalOptions {
  std::string nodes_file = "state/cluster/nodes.json";
  std::string cluster_secret;  // --cluster-secret
};

struct SecretInfo {
  std::string value;
  std::string source;  // "cli", "env:NAME" or "none"
  std::string mode;    // RAYVAULT_CONTROLLER_AUTH_MODE, default hmac_strict
  bool allow_plain_fallback = false;
};

// --cluster-secret, else the variable auth.secret_env names, else RAYVAULT_CLUSTER_SECRET_CURRENT,
// else RAYVAULT_CLUSTER_SECRET. An empty value means none was found.
SecretInfo resolve_secret(const GlobalOptions& g, const state::NodesConfig& cfg);

class Cluster {
 public:
  // Loads nodes.json; error (config) when it is missing or invalid.
  static Result<Cluster> load(const GlobalOptions& g);

  const state::NodesConfig& config() const { return config_; }
  const SecretInfo& secret() const { return secret_; }
  std::filesystem::path receipt_dir(const std::string& run_id, const std::string& job_id) const;
  WorkerClient client_for(const state::NodeEntry& node, double timeout_sec) const;
  WorkerClient client_for(const state::NodeEntry& node) const { return client_for(node, node.timeout_sec); }

  // Error (config) when no secret was found.
  Status require_secret() const;

 private:
  state::NodesConfig config_;
  SecretInfo secret_;
};

struct HealthProbe {
  const state::NodeEntry* node = nullptr;
  bool ok = false;
  long long elapsed_ms = 0;
  json answer;        // the worker's /health document
  std::string error;  // why not ok
};

// GET /health on every given node at once, each bounded by its own timeout_sec.
std::vector<HealthProbe> probe_health(const Cluster& cluster, const std::vector<const state::NodeEntry*>& nodes);

// Prints a JSON document on stdout (indented, as the reference does).
void print_json(const json& doc);

// Exits a command with an error document {ok: false, error} and the error's exit code.
int print_error(const Error& e);

}  // namespace rayvault::controller
