// What the controller knows of the mesh's nodes: probes recorded in the ledger, cool-downs, the
// node view (`nodes`, `health --table`) and the plain-text tables of the views.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "controller/cluster.hpp"
#include "state/ledger.hpp"

namespace rayvault::controller {

// A node with no answered probe for this long is stale.
inline constexpr int kStaleAfterSec = 300;

// The capabilities worth a glance: os, cpu, ram_gb, gpu_model, vram_gb, gpus, slots, steps, tags.
json caps_summary(const json& caps);

// Records every probe in the ledger (best effort: a read-only state folder does not stop a view).
void record_probes(state::Ledger& ledger, const std::vector<HealthProbe>& probes);

// Nodes in a cool-down now, with when it ends.
std::map<std::string, std::string> cooling_nodes(state::Ledger& ledger);

// Starts a node's cool-down (cooldown_sec from nodes.json) after it failed a job, or ends it.
void start_cooldown(state::Ledger& ledger, const Cluster& cluster, const std::string& node_id, const std::string& reason);
void end_cooldown(state::Ledger& ledger, const std::string& node_id);

// One node's row of the node view: this probe's answer (when it was probed) over what the ledger
// kept of earlier probes.
json node_row(const state::NodeEntry& node, const HealthProbe* probe, const state::NodeState* kept);

// A plain-text table: a header row, then rows; columns padded to their widest cell.
std::string render_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);

// Text of a JSON cell: strings as they are, null as "-", numbers and booleans as JSON writes them.
std::string cell(const json& v);

}  // namespace rayvault::controller
