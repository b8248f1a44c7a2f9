// nodes.json validation: every field type-checked, with messages that name the field.
#include "state/nodes_config.hpp"

#include <cmath>
#include <set>

#include "protocol/json.hpp"
#include "util/files.hpp"

namespace rayvault::state {
namespace {

using protocol::json;

Error bad(const std::string& what) { return Error(ErrorKind::config, "nodes.json: " + what); }

bool valid_host(const std::string& h) {
  if (h.empty() || h.size() > 253) return false;
  for (const char c : h) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' || c == '_' ||
                    c == '[' || c == ']' || c == '%';
    if (!ok) return false;
  }
  return true;
}

// Reads an optional field of the given kind; sets err on a wrong type.
template <class T>
bool read_opt(const json& obj, const char* key, T& out, std::string& err, const std::string& where) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return true;
  try {
    if constexpr (std::is_same_v<T, std::string>) {
      if (!it->is_string()) throw std::runtime_error("");
    } else if constexpr (std::is_same_v<T, bool>) {
      if (!it->is_boolean()) throw std::runtime_error("");
    } else {
      if (!it->is_number()) throw std::runtime_error("");
    }
    out = it->get<T>();
    return true;
  } catch (const std::exception&) {
    err = where + key + " has the wrong type";
    return false;
  }
}

}  // namespace

Result<NodesConfig> parse_nodes_config(std::string_view text) {
  auto parsed = protocol::parse_json(text);
  if (!parsed) return bad(parsed.error().message);
  const json& doc = *parsed;
  if (!doc.is_object()) return bad("the document must be an object");
  NodesConfig cfg;
  std::string err;
  std::string state_dir;
  if (!read_opt(doc, "cluster_name", cfg.cluster_name, err, "") || !read_opt(doc, "state_dir", state_dir, err, ""))
    return bad(err);
  if (!state_dir.empty()) cfg.state_dir = util::path_from_utf8(state_dir);

  if (doc.contains("auth") && !doc["auth"].is_null()) {
    if (!doc["auth"].is_object()) return bad("auth must be an object");
    if (!read_opt(doc["auth"], "secret_env", cfg.secret_env, err, "auth.")) return bad(err);
  }
  if (doc.contains("controller") && !doc["controller"].is_null()) {
    const json& c = doc["controller"];
    if (!c.is_object()) return bad("controller must be an object");
    std::string root;
    auto& s = cfg.controller;
    if (!read_opt(c, "node_id", s.node_id, err, "controller.") ||
        !read_opt(c, "request_timeout_sec", s.request_timeout_sec, err, "controller.") ||
        !read_opt(c, "poll_interval_sec", s.poll_interval_sec, err, "controller.") ||
        !read_opt(c, "poll_timeout_sec", s.poll_timeout_sec, err, "controller.") ||
        !read_opt(c, "local_workspace_root", root, err, "controller."))
      return bad(err);
    for (const auto& [name, v] : {std::pair{"request_timeout_sec", s.request_timeout_sec},
                                  std::pair{"poll_interval_sec", s.poll_interval_sec},
                                  std::pair{"poll_timeout_sec", s.poll_timeout_sec}}) {
      if (!(v > 0) || !std::isfinite(v)) return bad(std::string("controller.") + name + " must be positive");
    }
    if (!root.empty()) s.local_workspace_root = util::path_from_utf8(root);
  }
  if (cfg.controller.local_workspace_root.empty()) cfg.controller.local_workspace_root = cfg.state_dir / "local_worker";

  const auto nodes_it = doc.find("nodes");
  if (nodes_it == doc.end() || nodes_it->is_null()) return cfg;
  if (!nodes_it->is_array()) return bad("nodes must be a list");
  std::set<std::string> seen;
  std::size_t index = 0;
  for (const auto& n : *nodes_it) {
    const std::string where = "nodes[" + std::to_string(index++) + "].";
    if (!n.is_object()) return bad(where.substr(0, where.size() - 1) + " must be an object");
    NodeEntry node;
    double port = node.port;
    if (!read_opt(n, "node_id", node.node_id, err, where) || !read_opt(n, "host", node.host, err, where) ||
        !read_opt(n, "port", port, err, where) || !read_opt(n, "role", node.role, err, where) ||
        !read_opt(n, "enabled", node.enabled, err, where) ||
        !read_opt(n, "timeout_sec", node.timeout_sec, err, where))
      return bad(err);
    if (node.node_id.empty()) return bad(where + "node_id is required");
    if (!util::is_safe_component(node.node_id))
      return bad(where + "node_id may hold only letters, digits, '.', '_' and '-'");
    if (!seen.insert(node.node_id).second) return bad("duplicate node_id '" + node.node_id + "'");
    if (!valid_host(node.host)) return bad(where + "host must be a host name or address (no scheme, path or spaces)");
    if (port != std::floor(port) || port < 1 || port > 65535) return bad(where + "port must be an integer in 1..65535");
    node.port = static_cast<int>(port);
    if (!(node.timeout_sec > 0) || !std::isfinite(node.timeout_sec)) return bad(where + "timeout_sec must be positive");
    if (n.contains("tags") && !n["tags"].is_null()) {
      if (!n["tags"].is_array()) return bad(where + "tags must be a list");
      for (const auto& t : n["tags"]) {
        if (!t.is_string()) return bad(where + "tags must hold strings");
        node.tags.push_back(t.get<std::string>());
      }
    }
    cfg.nodes.push_back(std::move(node));
  }
  return cfg;
}

Result<NodesConfig> load_nodes_config(const std::filesystem::path& path) {
  auto text = util::read_file(path, 1u << 20);
  if (!text) return Error(ErrorKind::config, "cannot read nodes file " + util::u8(path) + ": " + text.error().message);
  return parse_nodes_config(*text);
}

}  // namespace rayvault::state
