// Windows child processes: CreateProcessW with a UTF-16 command line and environment, every child
// in its own job object (so a timeout or a stop ends the whole tree), output read by two threads.
#include <windows.h>

#include <algorithm>
#include <cwctype>
#include <mutex>
#include <thread>

#include "platform/process.hpp"
#include "platform/windows/wide.hpp"

namespace rayvault::platform {
namespace {

using win::narrow;
using win::widen;

// Handles made inheritable for one CreateProcessW call must not leak into a child that another
// thread starts at the same moment: spawns are serialized.
std::mutex g_spawn_mutex;

struct Handle {
  HANDLE h = nullptr;
  Handle() = default;
  explicit Handle(HANDLE x) : h(x == INVALID_HANDLE_VALUE ? nullptr : x) {}
  Handle(Handle&& o) noexcept : h(o.h) { o.h = nullptr; }
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      reset();
      h = o.h;
      o.h = nullptr;
    }
    return *this;
  }
  ~Handle() { reset(); }
  void reset() {
    if (h) ::CloseHandle(h);
    h = nullptr;
  }
  HANDLE release() {
    HANDLE x = h;
    h = nullptr;
    return x;
  }
};

std::wstring getenv_wide(const wchar_t* name) {
  const DWORD n = ::GetEnvironmentVariableW(name, nullptr, 0);
  if (n == 0) return {};
  std::wstring v(n, L'\0');
  const DWORD got = ::GetEnvironmentVariableW(name, v.data(), n);
  v.resize(got);
  return v;
}

bool is_file(const std::wstring& p) {
  const DWORD a = ::GetFileAttributesW(p.c_str());
  return a != INVALID_FILE_ATTRIBUTES && !(a & FILE_ATTRIBUTE_DIRECTORY);
}

bool has_extension(const std::wstring& name) {
  const auto slash = name.find_last_of(L"\\/");
  const auto dot = name.find_last_of(L'.');
  return dot != std::wstring::npos && (slash == std::wstring::npos || dot > slash);
}

// name, or name with each PATHEXT extension, in dir.
std::wstring probe(const std::wstring& candidate) {
  if (has_extension(candidate) && is_file(candidate)) return candidate;
  std::wstring exts = getenv_wide(L"PATHEXT");
  if (exts.empty()) exts = L".COM;.EXE;.BAT;.CMD";
  std::size_t start = 0;
  while (start <= exts.size()) {
    const auto semi = exts.find(L';', start);
    const std::wstring ext = exts.substr(start, semi == std::wstring::npos ? std::wstring::npos : semi - start);
    if (!ext.empty() && is_file(candidate + ext)) return candidate + ext;
    if (semi == std::wstring::npos) break;
    start = semi + 1;
  }
  return {};
}

std::wstring find_wide(std::string_view name) {
  const std::wstring w = widen(name);
  if (w.find_first_of(L"\\/:") != std::wstring::npos) return probe(w);
  std::wstring path = getenv_wide(L"PATH");
  std::size_t start = 0;
  while (start <= path.size()) {
    const auto semi = path.find(L';', start);
    std::wstring dir = path.substr(start, semi == std::wstring::npos ? std::wstring::npos : semi - start);
    if (!dir.empty()) {
      if (dir.back() != L'\\' && dir.back() != L'/') dir.push_back(L'\\');
      if (auto hit = probe(dir + w); !hit.empty()) return hit;
    }
    if (semi == std::wstring::npos) break;
    start = semi + 1;
  }
  return {};
}

bool is_batch(const std::wstring& exe) {
  if (exe.size() < 4) return false;
  std::wstring ext = exe.substr(exe.size() - 4);
  for (auto& c : ext) c = static_cast<wchar_t>(std::towlower(c));
  return ext == L".bat" || ext == L".cmd";
}

