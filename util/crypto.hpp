// Hashing primitives (SHA-256, HMAC-SHA256, constant-time compare) over libsodium; SHA-256 of
// files and streams over OpenSSL's libcrypto where the build has it (the CPU's SHA instructions).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "util/error.hpp"

namespace rayvault::util {

// Lowercase hex SHA-256 of bytes.
std::string sha256_hex(std::string_view data);

// Lowercase hex SHA-256 of a file's bytes, read in chunks; an error if it cannot be read.
Result<std::string> sha256_file_hex(const std::filesystem::path& path);

// SHA-256 over bytes given a block at a time (a download hashed as it arrives).
class Sha256Stream {
 public:
  Sha256Stream();
  ~Sha256Stream();
  Sha256Stream(const Sha256Stream&) = delete;
  Sha256Stream& operator=(const Sha256Stream&) = delete;
  void update(const void* data, std::size_t n);
  // Lowercase hex of what was given; the stream starts again empty.
  std::string finish_hex();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Lowercase hex SHA-1 of a file's bytes (FIPS 180-4). Not for security: the TTS cache key names
// a voice-cloning reference file by it, as the Python nodes do.
Result<std::string> sha1_file_hex(const std::filesystem::path& path);
std::string sha1_hex(std::string_view data);

// Lowercase hex HMAC-SHA256 with key bytes (any length) over message bytes.
std::string hmac_sha256_hex(std::string_view key, std::string_view message);

// Compares two hex strings case-insensitively in time independent of where they differ.
bool hex_equal_constant_time(std::string_view a, std::string_view b);

// Standard base64 (RFC 4648, with padding).
std::string base64(std::string_view bytes);

// Random bytes as lowercase hex (2 * n characters).
std::string random_hex(std::size_t n);

}  // namespace rayvault::util
