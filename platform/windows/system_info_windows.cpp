// System facts on Windows: registry, memory status, session and console control.
#include <windows.h>
#include <shellapi.h>

#include <atomic>
#include <cwctype>

#include "platform/process.hpp"
#include "platform/system_info.hpp"
#include "platform/windows/wide.hpp"
#include "util/strings.hpp"

namespace rayvault::platform {
namespace {

using win::narrow;
using win::widen;

std::function<void()>& shutdown_callback() {
  static std::function<void()> cb;
  return cb;
}

BOOL WINAPI on_console_event(DWORD event) {
  switch (event) {
    case CTRL_C_EVENT:
    case CTRL_BREAK_EVENT:
    case CTRL_CLOSE_EVENT:
    case CTRL_LOGOFF_EVENT:
    case CTRL_SHUTDOWN_EVENT: {
      static std::atomic<bool> once{false};
      if (once.exchange(true)) ::ExitProcess(130);  // a second event while stopping ends it at once
      if (shutdown_callback()) shutdown_callback()();
      return TRUE;
    }
    default:
      return FALSE;
  }
}


}  // namespace

std::string getenv_string(const char* name) {
  const std::wstring w = widen(name);
  const DWORD n = ::GetEnvironmentVariableW(w.c_str(), nullptr, 0);
  if (n == 0) return {};
  std::wstring v(n, L'\0');
  v.resize(::GetEnvironmentVariableW(w.c_str(), v.data(), n));
  return narrow(v);
}

void ignore_broken_pipe() {}

void unset_env(const char* name) { ::SetEnvironmentVariableW(widen(name).c_str(), nullptr); }

std::string home_folder() {
  std::string home = getenv_string("USERPROFILE");
  if (home.empty()) home = getenv_string("HOMEDRIVE") + getenv_string("HOMEPATH");
  return home;
}

std::string current_executable() {
  std::wstring buf(32768, L'\0');
  const DWORD n = ::GetModuleFileNameW(nullptr, buf.data(), static_cast<DWORD>(buf.size()));
  if (n == 0 || n >= buf.size()) return {};
  buf.resize(n);
  return narrow(buf);
}

std::vector<std::string> utf8_arguments(int argc, char** argv) {
  int n = 0;
  LPWSTR* wargs = ::CommandLineToArgvW(::GetCommandLineW(), &n);
  if (!wargs) return {argv, argv + argc};
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(narrow(wargs[i]));
  ::LocalFree(wargs);
  return out;
}

long process_id() { return static_cast<long>(::GetCurrentProcessId()); }

std::string os_name() { return "windows"; }

std::string platform_string() {
  // RtlGetVersion reports the true version (GetVersionEx lies to unmanifested programs).
  OSVERSIONINFOW v{};
  v.dwOSVersionInfoSize = sizeof v;
  using RtlGetVersionFn = LONG(WINAPI*)(OSVERSIONINFOW*);
  if (HMODULE ntdll = ::GetModuleHandleW(L"ntdll.dll")) {
    if (auto fn = reinterpret_cast<RtlGetVersionFn>(reinterpret_cast<void*>(::GetProcAddress(ntdll, "RtlGetVersion"))))
      fn(&v);
  }
  return "Windows-" + std::to_string(v.dwMajorVersion) + "." + std::to_string(v.dwMinorVersion) + "." +
         std::to_string(v.dwBuildNumber) + "-AMD64";
}

std::string cpu_model() {
  wchar_t buf[256];
  DWORD size = sizeof buf;
  if (::RegGetValueW(HKEY_LOCAL_MACHINE, L"HARDWARE\\DESCRIPTION\\System\\CentralProcessor\\0", L"ProcessorNameString",
                     RRF_RT_REG_SZ, nullptr, buf, &size) == ERROR_SUCCESS) {
    std::string name = narrow(buf);
    while (!name.empty() && name.back() == ' ') name.pop_back();
    if (!name.empty()) return name;
  }
  const std::string id = getenv_string("PROCESSOR_IDENTIFIER");
  return id.empty() ? "unknown" : id;
}

std::uint64_t total_ram_bytes() {
  MEMORYSTATUSEX m{};
  m.dwLength = sizeof m;
  return ::GlobalMemoryStatusEx(&m) ? m.ullTotalPhys : 0;
}

std::string hostname() {
  wchar_t buf[256];
  DWORD n = 256;
  if (::GetComputerNameExW(ComputerNameDnsHostname, buf, &n)) return narrow(std::wstring_view(buf, n));
  const std::string env = getenv_string("COMPUTERNAME");
  return env.empty() ? "windows" : env;
}

UiSession ui_session() {
  const std::string forced = getenv_string("RAYVAULT_UI_SESSION");
  if (!forced.empty()) return {forced == "1" || forced == "true" || forced == "yes", "RAYVAULT_UI_SESSION=" + forced};
  // Session 0 is where services run: it has no desktop.
  DWORD session = 0;
  if (::ProcessIdToSessionId(::GetCurrentProcessId(), &session) && session == 0)
    return {false, "running in session 0 (a service): no desktop"};
  // An interactive logon sets SESSIONNAME (Console, RDP-Tcp#N).
  const std::string name = util::ascii_lower(getenv_string("SESSIONNAME"));
  if (name == "console" || name.rfind("rdp-", 0) == 0) return {true, "session " + std::to_string(session) + " (" + name + ")"};
  // Otherwise ask `query user` whether this user has an active session.
  ProcessSpec spec;
  spec.argv = {"query", "user"};
  spec.timeout = std::chrono::seconds(5);
  auto res = run_process(spec);
  if (!res || res->exit_code != 0) return {false, "no SESSIONNAME and `query user` gave no answer"};
  const std::string user = getenv_string("USERNAME");
  if (query_user_shows_active(res->stdout_text, user)) return {true, "`query user` lists " + user + " as active"};
  return {false, "`query user` lists no active session of this user"};
}

bool ui_session_active() { return ui_session().active; }

std::vector<std::string> screenshot_command(const std::string& out_png) {
  return {"ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y", "-f", "gdigrab", "-i", "desktop", "-frames:v", "1", out_png};
}


void on_shutdown_signal(std::function<void()> on_signal, std::function<void()> /*on_reload: no SIGHUP here*/) {
  shutdown_callback() = std::move(on_signal);
  ::SetConsoleCtrlHandler(on_console_event, TRUE);
}

bool stdout_is_terminal() {
  DWORD mode = 0;
  return ::GetConsoleMode(::GetStdHandle(STD_OUTPUT_HANDLE), &mode) != 0;
}

bool stderr_is_terminal() {
  DWORD mode = 0;
  return ::GetConsoleMode(::GetStdHandle(STD_ERROR_HANDLE), &mode) != 0;
}

}  // namespace rayvault::platform
