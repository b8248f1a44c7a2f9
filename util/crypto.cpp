// libsodium-backed hashing (sodium_init is called once on first use); SHA-256 streams through
// OpenSSL's EVP where RAYVAULT_OPENSSL_SHA256 says the build links it.
#include "util/crypto.hpp"

#include "util/files.hpp"

#include <sodium.h>
#if defined(RAYVAULT_OPENSSL_SHA256)
#include <openssl/crypto.h>
#include <openssl/evp.h>
#endif

#include <algorithm>
#include <array>
#include <cstdint>
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

#if defined(RAYVAULT_OPENSSL_SHA256)
// SHA-256 fetched once (OpenSSL 3 looks an algorithm up again at every init given EVP_sha256()).
const EVP_MD* sha256_md() {
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  if (md) return md;
#endif
  return EVP_sha256();
}

// SHA-256 of a + b through a context kept by the thread (no allocation a call): the hot path of
// every signed request (inputs_hash, HMAC).
void sha256_parts(unsigned char out[32], std::string_view a, std::string_view b) {
  thread_local struct Ctx {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~Ctx() { EVP_MD_CTX_free(ctx); }
  } holder;
  unsigned int len = 0;
  if (!holder.ctx || EVP_DigestInit_ex(holder.ctx, sha256_md(), nullptr) != 1 ||
      EVP_DigestUpdate(holder.ctx, a.data(), a.size()) != 1 || EVP_DigestUpdate(holder.ctx, b.data(), b.size()) != 1 ||
      EVP_DigestFinal_ex(holder.ctx, out, &len) != 1 || len != 32)
    throw std::runtime_error("OpenSSL SHA-256 failed");
}
#endif

}  // namespace

std::string sha256_hex(std::string_view data) {
#if defined(RAYVAULT_OPENSSL_SHA256)
  std::array<unsigned char, 32> digest{};
  sha256_parts(digest.data(), data, {});
#else
  ensure_sodium();
  std::array<unsigned char, crypto_hash_sha256_BYTES> digest{};
  crypto_hash_sha256(digest.data(), reinterpret_cast<const unsigned char*>(data.data()), data.size());
#endif
  return to_hex(digest.data(), digest.size());
}

#if defined(RAYVAULT_OPENSSL_SHA256)
struct Sha256Stream::Impl {
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx{EVP_MD_CTX_new(), EVP_MD_CTX_free};
  Impl() { start(); }
  void start() {
    if (!ctx || EVP_DigestInit_ex(ctx.get(), sha256_md(), nullptr) != 1) throw std::runtime_error("OpenSSL SHA-256 unavailable");
  }
  void update(const void* data, std::size_t n) {
    if (EVP_DigestUpdate(ctx.get(), data, n) != 1) throw std::runtime_error("OpenSSL SHA-256 failed");
  }
  std::string finish() {
    std::array<unsigned char, 32> digest{};
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx.get(), digest.data(), &len) != 1 || len != digest.size())
      throw std::runtime_error("OpenSSL SHA-256 failed");
    start();
    return to_hex(digest.data(), len);
  }
};
#else
struct Sha256Stream::Impl {
  crypto_hash_sha256_state st;
  Impl() {
    ensure_sodium();
    crypto_hash_sha256_init(&st);
  }
  void update(const void* data, std::size_t n) {
    crypto_hash_sha256_update(&st, static_cast<const unsigned char*>(data), static_cast<unsigned long long>(n));
  }
  std::string finish() {
    std::array<unsigned char, crypto_hash_sha256_BYTES> digest{};
    crypto_hash_sha256_final(&st, digest.data());
    crypto_hash_sha256_init(&st);
    return to_hex(digest.data(), digest.size());
  }
};
#endif

Sha256Stream::Sha256Stream() : impl_(std::make_unique<Impl>()) {}
Sha256Stream::~Sha256Stream() = default;
void Sha256Stream::update(const void* data, std::size_t n) { impl_->update(data, n); }
std::string Sha256Stream::finish_hex() { return impl_->finish(); }

Result<std::string> sha256_file_hex(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error(ErrorKind::io, "cannot read file: " + u8(path.filename()));
  Sha256Stream sha;
  std::vector<char> buf(1 << 18);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (const auto got = in.gcount(); got > 0) sha.update(buf.data(), static_cast<std::size_t>(got));
  }
  if (in.bad()) return Error(ErrorKind::io, "read failed: " + u8(path.filename()));
  return sha.finish_hex();
}

