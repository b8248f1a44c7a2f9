// Running an external tool as a child process with a timeout, its output captured.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <string_view>
#include <vector>

#include "util/error.hpp"

namespace rayvault::platform {

struct ProcessSpec {
  std::vector<std::string> argv;         // argv[0] is looked up on PATH when it has no separator
  std::filesystem::path cwd;             // empty: inherit
  std::filesystem::path stdin_file;      // the child's standard input; empty: an empty input
  std::chrono::milliseconds timeout{0};  // 0: none
  std::size_t max_stdout_bytes = 64u << 20;
  // Called for each line the child writes to stderr (and to stdout when capture_stdout is off).
  std::function<void(std::string_view line)> on_output_line;
  bool capture_stdout = true;
  const std::atomic<bool>* cancel = nullptr;  // set to stop the child early
  // Changes to the inherited environment, in order: a value sets the variable, nullopt removes it.
  std::vector<std::pair<std::string, std::optional<std::string>>> env;
};

struct ProcessResult {
  int exit_code = -1;       // the child's exit status; 128 + signal when killed by a signal
  bool timed_out = false;   // killed because the timeout ran out
  bool cancelled = false;   // killed because *cancel became true
  bool stdout_truncated = false;
  std::string stdout_text;  // when capture_stdout
};

// Starts the child in its own process group, reads its output until it exits, and kills the whole
// group (TERM, then KILL after a grace period) on timeout or cancel. Error (unavailable) when the
// program cannot be started, e.g. it is not installed.
Result<ProcessResult> run_process(const ProcessSpec& spec);

// A child left running in the background (a worker under test, a service), its stdout and stderr
// appended to a file. The destructor kills it if it still runs.
class Child {
 public:
  // Starts spec.argv with spec.cwd and spec.env (timeout, capture and cancel are not used).
  static Result<Child> spawn(const ProcessSpec& spec, const std::filesystem::path& output_file);
  Child(Child&& other) noexcept;
  Child& operator=(Child&& other) noexcept;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child();

  long pid() const { return pid_; }
  bool running();
  // Asks the child to stop (SIGTERM; CTRL_BREAK on Windows) and waits up to `grace` for it;
  // then kills it. Returns its exit code (128 + signal when killed by one).
  int terminate(std::chrono::milliseconds grace = std::chrono::seconds(10));
  // Kills it at once, as a crash or power cut would, and reaps it.
  int kill();

 private:
  Child() = default;
  int reap(bool block);
  long pid_ = -1;
  std::optional<int> exit_code_;
  void* process_ = nullptr;  // Windows: the process handle
  void* job_ = nullptr;      // Windows: the job object holding its process tree
};

// Quotes one argument so that CommandLineToArgvW (and the C runtime) reads it back unchanged.
std::string quote_windows_argument(std::string_view arg);

// Quotes one argument of a batch file (.bat, .cmd: run by `cmd.exe /d /s /c`) so that cmd.exe
// runs nothing of it and the program the batch file starts (through %*) reads it back unchanged:
// always in double quotes, a quote inside as "" (cmd.exe's quote state stays in step), the
// backslashes before a quote or the end doubled, '%' as %%cd:~,% (which cmd.exe expands to '%').
// Error (invalid_input) for a line break or NUL, which no quoting passes through cmd.exe.
Result<std::string> quote_batch_argument(std::string_view arg);

// Full path of an executable found on PATH (or name itself when it contains a separator and
// exists); empty when not found.
std::filesystem::path find_executable(std::string_view name);

}  // namespace rayvault::platform
