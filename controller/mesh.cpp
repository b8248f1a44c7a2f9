// Node states and views.
#include "controller/mesh.hpp"

#include <algorithm>
#include <cmath>

#include "controller/selection.hpp"
#include "util/time.hpp"

namespace rayvault::controller {

json caps_summary(const json& caps) {
  if (!caps.is_object()) return json::object();
  json out = json::object();
  for (const char* key : {"os", "cpu", "ram_gb", "gpu_model", "vram_gb", "cpu_slots", "gpu_slots", "tags"})
    if (const auto it = caps.find(key); it != caps.end()) out[key] = *it;
  if (const auto it = caps.find("gpus"); it != caps.end() && it->is_array()) out["gpus"] = it->size();
  if (const auto it = caps.find("supported_steps"); it != caps.end()) out["steps"] = *it;
  if (!out.contains("cpu_slots") && caps.contains("slots")) out["cpu_slots"] = caps["slots"];
  return out;
}

void record_probes(state::Ledger& ledger, const std::vector<HealthProbe>& probes) {
  const std::string now = util::now_utc();
  for (const auto& p : probes) {
    state::NodeState s;
    s.node_id = p.node->node_id;
    s.host = p.node->host;
    s.port = p.node->port;
    s.last_probe_at = now;
    s.last_error = p.error;
    if (p.ok) {
      const json& a = p.answer;
      s.latency_ms = p.elapsed_ms;
      s.version = protocol::string_field(a, "version");
      s.worker_id = protocol::string_field(a, "worker_id");
      s.compat_mode = protocol::string_field(a, "_compat_mode");
      s.queue_depth = int_field(a, "queue_depth", 0);
      s.running_jobs = int_field(a, "running_jobs", 0);
      s.free_slots = int_field(a, "free_slots", 0);
      s.caps_summary = protocol::dump_json(caps_summary(a.value("caps", json::object())));
    }
    (void)ledger.record_probe(s, p.ok);
  }
}

std::map<std::string, std::string> cooling_nodes(state::Ledger& ledger) {
  std::map<std::string, std::string> out;
  const auto now = std::chrono::system_clock::now();
  for (const auto& n : ledger.nodes()) {
    if (n.cooldown_until.empty()) continue;
    const auto until = util::parse_iso8601(n.cooldown_until);
    if (until && *until > now) out[n.node_id] = n.cooldown_until;
  }
  return out;
}

void start_cooldown(state::Ledger& ledger, const Cluster& cluster, const std::string& node_id, const std::string& reason) {
  const auto until = std::chrono::system_clock::now() +
                     std::chrono::milliseconds(static_cast<long long>(cluster.config().controller.cooldown_sec * 1000));
  (void)ledger.set_cooldown(node_id, util::format_utc(std::chrono::time_point_cast<std::chrono::seconds>(until) +
                                                      std::chrono::seconds(1)),
                            reason);
}

void end_cooldown(state::Ledger& ledger, const std::string& node_id) { (void)ledger.set_cooldown(node_id, "", ""); }

json node_row(const state::NodeEntry& node, const HealthProbe* probe, const state::NodeState* kept) {
  json row{{"node_id", node.node_id}, {"host", node.host},       {"port", node.port},
           {"role", node.role},       {"enabled", node.enabled}, {"tags", node.tags}};
  const bool answered = probe && probe->ok;
  row["reachable"] = answered;
  row["latency_ms"] = answered ? json(probe->elapsed_ms) : json();
  std::string last_seen = kept ? kept->last_seen : "";
  if (answered) last_seen = util::now_utc();
  row["last_seen"] = last_seen;
  // Stale: no answer for kStaleAfterSec, or never.
  bool stale = !answered;
  if (!answered && !last_seen.empty()) {
    const auto seen = util::parse_iso8601(last_seen);
    stale = !seen || util::millis_between(*seen, std::chrono::system_clock::now()) > kStaleAfterSec * 1000LL;
  }
  row["stale"] = stale;
  if (answered) {
    const json& a = probe->answer;
    row["version"] = a.value("version", json());
    row["worker_id"] = a.value("worker_id", json());
    row["queue_depth"] = a.value("queue_depth", json());
    row["running_jobs"] = a.value("running_jobs", json());
    row["free_slots"] = a.value("free_slots", json());
    row["compat_mode"] = a.value("_compat_mode", json(""));
    row["caps"] = caps_summary(a.value("caps", json::object()));
  } else if (kept && !kept->last_seen.empty()) {
    // What it said when it last answered.
    row["version"] = kept->version;
    row["worker_id"] = kept->worker_id;
    row["queue_depth"] = kept->queue_depth;
    row["running_jobs"] = kept->running_jobs;
    row["free_slots"] = kept->free_slots;
    row["compat_mode"] = kept->compat_mode;
    auto caps = protocol::parse_json(kept->caps_summary);
    row["caps"] = caps ? *caps : json::object();
  } else {
    for (const char* key : {"version", "worker_id", "queue_depth", "running_jobs", "free_slots"}) row[key] = json();
    row["compat_mode"] = "";
    row["caps"] = json::object();
  }
  std::string cooldown;
  if (kept && !kept->cooldown_until.empty()) {
    const auto until = util::parse_iso8601(kept->cooldown_until);
    if (until && *until > std::chrono::system_clock::now()) cooldown = kept->cooldown_until;
  }
  row["cooldown_until"] = cooldown;
  row["cooldown_reason"] = cooldown.empty() ? "" : kept->cooldown_reason;
  row["error"] = probe ? probe->error : (node.enabled ? "" : "disabled");
  return row;
}

std::string cell(const json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>().empty() ? "-" : v.get<std::string>();
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::floor(d) == d && std::fabs(d) < 1e12) return std::to_string(static_cast<long long>(d));
  }
  if (v.is_array()) {
    std::string out;
    for (const auto& e : v) out += (out.empty() ? "" : ",") + cell(e);
    return out.empty() ? "-" : out;
  }
  return protocol::dump_json(v);
}

std::string render_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width(header.size(), 0);
  auto measure = [&width](const std::vector<std::string>& r) {
    for (std::size_t i = 0; i < r.size() && i < width.size(); ++i) width[i] = std::max(width[i], r[i].size());
  };
  measure(header);
  for (const auto& r : rows) measure(r);
  std::string out;
  auto line = [&](const std::vector<std::string>& r) {
    std::string l;
    for (std::size_t i = 0; i < width.size(); ++i) {
      const std::string& c = i < r.size() ? r[i] : std::string();
      l += c;
      if (i + 1 < width.size()) l += std::string(width[i] - c.size() + 2, ' ');
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    out += l + "\n";
  };
  line(header);
  for (const auto& r : rows) line(r);
  return out;
}

}  // namespace rayvault::controller
