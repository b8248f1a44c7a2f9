// Slurm settings, batch scripts and Slurm's commands.
#include "worker/slurm.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "platform/process.hpp"
#include "platform/system_info.hpp"
#include "protocol/errors.hpp"
#include "protocol/ids.hpp"
#include "protocol/steps.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"

namespace rayvault::worker::slurm {
namespace {

namespace codes = protocol::codes;

Error config_error(const std::string& message) { return Error(ErrorKind::config, "slurm config: " + message); }
Error invalid(const std::string& message) {
  return Error(ErrorKind::invalid_input, message, std::string(codes::kInvalidInput));
}

// A name Slurm takes as one word in an #SBATCH line: partitions, accounts, QoS, GRES types.
bool plain_word(std::string_view s) {
  return !s.empty() && s.size() <= 200 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' || c == '+' || c == ':';
  });
}

// A path the batch script names: no whitespace, quotes or '%' (Slurm's file name patterns).
bool plain_path(const std::string& s) {
  return !s.empty() && std::none_of(s.begin(), s.end(), [](char c) {
    return std::isspace(static_cast<unsigned char>(c)) || c == '"' || c == '\'' || c == '%' || c == '\\' ||
           static_cast<unsigned char>(c) < 0x20;
  });
}

// Options the worker sets itself: an extra option may not change them.
constexpr std::string_view kOwnOptions[] = {"--job-name", "-J", "--output", "-o", "--error", "-e", "--chdir", "-D",
                                            "--parsable", "--wrap", "--open-mode", "--no-requeue", "--requeue",
                                            "--array", "-a", "--export", "--partition", "-p", "--time", "-t",
                                            "--gres", "--gpus", "-G", "--cpus-per-task", "-c", "--mem", "--account",
                                            "-A", "--qos", "-q", "--wait", "-W"};

Result<Resources> parse_resources(const json& j, const std::string& where, Resources base) {
  if (!j.is_object()) return config_error(where + " must be an object");
  for (const auto& [key, v] : j.items()) {
    const std::string at = where + "." + key;
    auto text = [&](std::string& out) -> Status {
      if (!v.is_string()) return config_error(at + " must be a string");
      const std::string s = util::trim(v.get_ref<const std::string&>());
      if (!s.empty() && !plain_word(s)) return config_error(at + " holds characters Slurm would not read as one name: " + s);
      out = s;
      return Ok{};
    };
    auto number = [&](int& out, int lo, int hi) -> Status {
      if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < lo || v.get<double>() > hi)
        return config_error(at + " must be a number from " + std::to_string(lo) + " to " + std::to_string(hi));
      out = static_cast<int>(std::ceil(v.get<double>()));
      return Ok{};
    };
    Status st = Ok{};
    if (key == "partition") st = text(base.partition);
    else if (key == "account") st = text(base.account);
    else if (key == "qos") st = text(base.qos);
    else if (key == "gpu_type") st = text(base.gpu_type);
    else if (key == "time_limit_min") st = number(base.time_limit_min, 1, 525600);
    else if (key == "gpus") st = number(base.gpus, 0, 64);
    else if (key == "cpus") st = number(base.cpus, 1, 4096);
    else if (key == "mem_gb") {
      if (!v.is_number() || v.get<double>() < 0 || v.get<double>() > 1 << 20) return config_error(at + " must be a number of GiB");
      base.mem_mb = static_cast<int>(std::ceil(v.get<double>() * 1024));
    } else if (key == "extra") {
      if (!v.is_array()) return config_error(at + " must be a list of sbatch options");
      base.extra.clear();
      for (const auto& o : v) {
        if (!o.is_string()) return config_error(at + " must hold strings");
        const std::string opt = util::trim(o.get_ref<const std::string&>());
        if (opt.size() < 3 || opt.rfind("--", 0) != 0 ||
            std::any_of(opt.begin(), opt.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)) || static_cast<unsigned char>(c) < 0x20; }))
          return config_error(at + ": each option is one '--name=value' word without spaces: " + opt);
        const std::string name = opt.substr(0, opt.find('='));
        // sbatch takes any unique prefix of a long option ("--out" is --output).
        for (auto own : kOwnOptions)
          if (name == own || (name.size() > 3 && own.size() > 2 && own.substr(0, 2) == "--" && own.rfind(name, 0) == 0))
            return config_error(at + ": " + name + " is set by the worker (or by its own key in this file)");
        base.extra.push_back(opt);
      }
    } else {
      return config_error("unknown key " + at);
    }
    if (!st) return st.error();
  }
  return base;
}

