// Job requirements, matching a worker's caps against them, and ordering the workers that fit.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "protocol/json.hpp"
#include "util/error.hpp"

namespace rayvault::controller {

using protocol::json;

struct Requirements {
  std::vector<std::string> os_in;  // lower-case; empty: any
  std::optional<double> min_ram_gb, min_vram_gb;
  bool gpu_required = false;
  std::optional<bool> davinci_available;
  std::vector<std::string> tags;   // the node must carry every one (nodes.json tags or the worker's own)
  std::vector<std::string> steps;  // the worker must run every one of these besides the job's own step
  std::vector<std::string> warnings;  // values interpreted, for stderr
};

// Reads a requirements object as the Python controller does: numeric strings are numbers,
// "true"/"false"/0/1 are booleans (with a warning). Error (invalid_input) naming a field that
// cannot be read, or an unknown key (stricter on purpose: a typo must not match every worker).
Result<Requirements> parse_requirements(const json& j);

// Empty when caps meet the requirements and the worker can run step (when it lists
// supported_steps); otherwise why not, e.g. "ram_gb 8 < 16". node_tags are the tags nodes.json
// gives the node; the worker's own (caps "tags") count as well.
std::string unmet_reason(const json& caps, const Requirements& req, const std::string& step,
                         const std::vector<std::string>& node_tags = {});

// j[key] when it is an integer, else fallback (a peer's answer may hold anything).
int int_field(const json& j, const char* key, int fallback);

// What a node's /health says of its load, for the slots a step uses (GPU slots for GPU steps).
// Workers that report no `load` (the Python nodes) have caps.slots (else 1) slots, queue_depth of
// them taken.
struct NodeLoad {
  int free_slots = 0;
  int queue_depth = 0;
};
NodeLoad load_for_step(const json& health_answer, const std::string& step);

struct Candidate {
  std::size_t index = 0;  // position in nodes.json, the last tie-breaker
  int free_slots = 0;
  int queue_depth = 0;
  long long latency_ms = 0;
  bool cooling = false;  // failed a job a moment ago: tried only after the others
};

// A probe's latency as a class: 0 below 50 ms (every node on one site's network alike, whatever
// the jitter of a loaded machine), then one class per doubling (50-99 ms, 100-199 ms, ...).
int latency_class(long long ms);

// Orders candidates: nodes outside a cool-down first; then the most free slots, the shortest
// queue, the lowest latency class, file order.
void order_candidates(std::vector<Candidate>& candidates);

}  // namespace rayvault::controller
