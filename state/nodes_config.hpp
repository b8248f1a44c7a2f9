// nodes.json: the cluster's node list and the controller's settings, loaded and validated.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.hpp"

namespace rayvault::state {

struct NodeEntry {
  std::string node_id;
  std::string host;
  int port = 8787;
  std::string role = "worker";
  bool enabled = true;
  double timeout_sec = 20.0;
  std::vector<std::string> tags;

  // Only enabled nodes with role "worker" take jobs.
  bool takes_jobs() const { return enabled && role == "worker"; }
};

struct ControllerSettings {
  std::string node_id = "controller";
  double request_timeout_sec = 15.0;
  double poll_interval_sec = 2.0;
  double poll_timeout_sec = 900.0;
  std::filesystem::path local_workspace_root;  // default: <state_dir>/local_worker
};

struct NodesConfig {
  std::string cluster_name;
  std::filesystem::path state_dir = "state/cluster";
  std::string secret_env;  // auth.secret_env: the variable that holds the secret
  ControllerSettings controller;
  std::vector<NodeEntry> nodes;
};

// Parses and validates nodes.json text. Error (config) naming the first bad field: wrong types,
// a node without node_id or host, duplicate or unsafe node ids, ports outside 1..65535,
// non-positive timeouts, hosts with a scheme, path or white space.
Result<NodesConfig> parse_nodes_config(std::string_view text);

// Reads and parses a nodes.json file (at most 1 MiB). Error (config) when missing or invalid.
Result<NodesConfig> load_nodes_config(const std::filesystem::path& path);

}  // namespace rayvault::state