using util::nonempty_lines;

std::string joined(const std::vector<std::string>& lines, std::size_t max = 5) {
  std::string out;
  const std::size_t from = lines.size() > max ? lines.size() - max : 0;
  for (std::size_t i = from; i < lines.size(); ++i) out += (out.empty() ? "" : "; ") + lines[i];
  return out;
}

// "Invalid job id specified": the job is not (or no longer) known to slurmctld.
bool invalid_job_id(const std::string& err) { return err.find("Invalid job id") != std::string::npos; }

// The words that say slurmctld could not be reached rather than that it refused.
bool unreachable(const std::string& err) {
  for (const char* w : {"Unable to contact slurm controller", "Socket timed out", "Connection refused",
                        "Zero Bytes were transmitted", "slurm_persist_conn_open", "Communication connection failure",
                        "Unable to establish", "munge"})
    if (err.find(w) != std::string::npos) return true;
  return false;
}

// The '|'-separated fields of one line of squeue's or sinfo's output.
std::vector<std::string> fields(const std::string& line) {
  std::vector<std::string> f;
  std::size_t start = 0;
  while (true) {
    const auto bar = line.find('|', start);
    f.push_back(line.substr(start, bar == std::string::npos ? std::string::npos : bar - start));
    if (bar == std::string::npos) return f;
    start = bar + 1;
  }
}

std::string sh_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

}  // namespace

bool Config::handles(std::string_view step) const {
  return std::find(steps.begin(), steps.end(), protocol::steps::normalize(step)) != steps.end();
}

const Resources& Config::limits_for(std::string_view step) const {
  const auto it = step_options.find(protocol::steps::normalize(step));
  return it == step_options.end() ? defaults : it->second;
}

Result<Config> load_config(const fs::path& file) {
  Config c;
  if (file.empty()) return c;
  auto text = util::read_file(file, 1u << 20);
  if (!text) return config_error("cannot read " + util::u8(file) + ": " + text.error().message);
  auto doc = protocol::parse_json(*text);
  if (!doc || !doc->is_object()) return config_error(util::u8(file) + " is not a JSON object");
  const json& j = *doc;
  auto seconds = [&](const char* key, double lo, double hi) -> Result<double> {
    const auto& v = j[key];
    if (!v.is_number() || v.get<double>() < lo || v.get<double>() > hi)
      return config_error(std::string(key) + " must be a number of seconds from " + protocol::python_float_repr(lo) + " to " +
                          protocol::python_float_repr(hi));
    return v.get<double>();
  };
  for (const auto& [key, v] : j.items()) {
    if (key == "steps") {
      if (!v.is_array()) return config_error("steps must be a list of step names");
      c.steps.clear();
      for (const auto& s : v) {
        if (!s.is_string()) return config_error("steps must hold step names");
        const std::string name = protocol::steps::normalize(s.get<std::string>());
        if (!protocol::steps::is_job_step(name)) return config_error("steps: not a job step: " + s.get<std::string>());
        c.steps.push_back(name);
      }
    } else if (key == "shared_dir" || key == "worker_binary" || key == "bin_dir") {
      if (!v.is_string()) return config_error(key + " must be a path");
      const std::string p = util::trim(v.get_ref<const std::string&>());
      if (!p.empty() && !plain_path(p)) return config_error(key + " may not hold spaces, quotes, '\\' or '%': " + p);
      (key == "shared_dir" ? c.shared_dir : key == "bin_dir" ? c.bin_dir : c.worker_binary) = util::path_from_utf8(p);
    } else if (key == "defaults") {
      auto r = parse_resources(v, key, c.defaults);
      if (!r) return r.error();
      c.defaults = *r;
    } else if (key == "step_options") {
      if (!v.is_object()) return config_error("step_options must map step names to options");
    } else if (key == "partitions") {
      if (!v.is_array()) return config_error("partitions must be a list of names");
      for (const auto& p : v) {
        if (!p.is_string() || !plain_word(p.get<std::string>())) return config_error("partitions must hold partition names");
        c.partitions.push_back(p.get<std::string>());
      }
    } else if (key == "max_jobs") {
      if (!v.is_number_integer() || v.get<int>() < 1 || v.get<int>() > 100000) return config_error("max_jobs must be 1..100000");
      c.max_jobs = v.get<int>();
    } else if (key == "poll_min_sec" || key == "poll_max_sec") {
      auto s = seconds(key.c_str(), 0.05, 3600);
      if (!s) return s.error();
      (key == "poll_min_sec" ? c.poll_min : c.poll_max) = std::chrono::milliseconds(static_cast<long long>(*s * 1000));
    } else if (key == "command_timeout_sec") {
      auto s = seconds(key.c_str(), 1, 600);
      if (!s) return s.error();
      c.command_timeout = std::chrono::seconds(static_cast<long long>(*s));
    } else if (key == "info_refresh_sec") {
      auto s = seconds(key.c_str(), 1, 86400);
      if (!s) return s.error();
      c.info_refresh = std::chrono::seconds(static_cast<long long>(*s));
    } else if (key == "gpu_model") {
      if (!v.is_string()) return config_error("gpu_model must be a string");
      c.gpu_model = util::trim(v.get_ref<const std::string&>());
    } else if (key == "gpu_vram_gb") {
      if (!v.is_number() || v.get<double>() < 0) return config_error("gpu_vram_gb must be a number");
      c.gpu_vram_gb = v.get<double>();
    } else if (key == "launch" || key == "comment") {
      // "launch": "slurm" marks the file; a comment is for people.
    } else {
      return config_error("unknown key " + key);
    }
  }
  // Per-step options start from the defaults as the file gives them.
  if (const auto so = j.find("step_options"); so != j.end())
    for (const auto& [step, v] : so->items()) {
      const std::string name = protocol::steps::normalize(step);
      if (!protocol::steps::is_job_step(name)) return config_error("step_options: not a job step: " + step);
      auto r = parse_resources(v, "step_options." + step, c.defaults);
      if (!r) return r.error();
      c.step_options[name] = *r;
    }
  if (c.poll_max < c.poll_min) c.poll_max = c.poll_min;
  return c;
}

