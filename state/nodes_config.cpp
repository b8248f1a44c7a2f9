// nodes.json: read as leniently as the Python controller reads it, with a warning for every value
// that had to be interpreted or an entry that had to be skipped.
#include "state/nodes_config.hpp"

#include <cmath>
#include <set>

#include "protocol/json.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"

namespace rayvault::state {
namespace {

using protocol::json;

Error bad(const std::string& what) { return Error(ErrorKind::config, "nodes.json: " + what); }

// Longest request and poll timeouts taken from nodes.json: an hour, and a week.
constexpr double kMaxRequestSeconds = 3600, kMaxPollSeconds = 7 * 86400;

bool valid_host(const std::string& h) {
  if (h.empty() || h.size() > 253) return false;
  for (const char c : h) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' || c == '_' ||
                    c == '[' || c == ']' || c == '%';
    if (!ok) return false;
  }
  return true;
}

// Reads the fields of one object. A value of a type the Python controller would also take is
// interpreted (a numeric string as a number, "yes" as true) and noted in `warnings` where a person
// may not have meant it; a value that cannot be read sets `error`.
class FieldReader {
 public:
  FieldReader(const json& obj, std::string where, std::vector<std::string>& warnings)
      : obj_(obj), where_(std::move(where)), warnings_(warnings) {}

  // The first field that could not be read: "port must be a number" (without the `where` prefix).
  const std::string& error() const { return error_; }

  void text(const char* key, std::string& out) {
    const json* v = find(key);
    if (!v) return;
    if (v->is_string()) out = v->get<std::string>();
    else if (v->is_number()) out = protocol::dump_json(*v);
    else fail(key, "must be text");
  }

  void number(const char* key, double& out) {
    const json* v = find(key);
    if (!v) return;
    if (v->is_number()) {
      out = v->get<double>();
      return;
    }
    if (v->is_string()) {
      if (const auto d = util::parse_number_text(v->get_ref<const std::string&>()); d && std::isfinite(*d)) {
        out = *d;
        return;
      }
    }
    fail(key, "must be a number");
  }

  void boolean(const char* key, bool& out) {
    const json* v = find(key);
    if (!v) return;
    if (v->is_boolean()) {
      out = v->get<bool>();
      return;
    }
    bool value = false;
    if (v->is_number()) {
      value = v->get<double>() != 0;
    } else if (v->is_string()) {
      // A word a person means, else Python's truth of the string (non-empty is true).
      const auto& text = v->get_ref<const std::string&>();
      value = util::parse_bool_text(text).value_or(!util::trim(text).empty());
    } else {
      fail(key, "must be true or false");
      return;
    }
    warnings_.push_back("nodes.json: " + where_ + key + " is " + protocol::dump_json(*v) + ", read as " +
                        (value ? "true" : "false"));
    out = value;
  }

  // A number of seconds that must be positive (else a warning, and the default stays) and at
  // most `max` (else a warning, and max is used: socket timeouts overflow past it).
  void seconds(const char* key, double& out, double max) {
    double v = out;
    number(key, v);
    if (!error_.empty()) return;
    if (!(v > 0)) {
      warnings_.push_back("nodes.json: " + where_ + key + " must be positive; using " + protocol::dump_json(out));
    } else if (v > max) {
      warnings_.push_back("nodes.json: " + where_ + key + " is over " + protocol::dump_json(max) + "; using that");
      out = max;
    } else {
      out = v;
    }
  }

 private:
  const json* find(const char* key) const {
    const auto it = obj_.find(key);
    return it == obj_.end() || it->is_null() ? nullptr : &*it;
  }
  void fail(const char* key, const char* what) {
    if (error_.empty()) error_ = std::string(key) + " " + what;
  }

