// POSIX child processes: fork/exec into a new process group, poll its pipes, kill the group.
#include <fcntl.h>
#include <poll.h>
#if defined(__linux__)
#include <sys/prctl.h>
#endif
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "platform/process.hpp"

namespace rayvault::platform {
namespace {

struct LineSplitter {
  std::string pending;
  void feed(const char* data, std::size_t n, const std::function<void(std::string_view)>& sink) {
    pending.append(data, n);
    std::size_t start = 0;
    for (std::size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string_view line(pending.data() + start, nl - start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (sink) sink(line);
    }
    pending.erase(0, start);
    if (pending.size() > 64 * 1024) {  // an endless line: hand it over in pieces
      if (sink) sink(pending);
      pending.clear();
    }
  }
  void flush(const std::function<void(std::string_view)>& sink) {
    if (!pending.empty() && sink) sink(pending);
    pending.clear();
  }
};

struct Spawned {
  pid_t pid = -1;
};

// Builds the environment block: the inherited one with spec.env applied in order, so a later
// entry for a name replaces an earlier one (as on Windows).
std::vector<std::string> build_env(const ProcessSpec& spec) {
  std::vector<std::string> out;
  for (char** e = environ; e && *e; ++e) out.emplace_back(*e);
  for (const auto& [k, v] : spec.env) {
    const std::string prefix = k + "=";
    std::erase_if(out, [&prefix](const std::string& e) { return e.rfind(prefix, 0) == 0; });
    if (v) out.push_back(prefix + *v);
  }
  return out;
}

// Forks and execs spec.argv in a new process group with stdin from spec.stdin_file (else /dev/null)
// and stdout/stderr on
// the given descriptors. Everything is prepared before fork: the child only calls
// async-signal-safe functions. die_with_parent: on Linux the child is killed when this process
// dies (a step's tool); a background child (Child) outlives the thread that started it.
// Error (unavailable) when the program cannot be started.
Result<Spawned> spawn(const ProcessSpec& spec, int out_fd, int err_fd, bool die_with_parent) {
  if (spec.argv.empty()) return Error(ErrorKind::internal, "spawn: empty argv");
  const std::filesystem::path exe = find_executable(spec.argv[0]);
  if (exe.empty()) return Error(ErrorKind::unavailable, "program not found: " + spec.argv[0]);
  int exec_pipe[2];
  if (::pipe2(exec_pipe, O_CLOEXEC) != 0) return Error(ErrorKind::io, "pipe failed");
  std::vector<char*> argv;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const std::vector<std::string> env_strings = build_env(spec);
  std::vector<char*> envp;
  for (const auto& e : env_strings) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const std::string exe_str = exe.string();
  const std::string cwd_str = spec.cwd.string();
  const std::string stdin_path = spec.stdin_file.empty() ? std::string("/dev/null") : spec.stdin_file.string();
  const int devnull = ::open(stdin_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (devnull < 0 && !spec.stdin_file.empty()) {
    ::close(exec_pipe[0]);
    ::close(exec_pipe[1]);
    return Error(ErrorKind::io, "cannot open " + stdin_path + ": " + std::strerror(errno));
  }
  const pid_t parent = ::getpid();
  const long max_fd = ::sysconf(_SC_OPEN_MAX);

  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(exec_pipe[0]);
    ::close(exec_pipe[1]);
    if (devnull >= 0) ::close(devnull);
    return Error(ErrorKind::io, std::string("fork failed: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::setpgid(0, 0);
#if defined(__linux__)
    // A step's tool ends with the worker, even when the worker is killed outright (SIGKILL, a
    // crash): it must not go on writing into a job nobody follows.
    if (die_with_parent && (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != parent)) ::_exit(127);
#else
    (void)die_with_parent;
    (void)parent;
#endif
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    // Nothing but stdin, stdout and stderr reaches the program: not the worker's listening socket
    // (a tool that outlives a killed worker would keep its port from the restarted one), not its
    // database, not other jobs' pipes.
#if defined(__linux__)
    if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
#endif
      for (long fd = 3; fd < (max_fd > 0 ? max_fd : 1024); ++fd) ::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
    if (!cwd_str.empty() && ::chdir(cwd_str.c_str()) != 0) {
      const int e = errno;
      (void)!::write(exec_pipe[1], &e, sizeof e);
      ::_exit(127);
    }
    ::execve(exe_str.c_str(), argv.data(), envp.data());
    const int e = errno;
    (void)!::write(exec_pipe[1], &e, sizeof e);
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also from the parent, so the group exists before any kill
  ::close(exec_pipe[1]);
  if (devnull >= 0) ::close(devnull);
  int exec_errno = 0;
  const ssize_t got = ::read(exec_pipe[0], &exec_errno, sizeof exec_errno);
  ::close(exec_pipe[0]);
  if (got == static_cast<ssize_t>(sizeof exec_errno)) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    return Error(ErrorKind::unavailable, "cannot start " + spec.argv[0] + ": " + std::strerror(exec_errno));
  }
  return Spawned{pid};
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

std::filesystem::path find_executable(std::string_view name) {
  if (name.empty()) return {};
  if (name.find('/') != std::string_view::npos) {
    std::filesystem::path p{std::string(name)};
    return ::access(p.c_str(), X_OK) == 0 ? p : std::filesystem::path{};
  }
  const char* path = std::getenv("PATH");
  std::string_view dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  while (!dirs.empty()) {
    const auto colon = dirs.find(':');
    std::string dir(dirs.substr(0, colon));
    dirs = colon == std::string_view::npos ? std::string_view{} : dirs.substr(colon + 1);
    if (dir.empty()) dir = ".";
    std::filesystem::path candidate = std::filesystem::path(dir) / std::string(name);
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0)
      return candidate;
  }
  return {};
}

Result<ProcessResult> run_process(const ProcessSpec& spec) {
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return Error(ErrorKind::io, "pipe failed");
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return Error(ErrorKind::io, "pipe failed");
  }
  auto spawned = spawn(spec, out_pipe[1], err_pipe[1], /*die_with_parent=*/true);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (!spawned) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    return spawned.error();
  }
  const pid_t pid = spawned->pid;

  ProcessResult result;
  LineSplitter err_lines, out_lines;
  const auto start = std::chrono::steady_clock::now();
  bool killing = false;
  std::chrono::steady_clock::time_point kill_sent{};
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  char buf[16384];
  while (open_fds > 0) {
    const int rc = ::poll(fds, 2, 100);
    if (rc < 0 && errno != EINTR) break;
    for (int i = 0; i < 2 && rc > 0; ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
        continue;
      }
      if (i == 0 && spec.capture_stdout) {
        const std::size_t room = spec.max_stdout_bytes - std::min(spec.max_stdout_bytes, result.stdout_text.size());
        result.stdout_text.append(buf, std::min<std::size_t>(room, static_cast<std::size_t>(n)));
        if (static_cast<std::size_t>(n) > room) result.stdout_truncated = true;
      } else if (i == 0) {
        out_lines.feed(buf, static_cast<std::size_t>(n), spec.on_output_line);
      } else {
        err_lines.feed(buf, static_cast<std::size_t>(n), spec.on_output_line);
      }
    }
    const auto now = std::chrono::steady_clock::now();
    if (!killing) {
      const bool timed_out = spec.timeout.count() > 0 && now - start > spec.timeout;
      const bool cancelled = spec.cancel && spec.cancel->load();
      if (timed_out || cancelled) {
        result.timed_out = timed_out;
        result.cancelled = cancelled && !timed_out;
        ::kill(-pid, SIGTERM);
        killing = true;
        kill_sent = now;
      }
    } else if (now - kill_sent > std::chrono::seconds(3)) {
      ::kill(-pid, SIGKILL);
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) ::close(f.fd);
  out_lines.flush(spec.on_output_line);
  err_lines.flush(spec.on_output_line);

  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (killing) ::kill(-pid, SIGKILL);  // grandchildren that kept running
  result.exit_code = decode_status(status);
  return result;
}

Result<Child> Child::spawn(const ProcessSpec& spec, const std::filesystem::path& output_file) {
  const int fd = ::open(output_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return Error(ErrorKind::io, "cannot open " + output_file.string());
  auto spawned = platform::spawn(spec, fd, fd, /*die_with_parent=*/false);
  ::close(fd);
  if (!spawned) return spawned.error();
  Child c;
  c.pid_ = spawned->pid;
  return c;
}

Child::Child(Child&& o) noexcept : pid_(o.pid_), exit_code_(o.exit_code_) { o.pid_ = -1; }

Child& Child::operator=(Child&& o) noexcept {
  if (this != &o) {
    if (pid_ > 0 && !exit_code_) kill();
    pid_ = o.pid_;
    exit_code_ = o.exit_code_;
    o.pid_ = -1;
  }
  return *this;
}

Child::~Child() {
  if (pid_ > 0 && !exit_code_) kill();
}

int Child::reap(bool block) {
  if (exit_code_) return *exit_code_;
  int status = 0;
  pid_t r;
  while ((r = ::waitpid(static_cast<pid_t>(pid_), &status, block ? 0 : WNOHANG)) < 0 && errno == EINTR) {
  }
  if (r == static_cast<pid_t>(pid_)) exit_code_ = decode_status(status);
  return exit_code_ ? *exit_code_ : -1;
}

bool Child::running() { return pid_ > 0 && (reap(false), !exit_code_); }

int Child::terminate(std::chrono::milliseconds grace) {
  if (!running()) return exit_code_.value_or(-1);
  ::kill(static_cast<pid_t>(pid_), SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (running() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (running()) return kill();
  ::kill(-static_cast<pid_t>(pid_), SIGKILL);  // anything it left behind in its group
  return exit_code_.value_or(-1);
}

int Child::kill() {
  if (pid_ <= 0) return -1;
  if (!exit_code_) {
    ::kill(-static_cast<pid_t>(pid_), SIGKILL);
    ::kill(static_cast<pid_t>(pid_), SIGKILL);
  }
  return reap(true);
}

}  // namespace rayvault::platform