// The environment block: ours with spec.env applied, sorted case-insensitively as Windows expects.
std::wstring environment_block(const ProcessSpec& spec) {
  std::vector<std::wstring> entries;
  if (wchar_t* env = ::GetEnvironmentStringsW()) {
    for (const wchar_t* p = env; *p; p += std::wcslen(p) + 1) entries.emplace_back(p);
    ::FreeEnvironmentStringsW(env);
  }
  auto name_of = [](const std::wstring& e) {
    const auto eq = e.find(L'=', 1);  // entries like "=C:=C:\" start with '='
    std::wstring n = e.substr(0, eq);
    for (auto& c : n) c = static_cast<wchar_t>(std::towupper(c));
    return n;
  };
  for (const auto& [k, v] : spec.env) {
    std::wstring key = widen(k);
    for (auto& c : key) c = static_cast<wchar_t>(std::towupper(c));
    entries.erase(std::remove_if(entries.begin(), entries.end(), [&](const std::wstring& e) { return name_of(e) == key; }),
                  entries.end());
    if (v) entries.push_back(widen(k) + L"=" + widen(*v));
  }
  std::sort(entries.begin(), entries.end(), [&](const std::wstring& a, const std::wstring& b) { return name_of(a) < name_of(b); });
  std::wstring block;
  for (const auto& e : entries) {
    block += e;
    block.push_back(L'\0');
  }
  block.push_back(L'\0');
  return block;
}

struct Started {
  Handle process;
  Handle job;
  DWORD pid = 0;
};

// Starts spec.argv suspended, puts it in a new kill-on-close job object, then lets it run.
Result<Started> start(const ProcessSpec& spec, HANDLE out, HANDLE err) {
  if (spec.argv.empty()) return Error(ErrorKind::internal, "spawn: empty argv");
  const std::wstring exe = find_wide(spec.argv[0]);
  if (exe.empty()) return Error(ErrorKind::unavailable, "program not found: " + spec.argv[0]);
  // A batch file runs through cmd.exe, which reads its command line by other rules than the C
  // runtime: every argument is quoted for both (quote_batch_argument), or refused.
  const bool batch = is_batch(exe);
  std::string command;
  for (std::size_t i = 0; i < spec.argv.size(); ++i) {
    if (i) command.push_back(' ');
    const std::string& arg = i == 0 ? narrow(exe) : spec.argv[i];
    if (!batch) {
      command += quote_windows_argument(arg);
      continue;
    }
    auto quoted = quote_batch_argument(arg);
    if (!quoted) return Error(ErrorKind::invalid_input, quoted.error().message + " (for " + spec.argv[0] + ")");
    command += *quoted;
  }
  std::wstring app = exe;
  std::wstring line = widen(command);
  if (batch) {
    app = getenv_wide(L"ComSpec");
    if (app.empty()) app = L"C:\\Windows\\System32\\cmd.exe";
    line = L"cmd.exe /d /s /c \"" + line + L"\"";
  }
  std::wstring env = environment_block(spec);
  const std::wstring cwd = spec.cwd.empty() ? std::wstring() : spec.cwd.wstring();

  // Not inheritable until the spawn lock is held, so no other child started meanwhile inherits it.
  const std::wstring input = spec.stdin_file.empty() ? std::wstring(L"NUL") : spec.stdin_file.wstring();
  Handle nul(::CreateFileW(input.c_str(), GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr,
                           OPEN_EXISTING, 0, nullptr));
  if (!spec.stdin_file.empty() && nul.h == nullptr)
    return Error(ErrorKind::io, "cannot open " + narrow(spec.stdin_file.wstring()));
  Handle job(::CreateJobObjectW(nullptr, nullptr));
  if (!job.h) return Error(ErrorKind::io, "CreateJobObject failed");
  JOBOBJECT_EXTENDED_LIMIT_INFORMATION limits{};
  limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
  ::SetInformationJobObject(job.h, JobObjectExtendedLimitInformation, &limits, sizeof limits);

  STARTUPINFOW si{};
  si.cb = sizeof si;
  si.dwFlags = STARTF_USESTDHANDLES;
  si.hStdInput = nul.h;
  si.hStdOutput = out;
  si.hStdError = err;
  PROCESS_INFORMATION pi{};
  BOOL ok = FALSE;
  {
    std::lock_guard lock(g_spawn_mutex);
    ::SetHandleInformation(out, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT);
    ::SetHandleInformation(err, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT);
    if (nul.h) ::SetHandleInformation(nul.h, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT);
    ok = ::CreateProcessW(app.c_str(), line.data(), nullptr, nullptr, TRUE,
                          CREATE_UNICODE_ENVIRONMENT | CREATE_SUSPENDED | CREATE_NEW_PROCESS_GROUP | CREATE_NO_WINDOW,
                          env.data(), cwd.empty() ? nullptr : cwd.c_str(), &si, &pi);
    ::SetHandleInformation(out, HANDLE_FLAG_INHERIT, 0);
    ::SetHandleInformation(err, HANDLE_FLAG_INHERIT, 0);
    if (nul.h) ::SetHandleInformation(nul.h, HANDLE_FLAG_INHERIT, 0);
  }
  if (!ok) return Error(ErrorKind::unavailable, "cannot start " + spec.argv[0] + " (error " + std::to_string(::GetLastError()) + ")");
  Started s;
  s.process = Handle(pi.hProcess);
  s.pid = pi.dwProcessId;
  ::AssignProcessToJobObject(job.h, pi.hProcess);
  ::ResumeThread(pi.hThread);
  ::CloseHandle(pi.hThread);
  s.job = std::move(job);
  return s;
}

