// System facts on Linux and macOS.
#include <pwd.h>
#include <signal.h>
#include <sys/utsname.h>
#include <unistd.h>
#if defined(__APPLE__)
#include <mach-o/dyld.h>
#include <sys/sysctl.h>
#endif

#include <cctype>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "platform/system_info.hpp"
#include "util/strings.hpp"

namespace rayvault::platform {

std::string getenv_string(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::vector<std::string> utf8_arguments(int argc, char** argv) { return {argv, argv + argc}; }

void ignore_broken_pipe() { ::signal(SIGPIPE, SIG_IGN); }

void unset_env(const char* name) { ::unsetenv(name); }

std::string home_folder() {
  std::string home = getenv_string("HOME");
  if (!home.empty()) return home;
  const passwd* pw = ::getpwuid(::getuid());
  return pw && pw->pw_dir ? std::string(pw->pw_dir) : std::string();
}

std::string current_executable() {
#if defined(__APPLE__)
  std::uint32_t size = 0;
  ::_NSGetExecutablePath(nullptr, &size);
  std::string path(size, '\0');
  if (size == 0 || ::_NSGetExecutablePath(path.data(), &size) != 0) return {};
  path.resize(path.find('\0') == std::string::npos ? path.size() : path.find('\0'));
  char resolved[PATH_MAX];
  return ::realpath(path.c_str(), resolved) ? std::string(resolved) : path;
#else
  std::string buf(4096, '\0');
  const ssize_t n = ::readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  if (n <= 0) return {};
  buf.resize(static_cast<std::size_t>(n));
  return buf;
#endif
}

long process_id() { return static_cast<long>(::getpid()); }

std::string os_name() {
  utsname u{};
  if (::uname(&u) != 0) return "linux";
  return util::ascii_lower(u.sysname);
}

std::string platform_string() {
  utsname u{};
  if (::uname(&u) != 0) return "unknown";
  return std::string(u.sysname) + "-" + u.release + "-" + u.machine;
}

std::string cpu_model() {
#if defined(__APPLE__)
  char buf[256];
  size_t len = sizeof buf;
  if (::sysctlbyname("machdep.cpu.brand_string", buf, &len, nullptr, 0) == 0) return std::string(buf);
#else
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0 || line.rfind("Model", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) {
        std::string v = line.substr(colon + 1);
        while (!v.empty() && std::isspace(static_cast<unsigned char>(v.front()))) v.erase(0, 1);
        if (!v.empty()) return v;
      }
    }
  }
#endif
  utsname u{};
  return ::uname(&u) == 0 ? std::string(u.machine) : std::string("unknown");
}

std::uint64_t total_ram_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_size = ::sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page_size <= 0) return 0;
  return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page_size);
}

std::string hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

void on_shutdown_signal(std::function<void()> on_signal, std::function<void()> on_reload) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  if (on_reload) sigaddset(&set, SIGHUP);
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  std::thread([set, cb = std::move(on_signal), reload = std::move(on_reload)]() mutable {
    int sig = 0;
    while (true) {
      ::sigwait(&set, &sig);
      if (sig != SIGHUP) break;
      reload();
    }
    cb();
    // A second stop request while the first stop is still under way ends the process at once.
    while (true) {
      ::sigwait(&set, &sig);
      if (sig != SIGHUP) std::_Exit(128 + sig);
    }
  }).detach();
}

bool stdout_is_terminal() { return ::isatty(STDOUT_FILENO) == 1; }
bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

}  // namespace rayvault::platform
