// `sync-artifacts`: fetch an existing job's receipt, log and artifacts again (resumable).
#include "controller/cli/commands.hpp"
#include "controller/sync.hpp"
#include "state/ledger.hpp"
#include "util/files.hpp"

namespace rayvault::controller::cli {

int run_sync_artifacts(const GlobalOptions& g, const SyncOptions& o) {
  auto cluster = Cluster::load(g);
  if (!cluster) return print_error(cluster.error());
  if (!util::is_safe_component(o.run_id) || !util::is_safe_component(o.job_id))
    return print_error(Error(ErrorKind::invalid_input, "run_id and job_id may hold only letters, digits, '.', '_' and '-'"));
  auto ledger = state::Ledger::open(cluster->config().state_dir);
  if (!ledger) return print_error(ledger.error());
  const auto entry = (*ledger)->find(o.run_id, o.job_id);
  const auto receipt_dir = cluster->receipt_dir(o.run_id, o.job_id);

  if (entry && entry->mode != "remote" && o.node_id.empty()) {
    // A local run's receipt is already here.
    auto text = util::read_file(receipt_dir / "job_receipt.json");
    if (!text) return print_error(text.error());
    auto receipt = protocol::parse_json(*text);
    if (!receipt) return print_error(receipt.error());
    print_json({{"ok", true}, {"receipt_path", (receipt_dir / "job_receipt.json").string()}, {"receipt", *receipt}});
    return 0;
  }
  const std::string node_id = !o.node_id.empty() ? o.node_id : (entry ? entry->node_id : "");
  if (node_id.empty())
    return print_error(Error(ErrorKind::not_found, "the ledger has no submission " + o.run_id + "/" + o.job_id +
                                                       ": pass --node-id and --inputs-hash"));
  const state::NodeEntry* node = nullptr;
  for (const auto& n : cluster->config().nodes)
    if (n.node_id == node_id) node = &n;
  if (!node) return print_error(Error(ErrorKind::not_found, "no node '" + node_id + "' in the nodes file"));
  const std::string inputs_hash = !o.inputs_hash.empty() ? o.inputs_hash : (entry ? entry->inputs_hash : "");
  if (inputs_hash.empty())
    return print_error(Error(ErrorKind::invalid_input, "--inputs-hash is required for a job the ledger does not know"));
  if (auto st = cluster->require_secret(); !st) return print_error(st.error());

  auto client = cluster->client_for(*node, cluster->config().controller.request_timeout_sec);
  RemoteJob job{node, o.run_id, o.job_id, entry && !entry->remote_job_id.empty() ? entry->remote_job_id : o.job_id,
                entry ? entry->step_name : "", inputs_hash};
  auto synced = sync_remote_job(client, job, receipt_dir);
  if (!synced) return print_error(synced.error());
  const bool ok = synced->failed == 0;
  print_json({{"ok", ok}, {"receipt_path", synced->receipt_path.string()}, {"receipt", synced->receipt}});
  return ok ? 0 : 2;
}

}  // namespace rayvault::controller::cli
