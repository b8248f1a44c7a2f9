// Durable files on POSIX systems: fsync of the file, and of its folder after a rename.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "platform/files.hpp"

namespace rayvault::platform {
namespace {

Status sync_path(const std::filesystem::path& path, int flags, const char* what) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return Error(ErrorKind::io, std::string("cannot open ") + what + " " + path.string() + ": " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return Error(ErrorKind::io, std::string("cannot write ") + what + " " + path.string() + " to the disk: " + std::strerror(err));
  return ok_status();
}

}  // namespace

Status sync_file(const std::filesystem::path& file) { return sync_path(file, O_RDONLY, "file"); }

Status sync_folder(const std::filesystem::path& dir) { return sync_path(dir, O_RDONLY | O_DIRECTORY, "folder"); }

}  // namespace rayvault::platform
