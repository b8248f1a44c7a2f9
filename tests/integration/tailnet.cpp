// Test tailnet: every operation is tools/tailnet.sh, so what the tests use is what admins run.
#include "tests/integration/tailnet.hpp"

#include <doctest/doctest.h>

#include "platform/system_info.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"

namespace rayvault::test {
namespace {

platform::ProcessSpec script_spec(const fs::path& dir, std::vector<std::string> args) {
  platform::ProcessSpec spec;
  spec.argv = {"bash", RAYVAULT_TAILNET_SCRIPT, dir.string()};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.timeout = std::chrono::seconds(240);
  spec.env = {{"RAYVAULT_WORKER_BIN", RAYVAULT_WORKER_BIN}};
  return spec;
}

}  // namespace

std::string Tailnet::unavailable_reason() {
  TempDir probe;
  auto spec = script_spec(probe.path, {"check"});
  std::string err;
  spec.on_output_line = [&err](std::string_view l) { err += std::string(l) + " "; };
  auto r = platform::run_process(spec);
  if (!r) return "cannot run tools/tailnet.sh: " + r.error().message;
  if (r->exit_code == 0) return {};
  return util::trim(r->stdout_text + err);
}

bool Tailnet::usable() {
  const std::string why = unavailable_reason();
  if (why.empty()) return true;
  // CI runs as root and must run these tests: there a missing tailnet is a failure.
  if (util::parse_bool_text(platform::getenv_string("CI")).value_or(false)) FAIL("test tailnet unavailable under CI: " << why);
  MESSAGE("skipped, no test tailnet on this machine: " << why);
  return false;
}

Tailnet::Tailnet(const fs::path& dir, int nodes) : dir_(dir / "tailnet"), nodes_(nodes) {
  REQUIRE(script({"up", std::to_string(nodes)}) == 0);
}

Tailnet::~Tailnet() { script({"down"}); }

int Tailnet::script(std::vector<std::string> args, std::vector<std::pair<std::string, std::optional<std::string>>> env,
                    std::string* out) {
  auto spec = script_spec(dir_, std::move(args));
  spec.env.insert(spec.env.end(), env.begin(), env.end());
  std::string err;
  spec.on_output_line = [&err](std::string_view l) { err += std::string(l) + "\n"; };
  auto r = platform::run_process(spec);
  REQUIRE(r.ok());
  if (out) *out = r->stdout_text;
  if (r->exit_code != 0) MESSAGE("tailnet.sh " << spec.argv[3] << ": exit " << r->exit_code << ": " << err);
  return r->exit_code;
}

std::string Tailnet::worker_log(int i) const {
  auto text = util::read_file(dir_ / ("node" + std::to_string(i) + ".log"));
  return text ? *text : std::string();
}

long Tailnet::pid(int i) {
  std::string out;
  REQUIRE(script({"pid", std::to_string(i)}, {}, &out) == 0);
  return std::stol(util::trim(out).empty() ? "0" : util::trim(out));
}

void Tailnet::start(int i, std::vector<std::string> args, const std::string& secret, const std::string& previous, Env env) {
  std::vector<std::string> a{"start", std::to_string(i)};
  if (std::find(args.begin(), args.end(), "--slots") == args.end()) a.insert(a.end(), {"--slots", "2"});
  a.insert(a.end(), args.begin(), args.end());
  Env all{{"RAYVAULT_CLUSTER_SECRET", secret},
          {"RAYVAULT_CLUSTER_SECRET_CURRENT", std::nullopt},
          {"RAYVAULT_CLUSTER_SECRET_PREVIOUS", previous.empty() ? std::nullopt : std::optional<std::string>(previous)}};
  all.insert(all.end(), env.begin(), env.end());
  REQUIRE_MESSAGE(script(a, all) == 0,
                  "worker on node " << i << " did not start: " << worker_log(i));
}

void Tailnet::stop(int i) { REQUIRE(script({"stop", std::to_string(i)}) == 0); }
void Tailnet::kill(int i) { REQUIRE(script({"kill", std::to_string(i)}) == 0); }
void Tailnet::freeze(int i) { REQUIRE(script({"freeze", std::to_string(i)}) == 0); }
void Tailnet::thaw(int i) { REQUIRE(script({"thaw", std::to_string(i)}) == 0); }
void Tailnet::cut(int i) { REQUIRE(script({"cut", std::to_string(i)}) == 0); }
void Tailnet::restore(int i) { REQUIRE(script({"restore", std::to_string(i)}) == 0); }
void Tailnet::slow(int i, int kbit) { REQUIRE(script({"slow", std::to_string(i), std::to_string(kbit)}) == 0); }
void Tailnet::clear(int i) { REQUIRE(script({"clear", std::to_string(i)}) == 0); }
void Tailnet::signal_hup(int i) { REQUIRE(script({"hup", std::to_string(i)}) == 0); }

int Tailnet::on_controller(const std::vector<std::string>& argv, std::string* out) {
  std::vector<std::string> a{"exec"};
  a.insert(a.end(), argv.begin(), argv.end());
  return script(a, {}, out);
}

CliResult Tailnet::controller(const fs::path& cwd, const std::vector<std::string>& args,
                              std::vector<std::pair<std::string, std::optional<std::string>>> env) {
  return run_controller(cwd, args, std::move(env), {"bash", RAYVAULT_TAILNET_SCRIPT, dir_.string(), "exec"});
}

void Tailnet::write_nodes(const fs::path& cwd, const std::vector<int>& nodes, const json& controller,
                          double node_timeout_sec, const std::map<int, json>& node_extra) {
  json list = json::array();
  for (int i : nodes) {
    json n{{"node_id", "node" + std::to_string(i)}, {"host", addr(i)}, {"port", 8787}, {"enabled", true},
           {"timeout_sec", node_timeout_sec}};
    if (const auto it = node_extra.find(i); it != node_extra.end()) n.update(it->second);
    list.push_back(n);
  }
  json c{{"node_id", "controller"}, {"poll_interval_sec", 0.2}, {"poll_timeout_sec", 120}, {"request_timeout_sec", 3}};
  if (controller.is_object()) c.update(controller);
  const json doc{{"cluster_name", "tailnet"}, {"state_dir", "state/cluster"},
                 {"auth", {{"secret_env", "RAYVAULT_CLUSTER_SECRET"}}}, {"controller", c}, {"nodes", list}};
  REQUIRE(util::write_file_atomic(cwd / "state/cluster/nodes.json", doc.dump(2)).ok());
}

}  // namespace rayvault::test
