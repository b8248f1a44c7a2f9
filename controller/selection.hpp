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
  std::vector<std::string> warnings;  // values interpreted, for stderr
};

// Reads a requirements object as the Python controller does: numeric strings are numbers,
// "true"/"false"/0/1 are booleans (with a warning). Error (invalid_input) naming a field that
// cannot be read, or an unknown key (stricter on purpose: a typo must not match every worker).
Result<Requirements> parse_requirements(const json& j);

// Empty when caps meet the requirements and the worker can run step (when it lists
// supported_steps); otherwise why not, e.g. "ram_gb 8 < 16".
std::string unmet_reason(const json& caps, const Requirements& req, const std::string& step);

struct Candidate {
  std::size_t index = 0;   // position in nodes.json, the tie-breaker
  int queue_depth = 0;
  int slots = 1;
};

// Orders candidates least-loaded first: queue_depth / slots, then queue_depth, then file order.
void order_by_load(std::vector<Candidate>& candidates);

}  // namespace rayvault::controller
