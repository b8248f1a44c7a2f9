// Fuzz target bodies (shared by the libFuzzer binaries and the corpus replay test).
#include "tests/fuzz/targets.hpp"

#include <string_view>

#include "protocol/envelope.hpp"
#include "protocol/legacy.hpp"
#include "protocol/steps.hpp"
#include "state/nodes_config.hpp"
#include "util/strings.hpp"
#include "util/files.hpp"

namespace rayvault::fuzz {
namespace {
std::string_view view(const std::uint8_t* d, std::size_t n) { return {reinterpret_cast<const char*>(d), n}; }
}  // namespace

bool json_target(const std::uint8_t* data, std::size_t size) {
  auto v = protocol::parse_json(view(data, size));
  if (!v) return v.error().kind == ErrorKind::invalid_input;
  const std::string once = protocol::canonical_json(*v);
  auto again = protocol::parse_json(once);
  if (!again) return false;
  if (protocol::canonical_json(*again) != once) return false;
  if (protocol::inputs_hash(*again) != protocol::inputs_hash(*v)) return false;
  if (auto ordered = protocol::parse_json_ordered(view(data, size)); ordered) (void)protocol::legacy::python_str(*ordered);
  return true;
}

bool nodes_config_target(const std::uint8_t* data, std::size_t size) {
  auto cfg = state::parse_nodes_config(view(data, size));
  if (!cfg) return cfg.error().kind == ErrorKind::config && cfg.error().message.rfind("nodes.json: ", 0) == 0;
  // Every listed node has an id and a host; one that is usable has a valid port; timeouts are
  // positive; every warning names nodes.json.
  for (const auto& n : cfg->nodes) {
    if (n.node_id.empty() || n.node_id != util::trim(n.node_id) || n.host.empty() || !(n.timeout_sec > 0)) return false;
    if (n.unusable.empty() && (n.port < 1 || n.port > 65535)) return false;
  }
  for (const auto& w : cfg->warnings)
    if (w.rfind("nodes.json: ", 0) != 0) return false;
  return true;
}

bool envelope_target(const std::uint8_t* data, std::size_t size) {
  auto body = protocol::parse_json(view(data, size));
  if (!body) return true;
  const auto env = protocol::envelope_from_json(*body);
  const protocol::VerifyPolicy policy{protocol::steps::job_steps(), {"s3cret", "previous"},
                                      *util::parse_iso8601("2026-02-19T12:00:00Z"), protocol::kMaxSkewSeconds};
  auto r = protocol::verify_envelope(env, policy);
  // Success requires a token made with one of the secrets; every refusal is a 401 with a message.
  if (r) return *r < policy.secrets.size();
  // The contract echoes the caller's own fields ("invalid timestamp: '...'"); the worker's secrets
  // must never appear unless the caller wrote them.
  const std::string_view input = view(data, size);
  for (const auto& secret : policy.secrets)
    if (input.find(secret) == std::string_view::npos && r.error().message.find(secret) != std::string::npos) return false;
  return r.error().kind == ErrorKind::unauthorized && !r.error().message.empty();
}

}  // namespace rayvault::fuzz
