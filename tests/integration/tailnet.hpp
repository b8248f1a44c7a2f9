// The test tailnet (tools/tailnet.sh) from a test: worker hosts in their own network namespaces
// at 100.64.0.(10+i), the controller on its own host at 100.64.0.1, and the faults a tailnet
// suffers (a cut link, a slow link, a frozen, killed or restarted worker).
#pragma once

#include <string>
#include <vector>

#include "tests/integration/harness.hpp"

namespace rayvault::test {

class Tailnet {
 public:
  // Empty when this machine can make a test tailnet; otherwise why not (not root, no network
  // namespaces). Tests skip with that reason, and fail under CI, which must run them.
  static std::string unavailable_reason();
  // Skips (returns false, printing the reason) or fails under CI when no tailnet can be made.
  static bool usable();

  Tailnet(const fs::path& dir, int nodes);
  ~Tailnet();
  Tailnet(const Tailnet&) = delete;
  Tailnet& operator=(const Tailnet&) = delete;

  int size() const { return nodes_; }
  std::string addr(int i) const { return "100.64.0." + std::to_string(10 + i); }
  fs::path root(int i) const { return dir_ / ("node" + std::to_string(i)); }
  std::string worker_log(int i) const;
  long pid(int i);

  // Starts node i's worker (waits until it answers) with the secrets given and extra flags.
  using Env = std::vector<std::pair<std::string, std::optional<std::string>>>;
  void start(int i, std::vector<std::string> args = {}, const std::string& secret = "s3cret",
             const std::string& previous = "", Env env = {});
  void stop(int i);    // SIGTERM, waits for the exit
  void kill(int i);    // SIGKILL, waits for the exit
  void freeze(int i);  // SIGSTOP
  void thaw(int i);    // SIGCONT
  void cut(int i);     // link down: packets vanish, no reset
  void restore(int i);
  void slow(int i, int kbit);  // the link keeps to kbit kbit/s
  void clear(int i);
  void signal_hup(int i);

  // rayvault-controller on the controller's host, in cwd.
  CliResult controller(const fs::path& cwd, const std::vector<std::string>& args,
                       std::vector<std::pair<std::string, std::optional<std::string>>> env = {});
  // A command on the controller's host; its exit code, stdout in *out.
  int on_controller(const std::vector<std::string>& argv, std::string* out = nullptr);

  // nodes.json in cwd listing `nodes` (node numbers) with their tailnet addresses; `controller`
  // settings and per-node fields (by node number) are merged in.
  void write_nodes(const fs::path& cwd, const std::vector<int>& nodes, const json& controller = json::object(),
                   double node_timeout_sec = 3, const std::map<int, json>& node_extra = {});

 private:
  int script(std::vector<std::string> args, std::vector<std::pair<std::string, std::optional<std::string>>> env = {},
             std::string* out = nullptr);
  fs::path dir_;
  int nodes_;
};

}  // namespace rayvault::test
