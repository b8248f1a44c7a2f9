// Shared controller plumbing.
#include "controller/cluster.hpp"

#include <algorithm>
#include <cstdio>
#include <future>
#include <optional>
#include <iostream>

#include "platform/system_info.hpp"
#include "protocol/errors.hpp"
#include "protocol/ids.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"

namespace rayvault::controller {

SecretInfo resolve_secret(const GlobalOptions& g, const state::NodesConfig& cfg) {
  SecretInfo s;
  s.mode = util::ascii_lower(util::trim(platform::getenv_string("RAYVAULT_CONTROLLER_AUTH_MODE")));
  if (s.mode.empty()) s.mode = "hmac_strict";
  s.allow_plain_fallback = util::parse_bool_text(platform::getenv_string("RAYVAULT_ALLOW_PLAIN_FALLBACK")).value_or(false);
  // Every value trimmed; a blank one counts as unset, so the next source is used.
  if (std::string v = util::trim(g.cluster_secret); !v.empty()) {
    s.value = std::move(v);
    s.source = "cli";
    return s;
  }
  for (const std::string& name : {cfg.secret_env, std::string("RAYVAULT_CLUSTER_SECRET_CURRENT"),
                                  std::string("RAYVAULT_CLUSTER_SECRET")}) {
    if (name.empty()) continue;
    if (std::string v = util::trim(platform::getenv_string(name.c_str())); !v.empty()) {
      s.value = std::move(v);
      s.source = name;
      return s;
    }
  }
  s.source = "none";
  return s;
}

Result<Cluster> Cluster::load(const GlobalOptions& g) {
  auto cfg = state::load_nodes_config(util::path_from_utf8(g.nodes_file));
  if (!cfg) return cfg.error();
  for (const auto& w : cfg->warnings) std::fprintf(stderr, "rayvault-controller: warning: %s\n", w.c_str());
  Cluster c;
  c.config_ = std::move(cfg).value();
  // Relative folders are relative to where the controller runs; printed paths are absolute.
  std::error_code ec;
  c.config_.state_dir = std::filesystem::absolute(c.config_.state_dir, ec).lexically_normal();
  c.config_.controller.local_workspace_root =
      std::filesystem::absolute(c.config_.controller.local_workspace_root, ec).lexically_normal();
  c.secret_ = resolve_secret(g, c.config_);
  // The secret stays in this process: a step run locally must not find it in its environment.
  for (const std::string& name : {c.config_.secret_env, std::string("RAYVAULT_CLUSTER_SECRET_CURRENT"),
                                  std::string("RAYVAULT_CLUSTER_SECRET"), std::string("RAYVAULT_CLUSTER_SECRET_PREVIOUS")})
    if (!name.empty()) platform::unset_env(name.c_str());
  return c;
}

Status Cluster::require_secret() const {
  if (!secret_.value.empty()) return ok_status();
  std::string hint = config_.secret_env.empty() ? "" : config_.secret_env + ", ";
  return Error(ErrorKind::config, "no cluster secret: pass --cluster-secret or set " + hint +
                                      "RAYVAULT_CLUSTER_SECRET_CURRENT or RAYVAULT_CLUSTER_SECRET");
}

std::filesystem::path Cluster::receipt_dir(const std::string& run_id, const std::string& job_id) const {
  return config_.state_dir / "receipts" / protocol::id_folder_name(run_id) / protocol::id_folder_name(job_id);
}

std::vector<const state::NodeEntry*> Cluster::worker_nodes() const {
  std::vector<const state::NodeEntry*> out;
  for (const auto& n : config_.nodes)
    if (n.takes_jobs()) out.push_back(&n);
  return out;
}

WorkerClient Cluster::client_for(const state::NodeEntry& node, double timeout_sec) const {
  return WorkerClient(Endpoint{node.host, node.port, timeout_sec}, secret_.value);
}

bool has_protocol_feature(const json& caps, std::string_view feature) {
  const auto it = caps.is_object() ? caps.find("protocol_features") : caps.end();
  if (it == caps.end() || !it->is_array()) return false;
  return std::any_of(it->begin(), it->end(), [feature](const json& f) { return f.is_string() && f == feature; });
}

std::optional<json> probe_legacy(WorkerClient& client, const state::NodeEntry& node) {
  // Only a node that refuses the v1 envelope as unprocessable is asked in the v0.5 forms.
  if (auto modern = client.caps("cluster_caps_probe", node.node_id); modern || modern.error().kind != ErrorKind::invalid_input)
    return std::nullopt;
  // Only the signed form: the plain-token form carries the secret itself, which routine probes
  // (health, nodes, submit, a batch's refresh) must never send; `caps` alone may, when allowed.
  auto legacy = client.legacy_caps("cluster_caps_probe", node.node_id, /*plain=*/false);
  if (!legacy || !legacy->is_object()) return std::nullopt;
  json caps = legacy->contains("capabilities") && (*legacy)["capabilities"].is_object() ? (*legacy)["capabilities"] : *legacy;
  // v0.5 knew the contract's five job steps (POSE_ESTIMATE came later).
  if (!caps.contains("supported_steps"))
    caps["supported_steps"] = {"AUDIO_POSTCHECK", "FFMPEG_PROBE", "FRAME_SAMPLING", "OPENCLAW_TASK", "TTS_RENDER_CHUNKS"};
  caps["_compat_mode"] = (*legacy)["_compat_mode"];
  return json{{"ok", true},
              {"version", legacy->value("version", json("0.5"))},
              {"worker_id", legacy->value("worker_id", json(node.node_id))},
              {"queue_depth", 0},
              {"caps", caps},
              {"_compat_mode", (*legacy)["_compat_mode"]}};
}

std::vector<HealthProbe> probe_health(const Cluster& cluster, const std::vector<const state::NodeEntry*>& nodes) {
  std::vector<std::future<HealthProbe>> pending;
  for (const auto* node : nodes) {
    pending.push_back(std::async(std::launch::async, [&cluster, node] {
      HealthProbe p;
      p.node = node;
      const auto start = std::chrono::steady_clock::now();
      if (!node->unusable.empty()) {
        p.error = node->unusable;
        return p;
      }
      auto client = cluster.client_for(*node);
      auto res = client.health();
      // A worker that answers but has no /health may be a v0.5 node: ask its own caps form.
      if (!res && res.error().kind != ErrorKind::unavailable && !cluster.secret().value.empty())
        if (auto legacy = probe_legacy(client, *node)) res = std::move(*legacy);
      p.elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
      if (!res) {
        p.error = res.error().message;
      } else if (!res->is_object() || !res->contains("ok") || (*res)["ok"] != true) {
        p.answer = *res;
        p.error = "worker answered ok=false";
      } else {
        p.ok = true;
        p.answer = std::move(res).value();
      }
      return p;
    }));
  }
  std::vector<HealthProbe> out;
  for (auto& f : pending) out.push_back(f.get());
  return out;
}

void print_json(const json& doc) {
  std::cout << protocol::dump_json(doc, 2) << std::endl;
}

int print_error(const Error& e) {
  print_json(json{{"ok", false}, {"error", e.message}});
  return protocol::exit_code(e.kind);
}

}  // namespace rayvault::controller
