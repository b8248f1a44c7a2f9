// Requirement parsing and matching.
#include "controller/selection.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "protocol/steps.hpp"
#include "util/strings.hpp"

namespace rayvault::controller {
namespace {

Error bad(const std::string& m) { return Error(ErrorKind::invalid_input, "requirements: " + m); }

bool flag(const json& caps, const char* key) {
  const auto it = caps.find(key);
  return it != caps.end() && it->is_boolean() && it->get<bool>();
}

double number_or(const json& caps, const char* key, double fallback) {
  const auto it = caps.find(key);
  return (it != caps.end() && it->is_number()) ? it->get<double>() : fallback;
}

}  // namespace

Result<Requirements> parse_requirements(const json& j) {
  Requirements r;
  if (j.is_null()) return r;
  if (!j.is_object()) return bad("must be an object");
  auto boolean = [&r](const std::string& key, const json& v) -> std::optional<bool> {
    if (v.is_boolean()) return v.get<bool>();
    std::optional<bool> out;
    if (v.is_number()) out = v.get<double>() != 0;
    if (v.is_string()) out = util::parse_bool_text(v.get_ref<const std::string&>());
    if (out) r.warnings.push_back("requirements: " + key + " is " + v.dump() + ", read as " + (*out ? "true" : "false"));
    return out;
  };
  auto number = [](const json& v) -> std::optional<double> {
    if (v.is_number()) return v.get<double>();
    if (!v.is_string()) return std::nullopt;
    const auto d = util::parse_number_text(v.get_ref<const std::string&>());
    return d && std::isfinite(*d) ? d : std::nullopt;
  };
  for (const auto& [key, v] : j.items()) {
    if (v.is_null()) continue;
    if (key == "os_in") {
      const json list = v.is_string() ? json::array({v}) : v;
      if (!list.is_array()) return bad("os_in must be a list of names");
      for (const auto& o : list) {
        if (!o.is_string()) return bad("os_in must be a list of names");
        r.os_in.push_back(util::ascii_lower(util::trim(o.get_ref<const std::string&>())));
      }
    } else if (key == "min_ram_gb" || key == "min_vram_gb") {
      const auto n = number(v);
      if (!n) return bad(key + " must be a number");
      (key == "min_ram_gb" ? r.min_ram_gb : r.min_vram_gb) = *n;
    } else if (key == "tags" || key == "steps") {
      const json list = v.is_string() ? json::array({v}) : v;
      if (!list.is_array()) return bad(key + " must be a list of names");
      for (const auto& t : list) {
        if (!t.is_string() || util::trim(t.get_ref<const std::string&>()).empty()) return bad(key + " must be a list of names");
        const std::string name = util::trim(t.get_ref<const std::string&>());
        if (key == "tags") r.tags.push_back(name);
        else r.steps.push_back(protocol::steps::normalize(name));
      }
    } else if (key == "gpu_required" || key == "davinci_available") {
      const auto b = boolean(key, v);
      if (!b) return bad(key + " must be true or false");
      if (key == "gpu_required") r.gpu_required = *b;
      else r.davinci_available = *b;
    } else {
      // Stricter than the Python controller on purpose: a misspelt key would match every worker.
      return bad("unknown key '" + key +
                 "' (known: os_in, min_ram_gb, min_vram_gb, gpu_required, davinci_available, tags, steps)");
    }
  }
  return r;
}

std::string unmet_reason(const json& caps, const Requirements& req, const std::string& step,
                         const std::vector<std::string>& node_tags) {
  if (!caps.is_object()) return "no capabilities reported";
  if (const auto it = caps.find("supported_steps"); it != caps.end() && it->is_array()) {
    if (std::find(it->begin(), it->end(), json(step)) == it->end()) return "does not run " + step;
    for (const auto& s : req.steps)
      if (std::find(it->begin(), it->end(), json(s)) == it->end()) return "does not run " + s;
  } else if (!req.steps.empty()) {
    return "does not list the steps it runs";
  }
  for (const auto& tag : req.tags) {
    const bool in_file = std::find(node_tags.begin(), node_tags.end(), tag) != node_tags.end();
    const auto own = caps.find("tags");
    const bool own_tag = own != caps.end() && own->is_array() && std::find(own->begin(), own->end(), json(tag)) != own->end();
    if (!in_file && !own_tag) return "no tag " + tag;
  }
  if (!req.os_in.empty()) {
    const std::string os = util::ascii_lower(protocol::string_field(caps, "os"));
    if (std::find(req.os_in.begin(), req.os_in.end(), os) == req.os_in.end()) return "os " + os + " not in os_in";
  }
  if (req.min_ram_gb && number_or(caps, "ram_gb", 0) < *req.min_ram_gb)
    return fmt::format("ram_gb {} < {}", number_or(caps, "ram_gb", 0), *req.min_ram_gb);
  if (req.min_vram_gb && number_or(caps, "vram_gb", 0) < *req.min_vram_gb)
    return fmt::format("vram_gb {} < {}", number_or(caps, "vram_gb", 0), *req.min_vram_gb);
  if (req.gpu_required) {
    const bool gpu = flag(caps, "gpu") || !protocol::string_field(caps, "gpu_model").empty();
    if (!gpu) return "no GPU";
  }
  if (req.davinci_available) {
    const bool has = flag(caps, "davinci_available");
    if (has != *req.davinci_available) return *req.davinci_available ? "no DaVinci Resolve" : "has DaVinci Resolve";
  }
  return {};
}

int int_field(const json& j, const char* key, int fallback) {
  const auto it = j.is_object() ? j.find(key) : j.end();
  return it != j.end() && it->is_number_integer() ? it->get<int>() : fallback;
}

NodeLoad load_for_step(const json& health, const std::string& step) {
  NodeLoad out;
  out.queue_depth = std::max(0, int_field(health, "queue_depth", 0));
  const auto load = health.is_object() ? health.find("load") : health.end();
  if (load != health.end() && load->is_object()) {
    const bool gpu = step == protocol::steps::kPoseEstimate && int_field(*load, "gpu_slots", 0) > 0;
    const char* p = gpu ? "gpu_" : "cpu_";
    out.free_slots = std::max(0, int_field(*load, (std::string(p) + "slots").c_str(), 0) -
                                     int_field(*load, (std::string(p) + "running").c_str(), 0) -
                                     int_field(*load, (std::string(p) + "queued").c_str(), 0));
    return out;
  }
  const json caps = health.is_object() ? health.value("caps", json::object()) : json::object();
  out.free_slots = std::max(0, std::max(1, int_field(caps, "slots", 1)) - out.queue_depth);
  return out;
}

int latency_class(long long ms) {
  int cls = 0;
  for (long long bound = 50; ms >= bound && cls < 30; bound *= 2) ++cls;
  return cls;
}

void order_candidates(std::vector<Candidate>& c) {
  std::stable_sort(c.begin(), c.end(), [](const Candidate& a, const Candidate& b) {
    if (a.cooling != b.cooling) return !a.cooling;
    if (a.free_slots != b.free_slots) return a.free_slots > b.free_slots;
    if (a.queue_depth != b.queue_depth) return a.queue_depth < b.queue_depth;
    if (latency_class(a.latency_ms) != latency_class(b.latency_ms)) return a.latency_ms < b.latency_ms;
    return a.index < b.index;
  });
}

}  // namespace rayvault::controller
