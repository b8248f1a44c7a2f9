// `health`: GET /health on every enabled worker node at once (needs no secret).
#include "controller/cli/commands.hpp"
#include "util/time.hpp"

namespace rayvault::controller::cli {

int run_health(const GlobalOptions& g) {
  auto cluster = Cluster::load(g);
  if (!cluster) return print_error(cluster.error());
  json workers = json::array();
  bool any_ok = false;
  for (const auto& p : probe_health(*cluster, cluster->worker_nodes())) {
    any_ok = any_ok || p.ok;
    const json& a = p.answer.is_object() ? p.answer : json::object();
    workers.push_back({{"node_id", p.node->node_id},
                       {"host", p.node->host},
                       {"port", p.node->port},
                       {"ok", p.ok},
                       {"elapsed_ms", p.elapsed_ms},
                       {"worker_id", a.value("worker_id", json())},
                       {"worker_version", a.value("version", json())},
                       {"queue_depth", a.value("queue_depth", json())},
                       {"caps", a.value("caps", json())},
                       {"error", p.error}});
  }
  print_json({{"ok", any_ok},
              {"ts", util::format_utc(std::chrono::system_clock::now())},
              {"controller_auth_source", cluster->secret().source},
              {"controller_auth_mode", cluster->secret().mode},
              {"workers", workers}});
  return 0;
}

}  // namespace rayvault::controller::cli
