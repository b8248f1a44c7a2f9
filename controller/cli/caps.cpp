// `caps`: POST /caps on each enabled worker node (or one of them), in parallel; v0.5 workers get
// their own form.
#include <future>

#include "controller/cli/commands.hpp"
#include "util/strings.hpp"

namespace rayvault::controller::cli {
namespace {

json probe(const Cluster& cluster, const state::NodeEntry& node, const std::string& run_id) {
  if (!node.unusable.empty()) return {{"node_id", node.node_id}, {"ok", false}, {"error", node.unusable}};
  auto client = cluster.client_for(node);
  auto res = client.caps(run_id, node.node_id);
  // A v0.5 worker rejects the envelope form as unprocessable; only then is its own form tried.
  if (!res && res.error().kind == ErrorKind::invalid_input) {
    auto legacy = client.legacy_caps(run_id, node.node_id, /*plain=*/false);
    if (!legacy && cluster.secret().allow_plain_fallback) legacy = client.legacy_caps(run_id, node.node_id, true);
    if (legacy) res = std::move(legacy);
  }
  if (!res) return {{"node_id", node.node_id}, {"ok", false}, {"error", res.error().message}};
  return {{"node_id", node.node_id}, {"ok", true}, {"caps", *res}};
}

}  // namespace

int run_caps(const GlobalOptions& g, const CapsOptions& o) {
  auto cluster = Cluster::load(g);
  if (!cluster) return print_error(cluster.error());
  if (auto st = cluster->require_secret(); !st) return print_error(st.error());
  std::vector<const state::NodeEntry*> nodes = cluster->worker_nodes();
  if (const std::string only = util::trim(o.node_id); !only.empty()) {
    std::erase_if(nodes, [&only](const state::NodeEntry* n) { return n->node_id != only; });
    if (nodes.empty())
      return print_error(Error(ErrorKind::not_found, "no enabled worker node '" + only + "' in the nodes file"));
  }
  std::vector<std::future<json>> pending;
  for (const auto* n : nodes)
    pending.push_back(std::async(std::launch::async, [&cluster, n, &o] { return probe(*cluster, *n, o.run_id); }));
  json rows = json::array();
  bool all_ok = true;
  for (auto& f : pending) {
    rows.push_back(f.get());
    all_ok = all_ok && rows.back()["ok"] == true;
  }
  print_json({{"ok", all_ok}, {"rows", rows}});
  return all_ok ? 0 : 1;
}

}  // namespace rayvault::controller::cli