Status complete_config(Config& c, const fs::path& root) {
  if (c.shared_dir.empty()) c.shared_dir = root / "slurm";
  c.shared_dir = fs::absolute(c.shared_dir);
  if (c.worker_binary.empty()) c.worker_binary = util::path_from_utf8(platform::current_executable());
  for (const auto& [key, p] : {std::pair<const char*, const fs::path*>{"shared_dir", &c.shared_dir}, {"worker_binary", &c.worker_binary}})
    if (!plain_path(util::u8(*p)))
      return config_error(std::string(key) + " " + util::u8(*p) +
                          " holds spaces, quotes, '\\' or '%', which the batch script cannot name; set it to another path");
  std::set<std::string> parts(c.partitions.begin(), c.partitions.end());
  auto add = [&](const Resources& r) {
    if (!r.partition.empty() && parts.insert(r.partition).second) c.partitions.push_back(r.partition);
  };
  add(c.defaults);
  for (const auto& [step, r] : c.step_options) add(r);
  return Ok{};
}

Result<Resources> resources_for(const Config& config, std::string_view step, const json& payload,
                                std::vector<std::string>& notes) {
  Resources r = config.limits_for(step);
  const auto lower = [&](int& value, const json& v, const char* key, int floor, double scale) -> Status {
    if (v.is_null()) return Ok{};
    std::optional<double> asked;
    if (v.is_number()) asked = v.get<double>();
    else if (v.is_string()) asked = util::parse_number_text(v.get_ref<const std::string&>());
    if (!asked || !std::isfinite(*asked) || *asked < 0) return invalid(std::string("payload.slurm.") + key + " must be a number");
    if (value <= 0) {
      // No limit of the worker's own (mem_gb 0: the partition's default): nothing to lower.
      notes.push_back(std::string("payload.slurm.") + key + " ignored: this worker leaves it to the partition's default");
      return Ok{};
    }
    const double want = std::max(static_cast<double>(floor), std::ceil(*asked * scale));
    if (want > value) {
      notes.push_back(std::string("payload.slurm.") + key + " asked more than this worker allows; kept at its limit");
      return Ok{};
    }
    value = static_cast<int>(want);
    return Ok{};
  };
  if (const auto s = payload.find("slurm"); s != payload.end() && !s->is_null()) {
    if (!s->is_object()) return invalid("payload.slurm must be an object");
    for (const auto& [key, v] : s->items()) {
      Status st = Ok{};
      if (key == "time_limit_min") st = lower(r.time_limit_min, v, "time_limit_min", 1, 1);
      else if (key == "gpus") st = lower(r.gpus, v, "gpus", r.gpus > 0 ? 1 : 0, 1);
      else if (key == "cpus") st = lower(r.cpus, v, "cpus", 1, 1);
      else if (key == "mem_gb") st = lower(r.mem_mb, v, "mem_gb", 1, 1024);
      else if (key == "partition") {
        if (!v.is_string()) return invalid("payload.slurm.partition must be a string");
        const std::string p = util::trim(v.get_ref<const std::string&>());
        if (!p.empty() && p != r.partition) {
          if (std::find(config.partitions.begin(), config.partitions.end(), p) == config.partitions.end())
            return invalid("payload.slurm.partition " + p + " is not one this worker may use (" +
                           (config.partitions.empty() ? std::string("none listed") : [&] {
                             std::string all;
                             for (const auto& x : config.partitions) all += (all.empty() ? "" : ", ") + x;
                             return all;
                           }()) + ")");
          r.partition = p;
        }
      } else {
        return invalid("payload.slurm." + key + " is not a Slurm option a job may set (time_limit_min, gpus, cpus, mem_gb, partition)");
      }
      if (!st) return st.error();
    }
  }
  // A job timeout the payload gives lowers the time limit too.
  if (const auto t = payload.find("timeout_sec"); t != payload.end() && t->is_number() && t->get<double>() > 0) {
    const double minutes = std::max(1.0, std::ceil(t->get<double>() / 60.0));
    if (minutes < r.time_limit_min) r.time_limit_min = static_cast<int>(minutes);
  }
  return r;
}

