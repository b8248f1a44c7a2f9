// Facts about the machine: OS, CPU, memory, host name, desktop session, process id.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace rayvault::platform {

// "linux", "darwin" or "windows".
std::string os_name();

// Python's platform.platform()-like text, e.g. "Linux-6.1.0-18-amd64-x86_64".
std::string platform_string();

// CPU model name, or the architecture when unknown.
std::string cpu_model();

// Physical memory in bytes (0 when unknown).
std::uint64_t total_ram_bytes();

std::string hostname();

// An NVIDIA GPU as `nvidia-smi --query-gpu=index,name,memory.total,driver_version
// --format=csv,noheader,nounits` lists it.
struct GpuInfo {
  std::string index;  // what CUDA_VISIBLE_DEVICES names it by (with CUDA_DEVICE_ORDER=PCI_BUS_ID)
  std::string model;
  std::string driver;
  double memory_mib = 0;
};
std::vector<GpuInfo> parse_nvidia_smi_gpus(const std::string& csv);
// The GPUs this machine has; empty when nvidia-smi is missing, fails or lists none.
std::vector<GpuInfo> nvidia_gpus();

// Whether a user's desktop session is available to programs this process starts, and how that
// was decided (or why not). Windows: not session 0, and SESSIONNAME names a console or RDP
// session, or `query user` lists this user as active. macOS: this user owns the console. Linux:
// WAYLAND_DISPLAY's compositor accepts a connection, or the X server on DISPLAY accepts one made
// with the user's Xauthority cookie. RAYVAULT_UI_SESSION=0/1 overrides the detection.
struct UiSession {
  bool active = false;
  std::string detail;
};
UiSession ui_session();
bool ui_session_active();

// True when `query user` output (Windows) lists `user` with the state Active.
bool query_user_shows_active(std::string_view output, std::string_view user);

// The command that saves a picture of the whole desktop as PNG (ffmpeg x11grab on Linux,
// screencapture on macOS, ffmpeg gdigrab on Windows); empty when there is no display to grab.
std::vector<std::string> screenshot_command(const std::string& out_png);

// Calls on_signal once, from a dedicated thread, when the process is asked to stop (SIGINT,
// SIGTERM; Ctrl-C, Ctrl-Break and service stop on Windows); a second request while that stop is
// under way ends the process at once. on_reload, when given, is called from the same thread on
// each SIGHUP (POSIX; Windows has no such signal: a service there is restarted instead). Call
// before starting other threads.
void on_shutdown_signal(std::function<void()> on_signal, std::function<void()> on_reload = {});

// True when standard output (standard error) is a terminal, a person reading it, rather than a
// pipe or a file.
bool stdout_is_terminal();
bool stderr_is_terminal();

// The command line as UTF-8 strings, argv[0] first (on Windows from the UTF-16 command line,
// since argv there is in the ANSI code page).
std::vector<std::string> utf8_arguments(int argc, char** argv);

// A write to a connection the peer has closed fails with an error instead of ending the process
// (SIGPIPE on POSIX; nothing to do on Windows). Call once at start.
void ignore_broken_pipe();

// This process's id.
long process_id();

// Reads an environment variable; empty when unset.
std::string getenv_string(const char* name);

// Removes a variable from this process's environment (and so from every child's).
void unset_env(const char* name);

// The user's home folder as UTF-8 (HOME, else the password database; on Windows USERPROFILE, else
// HOMEDRIVE + HOMEPATH), as Python's os.path.expanduser finds it; empty when unknown.
std::string home_folder();

// The full path of the running program as UTF-8 (for a worker that starts itself elsewhere, such
// as inside a Slurm batch job); empty when the system does not say.
std::string current_executable();

}  // namespace rayvault::platform
