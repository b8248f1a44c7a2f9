// File helpers with no project knowledge: atomic writes, bounded reads, containment checks.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "util/error.hpp"

namespace rayvault::util {

namespace fs = std::filesystem;

// A path's text as UTF-8 (on Windows, std::filesystem's narrow text is the ANSI code page, not
// UTF-8, so every path that reaches JSON, a log or a message goes through here).
std::string u8(const fs::path& p);

// A path from UTF-8 text (payload fields, nodes.json, flags).
fs::path path_from_utf8(std::string_view text);

// Writes data to a temporary file beside path, flushes it and renames it over path, so readers
// see either the old or the whole new content. Creates parent folders. Error on any I/O failure.
Status write_file_atomic(const fs::path& path, std::string_view data);

// Reads a whole file of at most max_bytes; an error if missing, unreadable or larger.
Result<std::string> read_file(const fs::path& path, std::uintmax_t max_bytes = 64u << 20);

// True when name is one plain path component: non-empty, at most 128 bytes, only
// [A-Za-z0-9._-], and not "." or "..". Used for ids that become folder names.
bool is_safe_component(std::string_view name);

// Resolves `relative` under `root` lexically and through existing symlinks; empty path when the
// result would leave root, when relative is absolute, or when it is empty.
fs::path resolve_within(const fs::path& root, std::string_view relative);

// True when `path` (made absolute and normalised, symlinks resolved where they exist) is root or
// lies below it.
bool is_within(const fs::path& root, const fs::path& path);

}  // namespace rayvault::util