int exit_code_of(HANDLE process) {
  DWORD code = 0;
  ::GetExitCodeProcess(process, &code);
  return static_cast<int>(code);
}

// Reads a pipe to its end, in lines (or raw into `captured`).
void read_pipe(HANDLE pipe, std::string* captured, std::size_t max_bytes, bool* truncated,
               const std::function<void(std::string_view)>& sink, std::mutex& sink_mutex) {
  std::string pending;
  char buf[16384];
  DWORD n = 0;
  auto emit = [&](std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::lock_guard lock(sink_mutex);
    if (sink) sink(line);
  };
  while (::ReadFile(pipe, buf, sizeof buf, &n, nullptr) && n > 0) {
    if (captured) {
      const std::size_t room = max_bytes - std::min(max_bytes, captured->size());
      captured->append(buf, std::min<std::size_t>(room, n));
      if (n > room) *truncated = true;
      continue;
    }
    pending.append(buf, n);
    std::size_t start = 0;
    for (std::size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1)
      emit(std::string_view(pending).substr(start, nl - start));
    pending.erase(0, start);
    if (pending.size() > 64 * 1024) {
      emit(pending);
      pending.clear();
    }
  }
  if (!pending.empty()) emit(pending);
}

}  // namespace

std::filesystem::path find_executable(std::string_view name) {
  const std::wstring hit = find_wide(name);
  return hit.empty() ? std::filesystem::path() : std::filesystem::path(hit);
}

