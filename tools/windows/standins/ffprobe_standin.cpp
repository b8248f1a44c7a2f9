// A stand-in for ffprobe on Windows test workers (wine): it reads the file it is given and prints
// an ffprobe-shaped JSON document, so the worker's Windows child-process path runs for real.
// A file name containing "hang" starts a grandchild and waits forever (the worker's timeout must
// end both); "fail" writes to stderr and exits 3; a missing file exits 1.
#include <windows.h>

#include <cstdio>
#include <string>

namespace {

std::string utf8(const std::wstring& w) {
  if (w.empty()) return {};
  const int n = WideCharToMultiByte(CP_UTF8, 0, w.data(), static_cast<int>(w.size()), nullptr, 0, nullptr, nullptr);
  std::string s(static_cast<std::size_t>(n), '\0');
  WideCharToMultiByte(CP_UTF8, 0, w.data(), static_cast<int>(w.size()), s.data(), n, nullptr, nullptr);
  return s;
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (const char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

[[noreturn]] void hang_with_grandchild() {
  wchar_t self[MAX_PATH];
  GetModuleFileNameW(nullptr, self, MAX_PATH);
  std::wstring line = L"\"" + std::wstring(self) + L"\" --sleep-forever";
  STARTUPINFOW si{};
  si.cb = sizeof si;
  PROCESS_INFORMATION pi{};
  if (CreateProcessW(self, line.data(), nullptr, nullptr, FALSE, 0, nullptr, nullptr, &si, &pi)) {
    std::fprintf(stderr, "stand-in ffprobe: started grandchild %lu\n", pi.dwProcessId);
    std::fflush(stderr);
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
  }
  Sleep(INFINITE);
  ExitProcess(0);
}

}  // namespace

int wmain(int argc, wchar_t** argv) {
  if (argc == 2 && std::wstring(argv[1]) == L"--sleep-forever") Sleep(INFINITE);
  if (argc < 2) {
    std::fprintf(stderr, "usage: ffprobe [options] FILE\n");
    return 1;
  }
  const std::wstring path = argv[argc - 1];
  const std::string name = utf8(path);
  std::fprintf(stderr, "stand-in ffprobe: probing %s\n", name.c_str());
  if (name.find("hang") != std::string::npos) hang_with_grandchild();
  if (name.find("fail") != std::string::npos) {
    std::fprintf(stderr, "%s: Invalid data found when processing input\n", name.c_str());
    return 3;
  }
  HANDLE f = CreateFileW(path.c_str(), GENERIC_READ, FILE_SHARE_READ, nullptr, OPEN_EXISTING, 0, nullptr);
  if (f == INVALID_HANDLE_VALUE) {
    std::fprintf(stderr, "%s: No such file or directory\n", name.c_str());
    return 1;
  }
  LARGE_INTEGER size{};
  GetFileSizeEx(f, &size);
  CloseHandle(f);
  std::printf(
      "{\n  \"streams\": [],\n  \"format\": {\"filename\": \"%s\", \"nb_streams\": 0, \"format_name\": \"standin\", "
      "\"duration\": \"%.3f\", \"size\": \"%lld\"}\n}\n",
      json_escape(name).c_str(), static_cast<double>(size.QuadPart) / 1000.0, static_cast<long long>(size.QuadPart));
  return 0;
}
