// Durable files: what a rename makes visible must survive a power cut, so its bytes are on the
// disk before the rename and the folder's new entry after it.
#pragma once

#include <filesystem>

#include "util/error.hpp"

namespace rayvault::platform {

// Writes a file's data to the disk (fsync; FlushFileBuffers on Windows). Error (io) naming why.
Status sync_file(const std::filesystem::path& file);

// Writes a folder's entries (a file renamed into it) to the disk. Nothing to do on Windows, where
// a folder cannot be opened for that; Error (io) elsewhere when it fails.
Status sync_folder(const std::filesystem::path& dir);

}  // namespace rayvault::platform