Result<ProcessResult> run_process(const ProcessSpec& spec) {
  SECURITY_ATTRIBUTES sa{sizeof(sa), nullptr, FALSE};
  HANDLE out_r = nullptr, out_w = nullptr, err_r = nullptr, err_w = nullptr;
  if (!::CreatePipe(&out_r, &out_w, &sa, 0)) return Error(ErrorKind::io, "CreatePipe failed");
  if (!::CreatePipe(&err_r, &err_w, &sa, 0)) {
    ::CloseHandle(out_r);
    ::CloseHandle(out_w);
    return Error(ErrorKind::io, "CreatePipe failed");
  }
  Handle out_read(out_r), out_write(out_w), err_read(err_r), err_write(err_w);
  auto started = start(spec, out_write.h, err_write.h);
  out_write.reset();  // the child holds its own copies; EOF comes when every copy is closed
  err_write.reset();
  if (!started) return started.error();

  ProcessResult result;
  std::mutex sink_mutex;
  std::thread out_thread(read_pipe, out_read.h, spec.capture_stdout ? &result.stdout_text : nullptr,
                         spec.max_stdout_bytes, &result.stdout_truncated, std::cref(spec.on_output_line),
                         std::ref(sink_mutex));
  std::thread err_thread(read_pipe, err_read.h, nullptr, 0, nullptr, std::cref(spec.on_output_line),
                         std::ref(sink_mutex));
  const auto begin = std::chrono::steady_clock::now();
  bool killed = false;
  while (::WaitForSingleObject(started->process.h, 100) == WAIT_TIMEOUT) {
    const bool timed_out = spec.timeout.count() > 0 && std::chrono::steady_clock::now() - begin > spec.timeout;
    const bool cancelled = spec.cancel && spec.cancel->load();
    if ((timed_out || cancelled) && !killed) {
      result.timed_out = timed_out;
      result.cancelled = cancelled && !timed_out;
      ::TerminateJobObject(started->job.h, 1);  // the whole tree
      killed = true;
    }
  }
  result.exit_code = exit_code_of(started->process.h);
  // Descendants that outlive the child would keep the pipes open: the job ends them too.
  ::TerminateJobObject(started->job.h, 1);
  out_thread.join();
  err_thread.join();
  return result;
}

Result<Child> Child::spawn(const ProcessSpec& spec, const std::filesystem::path& output_file) {
  SECURITY_ATTRIBUTES sa{sizeof(sa), nullptr, FALSE};
  Handle file(::CreateFileW(output_file.wstring().c_str(), FILE_APPEND_DATA, FILE_SHARE_READ | FILE_SHARE_WRITE, &sa,
                            OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, nullptr));
  if (!file.h) return Error(ErrorKind::io, "cannot open the output file");
  auto started = start(spec, file.h, file.h);
  if (!started) return started.error();
  Child c;
  c.pid_ = static_cast<long>(started->pid);
  c.process_ = started->process.release();
  c.job_ = started->job.release();
  return c;
}

Child::Child(Child&& o) noexcept : pid_(o.pid_), exit_code_(o.exit_code_), process_(o.process_), job_(o.job_) {
  o.pid_ = -1;
  o.process_ = o.job_ = nullptr;
}

Child& Child::operator=(Child&& o) noexcept {
  if (this != &o) {
    if (process_ && !exit_code_) kill();
    if (process_) ::CloseHandle(process_);
    if (job_) ::CloseHandle(job_);
    pid_ = o.pid_;
    exit_code_ = o.exit_code_;
    process_ = o.process_;
    job_ = o.job_;
    o.pid_ = -1;
    o.process_ = o.job_ = nullptr;
  }
  return *this;
}

Child::~Child() {
  if (process_ && !exit_code_) kill();
  if (process_) ::CloseHandle(process_);
  if (job_) ::CloseHandle(job_);
}

int Child::reap(bool block) {
  if (exit_code_) return *exit_code_;
  if (!process_) return -1;
  if (::WaitForSingleObject(process_, block ? INFINITE : 0) == WAIT_OBJECT_0) exit_code_ = exit_code_of(process_);
  return exit_code_ ? *exit_code_ : -1;
}

bool Child::running() { return process_ && (reap(false), !exit_code_); }

int Child::terminate(std::chrono::milliseconds grace) {
  if (!running()) return exit_code_.value_or(-1);
  // The child was started in its own process group: CTRL_BREAK reaches it alone.
  ::GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT, static_cast<DWORD>(pid_));
  if (::WaitForSingleObject(process_, static_cast<DWORD>(grace.count())) == WAIT_OBJECT_0) {
    exit_code_ = exit_code_of(process_);
    ::TerminateJobObject(job_, 1);
    return *exit_code_;
  }
  return kill();
}

int Child::kill() {
  if (!process_) return -1;
  if (!exit_code_) {
    ::TerminateJobObject(job_, 1);
    ::TerminateProcess(process_, 1);
  }
  return reap(true);
}

}  // namespace rayvault::platform
