// Socket addresses: getaddrinfo and inet_ntop exist on POSIX and in Winsock alike; only the
// headers and Winsock's start-up differ.
#if defined(_WIN32)
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#endif

#include <algorithm>
#include <cstring>

#include "platform/net.hpp"

namespace rayvault::platform {
namespace {

// Winsock must be started before getaddrinfo; WSAStartup counts its callers, so once is enough.
void start_sockets() {
#if defined(_WIN32)
  static const bool started = [] {
    WSADATA data;
    return ::WSAStartup(MAKEWORD(2, 2), &data) == 0;
  }();
  (void)started;
#endif
}

}  // namespace

Result<SocketAddress> listen_address(const std::string& host, int port) {
  start_sockets();
  std::string name = host;
  if (name.size() > 2 && name.front() == '[' && name.back() == ']') name = name.substr(1, name.size() - 2);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = ::getaddrinfo(name.c_str(), service.c_str(), &hints, &found); rc != 0 || !found)
    return Error(ErrorKind::config, "cannot resolve listen address " + host + " (error " + std::to_string(rc) + ")");
  SocketAddress out;
  out.length = std::min<std::size_t>(found->ai_addrlen, out.bytes.size());
  std::memcpy(out.bytes.data(), found->ai_addr, out.length);
  out.ipv6 = found->ai_family == AF_INET6;
  ::freeaddrinfo(found);
  return out;
}

std::string address_text(const void* sockaddr_ptr) {
  if (!sockaddr_ptr) return {};
  const auto* sa = static_cast<const sockaddr*>(sockaddr_ptr);
  char buf[INET6_ADDRSTRLEN] = {};
  if (sa->sa_family == AF_INET) {
    auto addr = reinterpret_cast<const sockaddr_in*>(sa)->sin_addr;
    return ::inet_ntop(AF_INET, &addr, buf, sizeof buf) ? buf : "";
  }
  if (sa->sa_family == AF_INET6) {
    auto addr = reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr;
    return ::inet_ntop(AF_INET6, &addr, buf, sizeof buf) ? buf : "";
  }
  return {};
}

}  // namespace rayvault::platform
