// nodes.json: the cluster's node list and the controller's settings, loaded and validated.
#pragma once

#include <filesystem>
#include <string>
#include <optional>
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
  std::string unusable;  // why nodes.json's entry cannot be contacted as written ("" when it can)

  // Only enabled nodes with role "worker" take jobs.
  bool takes_jobs() const { return enabled && role == "worker"; }
};

struct ControllerSettings {
  std::string node_id = "controller";
  double request_timeout_sec = 15.0;
  double poll_interval_sec = 2.0;
  double poll_timeout_sec = 900.0;
  // A node that failed a job through its own fault is tried after every other fitting node for
  // this long (the mesh keeps a flaky node from taking job after job).
  double cooldown_sec = 60.0;
  // A node that answers nothing for this long while it runs a job has lost it: the job moves on.
  double node_silence_sec = 30.0;
  std::filesystem::path local_workspace_root;  // default: <state_dir>/local_worker
};

struct NodesConfig {
  std::string cluster_name;
  std::filesystem::path state_dir = "state/cluster";
  std::string secret_env;  // auth.secret_env: the variable that holds the secret
  ControllerSettings controller;
  std::vector<NodeEntry> nodes;
  std::vector<std::string> warnings;  // values interpreted and entries skipped, for stderr
};

// Parses nodes.json text, accepting every file the Python controller accepts: a numeric string is
// a number, "true"/"false"/0/1 are booleans, node_id and host are trimmed, a non-positive timeout
// keeps its default. A nodes[] entry that is not an object, has no node_id or host, or repeats a
// node_id is skipped. An entry whose host has a scheme, path or spaces, whose port is outside
// 1..65535, or one of whose fields has an unusable type is kept with `unusable` set, so it shows
// as failing rather than vanishing. Each of these is said in `warnings`. Error (config) only when
// the text is not a JSON object or a top-level field is unusable.
Result<NodesConfig> parse_nodes_config(std::string_view text);

// Reads and parses a nodes.json file (at most 1 MiB). Error (config) when missing or invalid.
Result<NodesConfig> load_nodes_config(const std::filesystem::path& path);

}  // namespace rayvault::state