namespace {

// SHA-1 over a stream of blocks (libsodium has none).
class Sha1 {
 public:
  void update(const unsigned char* data, std::size_t n) {
    total_ += n;
    while (n > 0) {
      const std::size_t take = std::min(n, block_.size() - used_);
      std::copy(data, data + take, block_.begin() + static_cast<std::ptrdiff_t>(used_));
      used_ += take;
      data += take;
      n -= take;
      if (used_ == block_.size()) {
        compress();
        used_ = 0;
      }
    }
  }
  std::array<unsigned char, 20> finish() {
    const std::uint64_t bits = total_ * 8;
    const unsigned char one = 0x80;
    update(&one, 1);
    const unsigned char zero = 0;
    while (used_ != 56) update(&zero, 1);
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(bits >> (56 - 8 * i));
    update(len, 8);
    std::array<unsigned char, 20> out{};
    for (int i = 0; i < 20; ++i) out[static_cast<std::size_t>(i)] = static_cast<unsigned char>(h_[i / 4] >> (24 - 8 * (i % 4)));
    return out;
  }

 private:
  static std::uint32_t rotl(std::uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }
  void compress() {
    std::uint32_t w[80];
    for (int i = 0; i < 16; ++i)
      w[i] = (std::uint32_t{block_[static_cast<std::size_t>(4 * i)]} << 24) |
             (std::uint32_t{block_[static_cast<std::size_t>(4 * i + 1)]} << 16) |
             (std::uint32_t{block_[static_cast<std::size_t>(4 * i + 2)]} << 8) | block_[static_cast<std::size_t>(4 * i + 3)];
    for (int i = 16; i < 80; ++i) w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    std::uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4];
    for (int i = 0; i < 80; ++i) {
      std::uint32_t f = 0, k = 0;
      if (i < 20) f = (b & c) | (~b & d), k = 0x5A827999;
      else if (i < 40) f = b ^ c ^ d, k = 0x6ED9EBA1;
      else if (i < 60) f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDC;
      else f = b ^ c ^ d, k = 0xCA62C1D6;
      const std::uint32_t t = rotl(a, 5) + f + e + k + w[i];
      e = d;
      d = c;
      c = rotl(b, 30);
      b = a;
      a = t;
    }
    h_[0] += a, h_[1] += b, h_[2] += c, h_[3] += d, h_[4] += e;
  }
  std::array<unsigned char, 64> block_{};
  std::size_t used_ = 0;
  std::uint64_t total_ = 0;
  std::uint32_t h_[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
};

}  // namespace

std::string sha1_hex(std::string_view data) {
  Sha1 sha;
  sha.update(reinterpret_cast<const unsigned char*>(data.data()), data.size());
  const auto digest = sha.finish();
  return to_hex(digest.data(), digest.size());
}

Result<std::string> sha1_file_hex(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error(ErrorKind::io, "cannot read file: " + u8(path.filename()));
  Sha1 sha;
  std::vector<char> buf(1 << 16);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (const auto got = in.gcount(); got > 0)
      sha.update(reinterpret_cast<const unsigned char*>(buf.data()), static_cast<std::size_t>(got));
  }
  if (in.bad()) return Error(ErrorKind::io, "read failed: " + u8(path.filename()));
  const auto digest = sha.finish();
  return to_hex(digest.data(), digest.size());
}

std::string base64(std::string_view bytes) {
  ensure_sodium();
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

std::string hmac_sha256_hex(std::string_view key, std::string_view message) {
#if defined(RAYVAULT_OPENSSL_SHA256)
  // RFC 2104 over the SHA-256 above: H((K ^ opad) || H((K ^ ipad) || message)), K the key padded
  // to the 64-byte block (hashed first when longer). The key's derived bytes are wiped after.
  std::array<unsigned char, 64> block{};
  if (key.size() > block.size()) sha256_parts(block.data(), key, {});
  else std::copy(key.begin(), key.end(), block.begin());
  std::array<unsigned char, 64> pad{};
  std::array<unsigned char, 32> inner{}, mac{};
  for (std::size_t i = 0; i < pad.size(); ++i) pad[i] = static_cast<unsigned char>(block[i] ^ 0x36);
  sha256_parts(inner.data(), {reinterpret_cast<const char*>(pad.data()), pad.size()}, message);
  for (std::size_t i = 0; i < pad.size(); ++i) pad[i] = static_cast<unsigned char>(block[i] ^ 0x5c);
  sha256_parts(mac.data(), {reinterpret_cast<const char*>(pad.data()), pad.size()},
               {reinterpret_cast<const char*>(inner.data()), inner.size()});
  OPENSSL_cleanse(block.data(), block.size());
  OPENSSL_cleanse(pad.data(), pad.size());
  OPENSSL_cleanse(inner.data(), inner.size());
  return to_hex(mac.data(), mac.size());
#else
  ensure_sodium();
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(message.data()),
                                message.size());
  std::array<unsigned char, crypto_auth_hmacsha256_BYTES> mac{};
  crypto_auth_hmacsha256_final(&st, mac.data());
  return to_hex(mac.data(), mac.size());
#endif
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
