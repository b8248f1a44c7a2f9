// Atomic file replacement and path containment, written once for worker and controller alike.
#include "util/files.hpp"

#include <fstream>
#include <system_error>

#include "util/crypto.hpp"

namespace rayvault::util {

std::string u8(const fs::path& p) {
  const std::u8string s = p.u8string();
  return std::string(s.begin(), s.end());
}

fs::path path_from_utf8(std::string_view text) { return fs::path(std::u8string(text.begin(), text.end())); }

Status write_file_atomic(const fs::path& path, std::string_view data) {
  std::error_code ec;
  if (path.has_parent_path()) fs::create_directories(path.parent_path(), ec);
  if (ec) return Error(ErrorKind::io, "cannot create folder for " + u8(path.filename()) + ": " + ec.message());
  fs::path tmp = path;
  tmp += ".tmp-" + random_hex(6);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return Error(ErrorKind::io, "cannot write " + u8(path.filename()));
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    out.flush();
    if (!out) {
      out.close();
      fs::remove(tmp, ec);
      return Error(ErrorKind::io, "short write to " + u8(path.filename()));
    }
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    return Error(ErrorKind::io, "cannot replace " + u8(path.filename()) + ": " + ec.message());
  }
  return ok_status();
}

Result<std::string> read_file(const fs::path& path, std::uintmax_t max_bytes) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) return Error(ErrorKind::not_found, "cannot read " + u8(path) + ": " + ec.message());
  if (size > max_bytes) return Error(ErrorKind::too_large, "file too large: " + u8(path));
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error(ErrorKind::io, "cannot open " + u8(path));
  std::string data(static_cast<std::size_t>(size), '\0');
  in.read(data.data(), static_cast<std::streamsize>(size));
  if (in.gcount() != static_cast<std::streamsize>(size)) return Error(ErrorKind::io, "short read: " + u8(path));
  return data;
}

bool is_safe_component(std::string_view name) {
  if (name.empty() || name.size() > 128 || name == "." || name == "..") return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool is_within(const fs::path& root, const fs::path& path) {
  std::error_code ec;
  const fs::path r = fs::weakly_canonical(fs::absolute(root, ec), ec);
  if (ec) return false;
  const fs::path p = fs::weakly_canonical(fs::absolute(path, ec), ec);
  if (ec) return false;
  auto ri = r.begin();
  auto pi = p.begin();
  for (; ri != r.end(); ++ri, ++pi) {
    if (ri->empty()) continue;  // trailing separator
    if (pi == p.end() || *ri != *pi) return false;
  }
  return true;
}

fs::path resolve_within(const fs::path& root, std::string_view relative) {
  if (relative.empty() || relative.find('\0') != std::string_view::npos) return {};
  const fs::path rel = path_from_utf8(relative);
  if (rel.is_absolute() || rel.has_root_name() || rel.has_root_directory()) return {};
  const fs::path candidate = (root / rel).lexically_normal();
  if (!is_within(root, candidate)) return {};
  return candidate;
}

}  // namespace rayvault::util
