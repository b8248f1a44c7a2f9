// What every controller command shares: nodes.json, the secret and where it came from, the
// state folders, and probing workers in parallel.
#pragma once

#include <filesystem>
#include <optional>
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
  std::string source;  // "cli", the variable's name (RAYVAULT_CLUSTER_SECRET, ...) or "none"
  std::string mode;    // RAYVAULT_CONTROLLER_AUTH_MODE, default hmac_strict
  bool allow_plain_fallback = false;
};

// --cluster-secret, else the variable auth.secret_env names, else RAYVAULT_CLUSTER_SECRET_CURRENT,
// else RAYVAULT_CLUSTER_SECRET; each trimmed, a blank one skipped. An empty value means none was
// found. The auth mode is lower-cased.
SecretInfo resolve_secret(const GlobalOptions& g, const state::NodesConfig& cfg);

class Cluster {
 public:
  // Loads nodes.json, printing its warnings on stderr; error (config) when it is missing or is not
  // a JSON object.
  static Result<Cluster> load(const GlobalOptions& g);

  const state::NodesConfig& config() const { return config_; }
  const SecretInfo& secret() const { return secret_; }
  // state/cluster/receipts/<run_id>/<job_id>/, each id through protocol::id_folder_name.
  std::filesystem::path receipt_dir(const std::string& run_id, const std::string& job_id) const;

  // The enabled nodes whose role is worker: the ones health, caps and submit use.
  std::vector<const state::NodeEntry*> worker_nodes() const;
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

// True when a worker's caps list `feature` in protocol_features (Python nodes list none).
bool has_protocol_feature(const json& caps, std::string_view feature);

// The v0.5 probe of a node that answered /health with an HTTP error: when it refuses the v1 caps
// envelope as unprocessable (400/422) and accepts the v0.5 caps body signed with HMAC (never the
// plain token, which carries the secret: only `caps` sends that, when allowed), a health-like answer {ok, version,
// worker_id, queue_depth: 0, caps (with supported_steps, the contract's five, and _compat_mode),
// _compat_mode}; nullopt otherwise.
std::optional<json> probe_legacy(WorkerClient& client, const state::NodeEntry& node);

// GET /health on every given node at once, each bounded by its own timeout_sec; a node without
// /health is tried as a v0.5 node when a secret is known (probe_legacy).
std::vector<HealthProbe> probe_health(const Cluster& cluster, const std::vector<const state::NodeEntry*>& nodes);

// Prints a JSON document on stdout (indented, as the reference does).
void print_json(const json& doc);

// Exits a command with an error document {ok: false, error} and the error's exit code.
int print_error(const Error& e);

}  // namespace rayvault::controller