  const json& obj_;
  std::string where_;
  std::vector<std::string>& warnings_;
  std::string error_;
};

// One nodes[] entry, or nullopt (with a warning) when it cannot be used.
std::optional<NodeEntry> read_node(const json& n, std::size_t index, std::vector<std::string>& warnings) {
  std::string name = "nodes[" + std::to_string(index) + "]";
  auto skip = [&](const std::string& why) {
    warnings.push_back("nodes.json: " + name + " " + why + "; skipped");
    return std::nullopt;
  };
  if (!n.is_object()) return skip("is not an object");
  NodeEntry node;
  // node_id and host are required: an entry without them (or with ones that are not text) is
  // skipped, as the Python controller skips it.
  {
    FieldReader id(n, name + ".", warnings);
    id.text("node_id", node.node_id);
    node.node_id = util::trim(node.node_id);
    if (node.node_id.empty()) return skip("has no node_id");
    name += " ('" + node.node_id + "')";
    id.text("host", node.host);
    node.host = util::trim(node.host);
    if (node.host.empty()) return skip("has no host");
  }
  // Anything else that cannot be used keeps the node listed, and unusable, with the reason.
  FieldReader f(n, name + ".", warnings);
  double port = node.port;
  f.number("port", port);
  f.text("role", node.role);
  f.boolean("enabled", node.enabled);
  f.seconds("timeout_sec", node.timeout_sec, kMaxRequestSeconds);
  node.role = util::ascii_lower(util::trim(node.role));
  if (!f.error().empty()) node.unusable = f.error();
  else if (!valid_host(node.host)) node.unusable = "host must be a host name or address (no scheme, path or spaces)";
  else if (port != std::floor(port) || port < 1 || port > 65535) node.unusable = "port must be an integer in 1..65535";
  else node.port = static_cast<int>(port);
  if (!node.unusable.empty()) {
    node.unusable = "nodes.json: " + name + " " + node.unusable;
    warnings.push_back(node.unusable + "; the node is listed but not contacted");
  }
  if (const auto t = n.find("tags"); t != n.end() && !t->is_null()) {
    const json list = t->is_array() ? *t : json::array({*t});
    for (const auto& tag : list) {
      if (tag.is_string()) node.tags.push_back(util::trim(tag.get<std::string>()));
      else warnings.push_back("nodes.json: " + name + ".tags holds " + protocol::dump_json(tag) + ", not text; ignored");
    }
  }
  return node;
}

}  // namespace

Result<NodesConfig> parse_nodes_config(std::string_view text) {
  auto parsed = protocol::parse_json(text);
  if (!parsed) return bad(parsed.error().message);
  const json& doc = *parsed;
  if (!doc.is_object()) return bad("the document must be an object");
  NodesConfig cfg;
  FieldReader top(doc, "", cfg.warnings);
  std::string state_dir;
  top.text("cluster_name", cfg.cluster_name);
  top.text("state_dir", state_dir);
  if (!top.error().empty()) return bad(top.error());
  if (!util::trim(state_dir).empty()) cfg.state_dir = util::path_from_utf8(util::trim(state_dir));

  if (doc.contains("auth") && !doc["auth"].is_null()) {
    if (!doc["auth"].is_object()) return bad("auth must be an object");
    FieldReader a(doc["auth"], "auth.", cfg.warnings);
    a.text("secret_env", cfg.secret_env);
    if (!a.error().empty()) return bad("auth." + a.error());
    cfg.secret_env = util::trim(cfg.secret_env);
  }
  if (doc.contains("controller") && !doc["controller"].is_null()) {
    if (!doc["controller"].is_object()) return bad("controller must be an object");
    auto& s = cfg.controller;
    FieldReader c(doc["controller"], "controller.", cfg.warnings);
    std::string root;
    c.text("node_id", s.node_id);
    c.seconds("request_timeout_sec", s.request_timeout_sec, kMaxRequestSeconds);
    c.seconds("poll_interval_sec", s.poll_interval_sec, kMaxRequestSeconds);
    c.seconds("poll_timeout_sec", s.poll_timeout_sec, kMaxPollSeconds);
    c.seconds("cooldown_sec", s.cooldown_sec, kMaxPollSeconds);
    c.seconds("node_silence_sec", s.node_silence_sec, kMaxPollSeconds);
    c.text("local_workspace_root", root);
    if (!c.error().empty()) return bad("controller." + c.error());
    s.node_id = util::trim(s.node_id);
    if (!util::trim(root).empty()) s.local_workspace_root = util::path_from_utf8(util::trim(root));
  }
  if (cfg.controller.local_workspace_root.empty()) cfg.controller.local_workspace_root = cfg.state_dir / "local_worker";

  const auto nodes_it = doc.find("nodes");
  if (nodes_it == doc.end() || nodes_it->is_null()) return cfg;
  if (!nodes_it->is_array()) return bad("nodes must be a list");
  std::set<std::string> seen;
  for (std::size_t i = 0; i < nodes_it->size(); ++i) {
    auto node = read_node((*nodes_it)[i], i, cfg.warnings);
    if (!node) continue;
    if (!seen.insert(node->node_id).second) {
      cfg.warnings.push_back("nodes.json: nodes[" + std::to_string(i) + "] repeats node_id '" + node->node_id +
                             "'; skipped (the first entry is used)");
      continue;
    }
    cfg.nodes.push_back(std::move(*node));
  }
  return cfg;
}

Result<NodesConfig> load_nodes_config(const std::filesystem::path& path) {
  auto text = util::read_file(path, 1u << 20);
  if (!text) return Error(ErrorKind::config, "cannot read nodes file " + util::u8(path) + ": " + text.error().message);
  return parse_nodes_config(*text);
}

}  // namespace rayvault::state
