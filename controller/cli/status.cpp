// `status`, `logs` and `cancel`: what the ledger and the worker know of a job, its log, and stopping it.
#include "controller/cli/commands.hpp"
#include "controller/job_lookup.hpp"
#include "protocol/job_record.hpp"
#include "util/files.hpp"

namespace rayvault::controller::cli {
namespace {

json ledger_json(const std::optional<state::LedgerEntry>& e) {
  if (!e) return nullptr;
  return {{"mode", e->mode},           {"node_id", e->node_id},       {"host", e->host},
          {"port", e->port},           {"remote_job_id", e->remote_job_id}, {"step_name", e->step_name},
          {"inputs_hash", e->inputs_hash}, {"status", e->status},
          {"exit_code", e->exit_code ? json(*e->exit_code) : json()},
          {"submitted_at", e->submitted_at}, {"finished_at", e->finished_at}, {"duration_ms", e->duration_ms},
          {"receipt_path", e->receipt_path},
          {"attempts", [&e] {
             auto a = protocol::parse_json(e->attempts);
             return a && a->is_array() ? *a : json::array();
           }()}};
}

}  // namespace

int run_status(const GlobalOptions& g, const JobOptions& o) {
  auto opened = open_job(g, o.run_id, o.job_id, o.node_id, o.inputs_hash);
  if (!opened) return print_error(opened.error());
  const Cluster* cluster = &opened->cluster;
  const JobLookup* found = &opened->job;
  json out{{"ok", true}, {"run_id", found->run_id}, {"job_id", found->job_id}, {"ledger", ledger_json(found->entry)}};
  if (found->local) {
    out["job"] = nullptr;
    print_json(out);
    return 0;
  }
  if (auto st = cluster->require_secret(); !st) return print_error(st.error());
  auto client = cluster->client_for(*found->remote.node);
  auto live = client.job_status(found->run_id, found->remote.remote_job_id, found->remote.inputs_hash);
  if (!live) return print_error(live.error());
  out["node_id"] = found->remote.node->node_id;
  out["job"] = live->contains("job") ? (*live)["job"] : json();
  print_json(out);
  return 0;
}

int run_logs(const GlobalOptions& g, const JobOptions& o) {
  auto opened = open_job(g, o.run_id, o.job_id, o.node_id, o.inputs_hash);
  if (!opened) return print_error(opened.error());
  const Cluster* cluster = &opened->cluster;
  const JobLookup* found = &opened->job;
  std::string text;
  if (found->local) {
    auto read = util::read_file(cluster->receipt_dir(found->run_id, found->job_id) / "worker.log");
    if (!read) return print_error(read.error());
    text = std::move(read).value();
  } else {
    if (auto st = cluster->require_secret(); !st) return print_error(st.error());
    auto client = cluster->client_for(*found->remote.node);
    auto logs = client.job_logs(found->run_id, found->remote.remote_job_id, found->remote.inputs_hash);
    if (!logs) return print_error(logs.error());
    text = std::move(logs).value();
  }
  json lines = json::array();
  for (std::size_t start = 0; start < text.size();) {
    const auto nl = text.find('\n', start);
    const std::string line = text.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    start = nl == std::string::npos ? text.size() : nl + 1;
    if (line.empty()) continue;
    auto parsed = protocol::parse_json(line);
    lines.push_back(parsed ? *parsed : json(line));
  }
  print_json({{"ok", true}, {"run_id", found->run_id}, {"job_id", found->job_id}, {"lines", lines}});
  return 0;
}

}  // namespace rayvault::controller::cli

namespace rayvault::controller::cli {

int run_cancel(const GlobalOptions& g, const CancelOptions& o) {
  auto opened = open_job(g, o.run_id, o.job_id, o.node_id, o.inputs_hash, Secret::required);
  if (!opened) return print_error(opened.error());
  const JobLookup* found = &opened->job;
  if (found->local)
    return print_error(Error(ErrorKind::conflict, "job " + found->job_id +
                                                      " ran on the controller itself; stop the controller that runs it (Ctrl-C)"));
  auto client = opened->cluster.client_for(*found->remote.node);
  auto answer = client.cancel(found->run_id, found->remote.remote_job_id, found->remote.inputs_hash, o.reason);
  if (!answer) return print_error(answer.error());
  json job = answer->value("job", json());
  // A running job is being stopped: follow it to its end (long polls, no busy loop).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(std::max(1, o.wait_sec));
  while (!protocol::is_terminal_status(protocol::string_field(job, "status")) && std::chrono::steady_clock::now() < deadline) {
    auto live = client.job_status(found->run_id, found->remote.remote_job_id, found->remote.inputs_hash, 5000);
    if (!live) return print_error(live.error());
    job = live->value("job", json());
  }
  const std::string status = protocol::string_field(job, "status");
  const bool cancelled = status == protocol::status::kCancelled;
  if (!cancelled && protocol::is_terminal_status(status))
    return print_error(Error(ErrorKind::conflict, "job " + found->job_id + " ended before the cancel reached it: " + status));
  if (cancelled && found->entry) {
    state::LedgerEntry e = *found->entry;
    e.status = status;
    e.finished_at = protocol::string_field(job, "finished_at");
    if (job.contains("exit_code") && job["exit_code"].is_number_integer()) e.exit_code = job["exit_code"].get<int>();
    (void)opened->ledger->record(e);
  }
  print_json({{"ok", cancelled},
              {"run_id", found->run_id},
              {"job_id", found->job_id},
              {"node_id", found->remote.node->node_id},
              {"status", status},
              {"message", cancelled ? protocol::string_field(job, "error_message")
                                    : "the job is still stopping after " + std::to_string(o.wait_sec) + " s"},
              {"job", job}});
  return cancelled ? 0 : 5;
}

}  // namespace rayvault::controller::cli
