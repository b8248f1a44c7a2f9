// `sync-artifacts`: fetch an existing job's receipt, log and artifacts again (resumable).
#include "controller/cli/commands.hpp"
#include "controller/job_lookup.hpp"
#include "util/files.hpp"

namespace rayvault::controller::cli {

int run_sync_artifacts(const GlobalOptions& g, const SyncOptions& o) {
  // Like submit and caps, sync-artifacts needs the secret; without it, stop there (exit 3).
  auto opened = open_job(g, o.run_id, o.job_id, o.node_id, o.inputs_hash, Secret::required);
  if (!opened) return print_error(opened.error());
  const Cluster* cluster = &opened->cluster;
  JobLookup* found = &opened->job;
  const auto receipt_dir = cluster->receipt_dir(found->run_id, found->job_id);

  if (found->local) {
    // A local run's receipt is already here.
    auto text = util::read_file(receipt_dir / "job_receipt.json");
    if (!text) return print_error(text.error());
    auto receipt = protocol::parse_json(*text);
    if (!receipt) return print_error(receipt.error());
    print_json({{"ok", true}, {"receipt_path", util::u8(receipt_dir / "job_receipt.json")}, {"receipt", *receipt}});
    return 0;
  }
  // Artifact bytes are asked only of a worker that serves them (Python nodes do not).
  const auto probe = probe_health(*cluster, {found->remote.node});
  if (!probe.front().answer.is_object()) return print_error(Error(ErrorKind::unavailable, probe.front().error));
  found->remote.artifact_download = has_protocol_feature(probe.front().answer.value("caps", json::object()), "artifact_download");
  auto client = cluster->client_for(*found->remote.node, cluster->config().controller.request_timeout_sec);
  auto synced = sync_remote_job(client, found->remote, receipt_dir);
  if (!synced) return print_error(synced.error());
  const bool ok = synced->failed == 0;
  print_json({{"ok", ok}, {"receipt_path", util::u8(synced->receipt_path)}, {"receipt", synced->receipt}});
  return ok ? 0 : 2;
}

}  // namespace rayvault::controller::cli
