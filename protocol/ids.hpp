// Run and job ids: what the wire accepts, and the folder name each id gets on disk.
//
// The Python nodes accept any id of up to 128 printable characters (spaces, ':', non-ASCII), so a
// peer of theirs may send one. An id is trimmed; one holding a path separator or a control
// character, or one that is "." or "..", is refused. Folders are derived so that no accepted id
// can leave its parent folder or share a folder with another id (see id_folder_name).
#pragma once

#include <string>
#include <string_view>

#include "util/error.hpp"

namespace rayvault::protocol {

inline constexpr std::size_t kMaxIdCharacters = 128;

// The id trimmed, or an invalid_input Error naming `field` (run_id, job_id, ...): empty, over 128
// characters, not UTF-8, "." or "..", or holding '/', '\\' or a control character (C0, DEL, C1).
Result<std::string> normalize_id(std::string_view raw, std::string_view field);

// The folder name of a valid id. An id that is already a portable file name on every file system
// (lower-case letters, digits, '.', '_', '-'; not ending in '.'; not a Windows device name such as
// con or com1.txt) is its own folder name, so existing layouts (jobs/ffprobe_001/) stay. Any other
// id becomes its ASCII-safe form (other bytes as '_', at most 48) + '~' + 32 hex digits of its
// SHA-256: '~' never occurs in a plain name, and the digest tells apart ids whose safe forms are
// equal, including ids that differ only in case (which Windows and macOS would fold together).
std::string id_folder_name(std::string_view id);

}  // namespace rayvault::protocol
