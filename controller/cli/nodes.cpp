// The node and job views: `nodes` (and `health --table`) and `jobs`. JSON for scripts, a table
// for people (--table, or by default on a terminal).
#include <cstdio>

#include "controller/cli/commands.hpp"
#include "controller/mesh.hpp"
#include "platform/system_info.hpp"
#include "util/time.hpp"

namespace rayvault::controller::cli {
namespace {

bool wants_table(ViewFormat f) {
  return f == ViewFormat::table || (f == ViewFormat::automatic && platform::stdout_is_terminal());
}

std::string state_of(const json& row) {
  if (row["enabled"] != true) return row["reachable"] == true ? "disabled" : "disabled, down";
  if (row["reachable"] == true) return row["cooldown_until"] != "" ? "cooling" : "ok";
  return row["stale"] == true ? "stale" : "down";
}

std::string ms(const json& v) { return v.is_number() ? cell(v) + " ms" : "-"; }

std::string gpu_of(const json& caps) {
  const std::string model = caps.value("gpu_model", "");
  if (model.empty()) return "-";
  return model + (caps.contains("vram_gb") ? " " + cell(caps["vram_gb"]) + "G" : "");
}

void print_nodes_table(const json& rows) {
  std::vector<std::vector<std::string>> out;
  for (const auto& r : rows) {
    const json& caps = r["caps"];
    std::string note = r["error"].get<std::string>();
    if (r["cooldown_until"] != "") note = "cool-down until " + r["cooldown_until"].get<std::string>() + ": " + r["cooldown_reason"].get<std::string>();
    out.push_back({r["node_id"].get<std::string>(), r["host"].get<std::string>() + ":" + cell(r["port"]), state_of(r),
                   ms(r["latency_ms"]), cell(r["last_seen"]), cell(r["version"]), cell(r["queue_depth"]),
                   cell(r["running_jobs"]), cell(r["free_slots"]), cell(caps.value("os", json())), gpu_of(caps),
                   cell(caps.value("tags", json())), cell(r["compat_mode"]), note.empty() ? "-" : note});
  }
  std::fputs(render_table({"NODE", "ADDRESS", "STATE", "LATENCY", "LAST SEEN", "VERSION", "QUEUE", "RUNNING", "FREE", "OS",
                           "GPU", "TAGS", "COMPAT", "NOTE"},
                          out)
                 .c_str(),
             stdout);
}

const state::NodeState* kept_row(const std::vector<state::NodeState>& kept, const std::string& node_id) {
  for (const auto& s : kept)
    if (s.node_id == node_id) return &s;
  return nullptr;
}

// Probes every node whose role is worker (enabled or not: a drained node still shows its running
// jobs) and builds the node view's rows.
json node_rows(const Cluster& cluster, state::Ledger* ledger) {
  std::vector<const state::NodeEntry*> nodes;
  for (const auto& n : cluster.config().nodes)
    if (n.role == "worker") nodes.push_back(&n);
  const auto probes = probe_health(cluster, nodes);
  std::vector<state::NodeState> kept;
  if (ledger) {
    record_probes(*ledger, probes);
    kept = ledger->nodes();
  }
  json rows = json::array();
  for (const auto& p : probes) {
    rows.push_back(node_row(*p.node, &p, kept_row(kept, p.node->node_id)));
  }
  return rows;
}

}  // namespace

int run_nodes(const GlobalOptions& g, ViewFormat format) {
  auto cluster = Cluster::load(g);
  if (!cluster) return print_error(cluster.error());
  auto ledger = state::Ledger::open(cluster->config().state_dir);
  const json rows = node_rows(*cluster, ledger ? ledger->get() : nullptr);
  if (wants_table(format)) {
    print_nodes_table(rows);
    return 0;
  }
  bool any = false;
  for (const auto& r : rows) any = any || r["reachable"] == true;
  print_json({{"ok", any}, {"ts", util::format_utc(std::chrono::system_clock::now())}, {"nodes", rows}});
  return 0;
}

int run_health(const GlobalOptions& g, ViewFormat format) {
  // The contract's JSON unless a table is asked for: scripts that run `health` on a terminal
  // (a person's shell) still read JSON.
  if (format == ViewFormat::table) return run_nodes(g, ViewFormat::table);
  auto cluster = Cluster::load(g);
  if (!cluster) return print_error(cluster.error());
  const auto probes = probe_health(*cluster, cluster->worker_nodes());
  auto ledger = state::Ledger::open(cluster->config().state_dir);
  std::vector<state::NodeState> kept;
  if (ledger) {
    record_probes(**ledger, probes);
    kept = (*ledger)->nodes();
  }
  json workers = json::array();
  bool any_ok = false;
  for (const auto& p : probes) {
    any_ok = any_ok || p.ok;
    const json& a = p.answer.is_object() ? p.answer : json::object();
    const json view = node_row(*p.node, &p, kept_row(kept, p.node->node_id));
    // The Python controller's fields first; the node view's after them.
    workers.push_back({{"node_id", p.node->node_id},
                       {"host", p.node->host},
                       {"port", p.node->port},
                       {"ok", p.ok},
                       {"elapsed_ms", p.elapsed_ms},
                       {"worker_id", a.value("worker_id", json())},
                       {"worker_version", a.value("version", json())},
                       {"queue_depth", a.value("queue_depth", json())},
                       {"caps", a.value("caps", json())},
                       {"error", p.error},
                       {"running_jobs", a.value("running_jobs", json())},
                       {"free_slots", a.value("free_slots", json())},
                       {"last_seen", view["last_seen"]},
                       {"stale", view["stale"]},
                       {"cooldown_until", view["cooldown_until"]}});
  }
  print_json({{"ok", any_ok},
              {"ts", util::format_utc(std::chrono::system_clock::now())},
              {"controller_auth_source", cluster->secret().source},
              {"controller_auth_mode", cluster->secret().mode},
              {"workers", workers}});
  return 0;
}

int run_jobs(const GlobalOptions& g, const JobsOptions& o) {
  auto cluster = Cluster::load(g);
  if (!cluster) return print_error(cluster.error());
  auto ledger = state::Ledger::open(cluster->config().state_dir);
  if (!ledger) return print_error(ledger.error());
  auto entries = (*ledger)->list(o.status, o.run_id, o.limit);
  if (!entries) return print_error(entries.error());
  json jobs = json::array();
  for (const auto& e : *entries) {
    auto attempts = protocol::parse_json(e.attempts);
    jobs.push_back({{"run_id", e.run_id},
                    {"job_id", e.job_id},
                    {"step_name", e.step_name},
                    {"status", e.status},
                    {"mode", e.mode},
                    {"node_id", e.node_id},
                    {"exit_code", e.exit_code ? json(*e.exit_code) : json()},
                    {"submitted_at", e.submitted_at},
                    {"finished_at", e.finished_at},
                    {"duration_ms", e.duration_ms},
                    {"inputs_hash", e.inputs_hash},
                    {"remote_job_id", e.remote_job_id},
                    {"attempts", attempts && attempts->is_array() ? *attempts : json::array()},
                    {"receipt_path", e.receipt_path}});
  }
  if (wants_table(o.format)) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& j : jobs)
      rows.push_back({j["run_id"].get<std::string>(), j["job_id"].get<std::string>(), j["step_name"].get<std::string>(),
                      cell(j["status"]), cell(j["mode"]), cell(j["node_id"]), std::to_string(j["attempts"].size()),
                      cell(j["submitted_at"]), cell(j["duration_ms"]) + " ms"});
    std::fputs(render_table({"RUN", "JOB", "STEP", "STATUS", "MODE", "NODE", "ATTEMPTS", "SUBMITTED", "TOOK"}, rows).c_str(),
               stdout);
    return 0;
  }
  print_json({{"ok", true}, {"count", jobs.size()}, {"jobs", jobs}});
  return 0;
}

}  // namespace rayvault::controller::cli
