// Id validation and the id -> folder name mapping.
#include "protocol/ids.hpp"

#include <algorithm>
#include <array>

#include "util/crypto.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"

namespace rayvault::protocol {
namespace {

// Decodes one UTF-8 sequence at s[i]; returns its code point and advances i, or -1 when invalid.
long next_code_point(std::string_view s, std::size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  int len = 0;
  long cp = 0;
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  if ((b0 & 0xE0) == 0xC0) {
    len = 2;
    cp = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3;
    cp = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4;
    cp = b0 & 0x07;
  } else {
    return -1;
  }
  if (i + static_cast<std::size_t>(len) > s.size()) return -1;
  for (int k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]);
    if ((b & 0xC0) != 0x80) return -1;
    cp = (cp << 6) | (b & 0x3F);
  }
  static constexpr std::array<long, 5> kMin{0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[static_cast<std::size_t>(len)] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
  i += static_cast<std::size_t>(len);
  return cp;
}

bool is_windows_device_name(std::string_view name) {
  const std::string stem = util::ascii_upper(name.substr(0, name.find('.')));
  if (stem == "CON" || stem == "PRN" || stem == "AUX" || stem == "NUL") return true;
  return stem.size() == 4 && (stem.rfind("COM", 0) == 0 || stem.rfind("LPT", 0) == 0) && stem[3] >= '0' &&
         stem[3] <= '9';
}

}  // namespace

Result<std::string> normalize_id(std::string_view raw, std::string_view field) {
  std::string id = util::trim(raw);
  const std::string f(field);
  auto bad = [&f](const std::string& why) { return Error(ErrorKind::invalid_input, f + " " + why); };
  if (id.empty()) return bad("must not be empty");
  if (id == "." || id == "..") return bad("must not be '.' or '..'");
  std::size_t characters = 0;
  for (std::size_t i = 0; i < id.size();) {
    const long cp = next_code_point(id, i);
    if (cp < 0) return bad("is not valid UTF-8");
    if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F)) return bad("must not hold control characters");
    if (cp == '/' || cp == '\\') return bad("must not hold a path separator ('/' or '\\')");
    ++characters;
  }
  if (characters > kMaxIdCharacters) return bad("is longer than 128 characters");
  return id;
}

std::string id_folder_name(std::string_view id) {
  // Capitals are left out of plain names: Windows and macOS fold case, so "Job1" and "job1" would
  // share a folder there.
  const bool has_capital = std::any_of(id.begin(), id.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
  if (util::is_safe_component(id) && !has_capital && id.back() != '.' && !is_windows_device_name(id))
    return std::string(id);
  std::string safe;
  for (const char c : id) {
    if (safe.size() == 48) break;
    const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    safe.push_back(keep ? c : '_');
  }
  return safe + "~" + util::sha256_hex(id).substr(0, 32);
}

}  // namespace rayvault::protocol
