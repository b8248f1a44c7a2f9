// Job lookup shared by sync-artifacts, status and logs.
#include "controller/job_lookup.hpp"

#include "protocol/envelope.hpp"
#include "protocol/ids.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"

namespace rayvault::controller {

Result<JobLookup> find_job(const Cluster& cluster, state::Ledger& ledger, const std::string& run_id,
                           const std::string& job_id, const std::string& node_id, const std::string& inputs_hash) {
  auto run = protocol::normalize_id(run_id, "--run-id");
  if (!run) return run.error();
  auto job = protocol::normalize_id(job_id, "--job-id");
  if (!job) return job.error();
  JobLookup out;
  out.run_id = *run;
  out.job_id = *job;
  out.entry = ledger.find(out.run_id, out.job_id);
  if (out.entry && out.entry->mode != "remote" && node_id.empty()) {
    out.local = true;
    return out;
  }
  const std::string node_name = !util::trim(node_id).empty() ? util::trim(node_id) : (out.entry ? out.entry->node_id : "");
  if (node_name.empty())
    return Error(ErrorKind::not_found,
                 "the ledger has no submission " + out.run_id + "/" + out.job_id + ": pass --node-id and --inputs-hash");
  const state::NodeEntry* node = nullptr;
  for (const auto& n : cluster.config().nodes)
    if (n.node_id == node_name) node = &n;
  if (!node) return Error(ErrorKind::not_found, "no node '" + node_name + "' in the nodes file");
  if (!node->unusable.empty()) return Error(ErrorKind::config, node->unusable);
  const std::string given_hash = protocol::normalize_hash(inputs_hash);
  const std::string hash = !given_hash.empty() ? given_hash : (out.entry ? out.entry->inputs_hash : "");
  if (hash.empty()) return Error(ErrorKind::invalid_input, "--inputs-hash is required for a job the ledger does not know");
  const bool same_node = out.entry && out.entry->node_id == node_name;
  out.remote = RemoteJob{node, out.run_id, out.job_id,
                         same_node && !out.entry->remote_job_id.empty() ? out.entry->remote_job_id : out.job_id,
                         out.entry ? out.entry->step_name : "", hash, true, json()};
  return out;
}

Result<OpenedJob> open_job(const GlobalOptions& g, const std::string& run_id, const std::string& job_id,
                           const std::string& node_id, const std::string& inputs_hash, Secret secret) {
  auto cluster = Cluster::load(g);
  if (!cluster) return cluster.error();
  if (secret == Secret::required) {
    if (auto st = cluster->require_secret(); !st) return st.error();
  }
  auto ledger = state::Ledger::open(cluster->config().state_dir);
  if (!ledger) return ledger.error();
  OpenedJob out{std::move(cluster).value(), std::move(ledger).value(), {}};
  // Looked up after the move: the node pointer points into out.cluster's node list.
  auto found = find_job(out.cluster, *out.ledger, run_id, job_id, node_id, inputs_hash);
  if (!found) return found.error();
  out.job = std::move(found).value();
  return out;
}

}  // namespace rayvault::controller
