// Address classification for the bind policy (text parsing only, no sockets).
#include "worker/bind_policy.hpp"

#include <array>
#include <charconv>
#include <string>

#include "util/strings.hpp"

namespace rayvault::worker {
namespace {

bool parse_ipv4(std::string_view s, std::array<int, 4>& out) {
  for (int i = 0; i < 4; ++i) {
    const auto dot = s.find('.');
    const std::string_view part = i < 3 ? s.substr(0, dot) : s;
    if (part.empty() || part.size() > 3 || (i < 3 && dot == std::string_view::npos)) return false;
    int v = 0;
    const auto [p, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
    if (ec != std::errc() || p != part.data() + part.size() || v > 255) return false;
    out[static_cast<std::size_t>(i)] = v;
    if (i < 3) s.remove_prefix(dot + 1);
  }
  return true;
}

}  // namespace

bool is_loopback_or_tailnet(std::string_view host) {
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string h = util::ascii_lower(host);
  if (h == "localhost" || h == "::1" || h == "0:0:0:0:0:0:0:1") return true;
  std::array<int, 4> v4{};
  if (parse_ipv4(h, v4)) {
    if (v4[0] == 127) return true;
    return v4[0] == 100 && (v4[1] & 0xC0) == 64;  // 100.64.0.0/10
  }
  return h.rfind("fd7a:115c:a1e0:", 0) == 0;  // fd7a:115c:a1e0::/48
}

}  // namespace rayvault::worker