std::string job_name(std::string_view worker_id, std::string_view job_id, std::string_view attempt) {
  return "rayvault." + std::string(worker_id) + "." + protocol::id_folder_name(job_id) + "." + std::string(attempt);
}

std::string batch_script(const Resources& r, const std::string& name, const fs::path& dir, const fs::path& worker_binary,
                         const std::string& about) {
  std::string s = "#!/bin/sh\n";
  const auto opt = [&s](const std::string& line) { s += "#SBATCH " + line + "\n"; };
  opt("--job-name=" + name);
  if (!r.partition.empty()) opt("--partition=" + r.partition);
  opt("--time=" + std::to_string(r.time_limit_min));
  if (r.gpus > 0) opt("--gres=gpu:" + (r.gpu_type.empty() ? "" : r.gpu_type + ":") + std::to_string(r.gpus));
  opt("--cpus-per-task=" + std::to_string(r.cpus));
  if (r.mem_mb > 0) opt("--mem=" + std::to_string(r.mem_mb) + "M");
  if (!r.account.empty()) opt("--account=" + r.account);
  if (!r.qos.empty()) opt("--qos=" + r.qos);
  opt("--requeue");
  opt("--open-mode=append");
  opt("--output=" + util::u8(dir / "slurm-%j.out"));
  opt("--error=" + util::u8(dir / "slurm-%j.err"));
  for (const auto& e : r.extra) opt(e);
  s += "# " + about + "\n";
  s += "# The step runs in the worker's own program, which writes result.json in this folder.\n";
  s += "exec " + sh_quote(util::u8(worker_binary)) + " slurm-step " + sh_quote(util::u8(dir)) + "\n";
  return s;
}

bool is_terminal(std::string_view s) {
  return s == "COMPLETED" || s == "FAILED" || s == "TIMEOUT" || s == "CANCELLED" || s == "OUT_OF_MEMORY" ||
         s == "NODE_FAIL" || s == "PREEMPTED" || s == "BOOT_FAIL" || s == "DEADLINE" || s == "REVOKED" ||
         s == "SPECIAL_EXIT";
}

bool never_starts(std::string_view reason) {
  // (PartitionNodeLimit is left out: Slurm also gives it while the nodes a job needs are down.)
  for (std::string_view r : {"PartitionTimeLimit", "InvalidAccount", "InvalidQOS", "BadConstraints",
                             "DependencyNeverSatisfied", "AccountNotAllowed", "QOSNotAllowed"})
    if (reason == r) return true;
  return false;
}

