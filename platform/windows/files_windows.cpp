// Durable files on Windows: FlushFileBuffers of the file; NTFS journals a rename itself.
#include <windows.h>

#include "platform/files.hpp"
#include "platform/windows/wide.hpp"

namespace rayvault::platform {

Status sync_file(const std::filesystem::path& file) {
  const HANDLE h = CreateFileW(file.wstring().c_str(), GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                               nullptr, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, nullptr);
  if (h == INVALID_HANDLE_VALUE)
    return Error(ErrorKind::io, "cannot open file " + win::narrow(file.wstring()) + " (error " + std::to_string(GetLastError()) + ")");
  const BOOL ok = FlushFileBuffers(h);
  const DWORD err = GetLastError();
  CloseHandle(h);
  if (!ok)
    return Error(ErrorKind::io,
                 "cannot write file " + win::narrow(file.wstring()) + " to the disk (error " + std::to_string(err) + ")");
  return ok_status();
}

Status sync_folder(const std::filesystem::path&) { return ok_status(); }

}  // namespace rayvault::platform
