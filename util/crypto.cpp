// libsodium-backed hashing; sodium_init is called once on first use.
#include "util/crypto.hpp"

#include "util/files.hpp"

#include <sodium.h>

#include <array>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <vector>

namespace rayvault::util {
namespace {

void ensure_sodium() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
  });
}

std::string to_hex(const unsigned char* bytes, std::size_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = digits[bytes[i] >> 4];
    out[2 * i + 1] = digits[bytes[i] & 0x0f];
  }
  return out;
}

}  // namespace

std::string sha256_hex(std::string_view data) {
  ensure_sodium();
  std::array<unsigned char, crypto_hash_sha256_BYTES> digest{};
  crypto_hash_sha256(digest.data(), reinterpret_cast<const unsigned char*>(data.data()), data.size());
  return to_hex(digest.data(), digest.size());
}

Result<std::string> sha256_file_hex(const std::filesystem::path& path) {
  ensure_sodium();
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error(ErrorKind::io, "cannot read file: " + u8(path.filename()));
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  std::vector<char> buf(1 << 16);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto got = in.gcount();
    if (got > 0) crypto_hash_sha256_update(&st, reinterpret_cast<const unsigned char*>(buf.data()),
                                           static_cast<unsigned long long>(got));
  }
  if (in.bad()) return Error(ErrorKind::io, "read failed: " + u8(path.filename()));
  std::array<unsigned char, crypto_hash_sha256_BYTES> digest{};
  crypto_hash_sha256_final(&st, digest.data());
  return to_hex(digest.data(), digest.size());
}

std::string hmac_sha256_hex(std::string_view key, std::string_view message) {
  ensure_sodium();
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(message.data()),
                                message.size());
  std::array<unsigned char, crypto_auth_hmacsha256_BYTES> mac{};
  crypto_auth_hmacsha256_final(&st, mac.data());
  return to_hex(mac.data(), mac.size());
}

bool hex_equal_constant_time(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](unsigned char c) -> unsigned { return (c >= 'A' && c <= 'Z') ? c + 32u : c; };
    diff |= lower(static_cast<unsigned char>(a[i])) ^ lower(static_cast<unsigned char>(b[i]));
  }
  return diff == 0;
}

std::string random_hex(std::size_t n) {
  ensure_sodium();
  std::vector<unsigned char> bytes(n);
  randombytes_buf(bytes.data(), n);
  return to_hex(bytes.data(), n);
}

}  // namespace rayvault::util
