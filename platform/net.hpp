// Socket addresses for the worker's listening socket and its peers, without socket headers in the
// caller (POSIX and Winsock spell them differently).
#pragma once

#include <array>
#include <cstddef>
#include <string>

#include "util/error.hpp"

namespace rayvault::platform {

// A resolved socket address (a sockaddr_in or sockaddr_in6 in its bytes).
struct SocketAddress {
  alignas(8) std::array<unsigned char, 128> bytes{};
  std::size_t length = 0;
  bool ipv6 = false;
  const void* data() const { return bytes.data(); }
};

// The address to listen on for host (an IPv4 or IPv6 literal, brackets allowed, or a name such as
// localhost) and port. Error (config) when it does not resolve.
Result<SocketAddress> listen_address(const std::string& host, int port);

// A peer's address as text without its port ("127.0.0.1", "fd7a:115c:a1e0::1"), from a sockaddr;
// "" when it is null or of another family.
std::string address_text(const void* sockaddr);

}  // namespace rayvault::platform