std::string_view error_code_for(std::string_view s) {
  if (s == "TIMEOUT" || s == "DEADLINE") return codes::kSlurmTimeout;
  if (s == "OUT_OF_MEMORY") return codes::kSlurmOutOfMemory;
  if (s == "NODE_FAIL" || s == "BOOT_FAIL") return codes::kSlurmNodeFail;
  if (s == "PREEMPTED") return codes::kSlurmPreempted;
  if (s == "CANCELLED" || s == "REVOKED") return codes::kSlurmCancelled;
  return codes::kSlurmJobFailed;
}

std::vector<GresGpu> parse_gres_gpus(std::string_view gres) {
  std::vector<GresGpu> out;
  std::vector<std::string> items;
  std::string cur;
  int depth = 0;
  for (char c : gres) {
    if (c == '(') ++depth;
    if (c == ')') depth = std::max(0, depth - 1);
    if (c == ',' && depth == 0) {
      items.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  items.push_back(cur);
  for (auto item : items) {
    // "gpu:a100:4(S:0-1)", "gpu:(null):1(IDX:0)", "gpu:2": the name, an optional type, a count,
    // then details in parentheses.
    for (std::size_t at; (at = item.find("(null)")) != std::string::npos;) item.replace(at, 6, "");
    item = util::trim(item.substr(0, item.find('(')));
    std::vector<std::string> parts;
    std::size_t start = 0;
    while (true) {
      const auto colon = item.find(':', start);
      parts.push_back(item.substr(start, colon == std::string::npos ? std::string::npos : colon - start));
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
    if (parts[0] != "gpu") continue;
    GresGpu g;
    const auto n = parts.size() >= 2 ? util::parse_number_text(parts.back()) : std::optional<double>();
    if (parts.size() >= 3 || (parts.size() == 2 && !n)) g.type = parts[1];
    g.count = n ? static_cast<int>(*n) : 1;  // "gpu" or "gpu:a100" alone: one GPU
    out.push_back(g);
  }
  return out;
}

Result<Client::Output> Client::run(const std::string& tool, std::vector<std::string> args) const {
  platform::ProcessSpec spec;
  spec.argv.push_back(config_.bin_dir.empty() ? tool : util::u8(config_.bin_dir / tool));
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.timeout = config_.command_timeout;
  spec.capture_stdout = true;
  spec.max_stdout_bytes = 16u << 20;
  Output out;
  spec.on_output_line = [&out](std::string_view line) {
    if (out.err.size() < (64u << 10)) out.err.append(line).push_back('\n');
  };
  auto res = platform::run_process(spec);
  if (!res)
    return Error(ErrorKind::unavailable, "Slurm's " + tool + " is not installed on this node (" + res.error().message + ")",
                 std::string(codes::kSlurmMissing));
  if (res->timed_out)
    return Error(ErrorKind::unavailable, "Slurm's " + tool + " did not answer within " + std::to_string(config_.command_timeout.count()) +
                                             " s (is slurmctld up?)",
                 std::string(codes::kSlurmUnavailable));
  out.exit_code = res->exit_code;
  out.out = std::move(res->stdout_text);
  return out;
}

Result<std::string> Client::submit(const fs::path& script, const fs::path& dir) const {
  auto r = run("sbatch", {"--parsable", "--chdir=" + util::u8(dir), util::u8(script)});
  if (!r) return r.error();
  const auto err = nonempty_lines(r->err);
  if (r->exit_code != 0) {
    const std::string said = joined(err);
    if (unreachable(r->err))
      return Error(ErrorKind::unavailable, "slurmctld did not take the job: " + said, std::string(codes::kSlurmUnavailable));
    return Error(ErrorKind::invalid_input, "Slurm refused the job: " + (said.empty() ? "sbatch exit " + std::to_string(r->exit_code) : said),
                 std::string(codes::kSlurmSubmitFailed));
  }
  // --parsable: "ID" or "ID;CLUSTER".
  const auto out = nonempty_lines(r->out);
  const std::string id = out.empty() ? std::string() : out.back().substr(0, out.back().find(';'));
  if (id.empty() || !std::all_of(id.begin(), id.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
    return Error(ErrorKind::unavailable, "sbatch printed no job id: " + joined(out) + " " + joined(err),
                 std::string(codes::kSlurmUnavailable));
  return id;
}

Result<std::map<std::string, JobState>> Client::query(const std::vector<std::string>& ids) const {
  std::map<std::string, JobState> out;
  if (ids.empty()) return out;
  std::string list;
  for (const auto& id : ids) list += (list.empty() ? "" : ",") + id;
  auto r = run("squeue", {"-h", "-t", "all", "-j", list, "-o", "%i|%T|%r|%N|%l|%P"});
  if (!r) return r.error();
  if (r->exit_code != 0) {
    if (invalid_job_id(r->err)) return out;  // none of them is known any more
    return Error(ErrorKind::unavailable, "squeue failed: " + joined(nonempty_lines(r->err)), std::string(codes::kSlurmUnavailable));
  }
  for (const auto& line : nonempty_lines(r->out)) {
    const std::vector<std::string> f = fields(line);
    if (f.size() < 6) continue;
    JobState s;
    s.id = f[0];
    s.state = f[1];
    s.reason = f[2] == "None" ? "" : f[2];
    s.nodes = f[3];
    s.time_limit = f[4];
    s.partition = f[5];
    out[s.id] = s;
  }
  return out;
}

Result<std::optional<JobState>> Client::show(const std::string& id) const {
  auto r = run("scontrol", {"show", "job", "-o", id});
  if (!r) return r.error();
  if (r->exit_code == 0) {
    JobState s;
    s.id = id;
    std::istringstream in(r->out);
    for (std::string word; in >> word;) {
      const auto eq = word.find('=');
      if (eq == std::string::npos) continue;
      const std::string key = word.substr(0, eq), value = word.substr(eq + 1);
      if (key == "JobState") s.state = value;
      else if (key == "Reason") s.reason = value == "None" ? "" : value;
      else if (key == "Restarts") s.restarts = static_cast<int>(util::parse_number_text(value).value_or(0));
      else if (key == "ExitCode") s.exit_code = value;
      else if (key == "NodeList") s.nodes = value == "(null)" ? "" : value;
      else if (key == "TimeLimit") s.time_limit = value;
      else if (key == "Partition") s.partition = value;
    }
    if (!s.state.empty()) return std::optional<JobState>(s);
  } else if (!invalid_job_id(r->err)) {
    return Error(ErrorKind::unavailable, "scontrol failed: " + joined(nonempty_lines(r->err)), std::string(codes::kSlurmUnavailable));
  }
  // Purged from slurmctld: the accounting database or the job completion log may still know it.
  for (const std::vector<std::string>& args : {std::vector<std::string>{"-j", id, "-n", "-P", "-X", "-o", "jobid,state,exitcode"},
                                               std::vector<std::string>{"-c", "-j", id, "-n", "-P", "-o", "jobid,state,exitcode"}}) {
    auto a = run("sacct", args);
    if (!a || a->exit_code != 0) continue;
    for (const auto& line : nonempty_lines(a->out)) {
      const auto b1 = line.find('|'), b2 = line.find('|', b1 == std::string::npos ? 0 : b1 + 1);
      if (b1 == std::string::npos || b2 == std::string::npos || line.substr(0, b1) != id) continue;
      JobState s;
      s.id = id;
      std::string state = line.substr(b1 + 1, b2 - b1 - 1);
      s.state = state.substr(0, state.find(' '));  // "CANCELLED by 0"
      s.exit_code = line.substr(b2 + 1);
      if (!s.state.empty()) return std::optional<JobState>(s);
    }
  }
  return std::optional<JobState>();
}

Result<std::vector<std::string>> Client::find_by_name(const std::string& name) const {
  auto r = run("squeue", {"--me", "-h", "-t", "all", "-n", name, "-o", "%i"});
  if (!r) return r.error();
  if (r->exit_code != 0)
    return Error(ErrorKind::unavailable, "squeue failed: " + joined(nonempty_lines(r->err)), std::string(codes::kSlurmUnavailable));
  auto ids = nonempty_lines(r->out);
  if (!ids.empty()) return ids;
  // Purged from slurmctld: the accounting database, else the job completion log (which takes no
  // name filter: the names are compared here).
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"-n", "-P", "-X", "-S", "now-30days", "--name", name, "-o", "jobid,jobname"},
        std::vector<std::string>{"-c", "-n", "-P", "-S", "now-30days", "-o", "jobid,jobname"}}) {
    auto a = run("sacct", args);
    if (!a || a->exit_code != 0) continue;
    for (const auto& line : nonempty_lines(a->out))
      if (const auto bar = line.find('|'); bar != std::string::npos && line.substr(bar + 1) == name) ids.push_back(line.substr(0, bar));
    if (!ids.empty()) break;
  }
  return ids;
}

Status Client::cancel_by_name(const std::string& name) const {
  auto r = run("scancel", {"--me", "--name", name});
  if (!r) return r.error();
  if (r->exit_code != 0)
    return Error(ErrorKind::unavailable, "scancel --name " + name + " failed: " + joined(nonempty_lines(r->err)),
                 std::string(codes::kSlurmUnavailable));
  return Ok{};
}

Status Client::cancel(const std::string& id) const {
  auto r = run("scancel", {id});
  if (!r) return r.error();
  if (r->exit_code != 0 && !invalid_job_id(r->err) && r->err.find("already completed") == std::string::npos)
    return Error(ErrorKind::unavailable, "scancel " + id + " failed: " + joined(nonempty_lines(r->err)), std::string(codes::kSlurmUnavailable));
  return Ok{};
}

Result<json> Client::cluster_info() const {
  auto parts = run("sinfo", {"-h", "-o", "%R|%a|%l|%D"});
  if (!parts) return parts.error();
  if (parts->exit_code != 0)
    return Error(ErrorKind::unavailable, "sinfo failed: " + joined(nonempty_lines(parts->err)), std::string(codes::kSlurmUnavailable));
  auto nodes = run("sinfo", {"-h", "-N", "-O", "NodeHost:200,Partition:200,Gres:400,GresUsed:400,StateLong:60"});
  if (!nodes) return nodes.error();
  std::map<std::string, json> by_name;
  std::vector<std::string> order;
  for (const auto& line : nonempty_lines(parts->out)) {
    const std::vector<std::string> f = fields(line);
    if (f.size() < 4 || by_name.count(f[0])) continue;
    order.push_back(f[0]);
    by_name[f[0]] = {{"name", f[0]}, {"available", f[1] == "up"}, {"time_limit", f[2]}, {"nodes", 0}, {"gpu_types", json::array()},
                     {"gpus", 0}, {"gpus_used", 0}, {"gpus_free", 0}};
  }
  std::string default_partition;
  for (const auto& line : nonempty_lines(nodes->exit_code == 0 ? nodes->out : std::string())) {
    std::istringstream in(line);
    std::string host, partition, gres, used, state;
    if (!(in >> host >> partition >> gres >> used >> state)) continue;
    if (!partition.empty() && partition.back() == '*') {
      partition.pop_back();
      default_partition = partition;
    }
    auto it = by_name.find(partition);
    if (it == by_name.end()) continue;
    json& p = it->second;
    p["nodes"] = p["nodes"].get<int>() + 1;
    int total = 0, in_use = 0;
    for (const auto& g : parse_gres_gpus(gres)) {
      total += g.count;
      const std::string type = g.type.empty() ? "gpu" : g.type;
      if (std::find(p["gpu_types"].begin(), p["gpu_types"].end(), type) == p["gpu_types"].end()) p["gpu_types"].push_back(type);
    }
    for (const auto& g : parse_gres_gpus(used)) in_use += g.count;
    // Only a node that takes jobs has free GPUs: not down, drained, draining or failing.
    const bool usable = state.find("down") == std::string::npos && state.find("drain") == std::string::npos &&
                        state.find("fail") == std::string::npos && state.find("maint") == std::string::npos &&
                        state.find("reserved") == std::string::npos && state.find("not_responding") == std::string::npos &&
                        state.back() != '*';
    p["gpus"] = p["gpus"].get<int>() + total;
    p["gpus_used"] = p["gpus_used"].get<int>() + in_use;
    if (usable && p["available"].get<bool>()) p["gpus_free"] = p["gpus_free"].get<int>() + std::max(0, total - in_use);
  }
  json list = json::array();
  for (const auto& name : order) {
    by_name[name]["default"] = name == default_partition;
    list.push_back(by_name[name]);
  }
  return json{{"partitions", list}, {"default_partition", default_partition}};
}

}  // namespace rayvault::worker::slurm
