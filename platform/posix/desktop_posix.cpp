// Desktop sessions on Linux and macOS: whether a display answers (X11 with the user's cookie, or
// a Wayland compositor's socket) or a user owns the macOS console; and the screenshot command.
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <optional>

#include "platform/system_info.hpp"
#include "util/strings.hpp"

namespace rayvault::platform {
namespace {

// A connected socket that closes itself.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

bool connect_unix(Fd& s, const std::string& path, bool abstract) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::size_t offset = abstract ? 1 : 0;
  if (path.size() + offset >= sizeof addr.sun_path) return false;
  std::memcpy(addr.sun_path + offset, path.data(), path.size());
  s.fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s.fd < 0) return false;
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + offset + path.size());
  if (::connect(s.fd, reinterpret_cast<const sockaddr*>(&addr), len) == 0) return true;
  ::close(s.fd);
  s.fd = -1;
  return false;
}

bool connect_tcp(Fd& s, const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &list) != 0) return false;
  for (addrinfo* a = list; a != nullptr; a = a->ai_next) {
    s.fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (s.fd >= 0 && ::connect(s.fd, a->ai_addr, a->ai_addrlen) == 0) break;
    if (s.fd >= 0) ::close(s.fd);
    s.fd = -1;
  }
  ::freeaddrinfo(list);
  return s.fd >= 0;
}

bool read_exact(int fd, unsigned char* out, std::size_t n, int timeout_ms) {
  std::size_t got = 0;
  while (got < n) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return false;
    const ssize_t r = ::read(fd, out + got, n - got);
    if (r <= 0) return false;
    got += static_cast<std::size_t>(r);
  }
  return true;
}

struct Cookie {
  std::string name, data;
};

// The MIT-MAGIC-COOKIE-1 for display `number` on this host from an Xauthority file: entries are
// family (u16), address, number, name and data (each a u16 big-endian length and bytes).
std::optional<Cookie> xauth_cookie(const std::string& file, const std::string& number, const std::string& host) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return std::nullopt;
  const auto u16 = [&in](std::uint16_t& v) {
    unsigned char b[2];
    if (!in.read(reinterpret_cast<char*>(b), 2)) return false;
    v = static_cast<std::uint16_t>((b[0] << 8) | b[1]);
    return true;
  };
  const auto field = [&](std::string& s) {
    std::uint16_t len = 0;
    if (!u16(len)) return false;
    s.assign(len, '\0');
    return len == 0 || static_cast<bool>(in.read(s.data(), len));
  };
  for (int entries = 0; entries < 4096; ++entries) {
    std::uint16_t family = 0;
    std::string address, num, name, data;
    if (!u16(family) || !field(address) || !field(num) || !field(name) || !field(data)) return std::nullopt;
    const bool this_host = family == 65535 || (family == 256 && address == host);  // FamilyWild, FamilyLocal
    if (this_host && (num.empty() || num == number) && name == "MIT-MAGIC-COOKIE-1") return Cookie{name, data};
  }
  return std::nullopt;
}

// Opens an X11 connection to DISPLAY the way a client does (with the user's cookie, if any) and
// reads the server's first answer. "" when the server accepted; else why not.
std::string x11_answers(const std::string& display) {
  const auto colon = display.rfind(':');
  if (colon == std::string::npos) return "DISPLAY=" + display + " is not a display name";
  const std::string host = display.substr(0, colon);
  std::string number = display.substr(colon + 1);
  number = number.substr(0, number.find('.'));
  if (number.empty() || number.find_first_not_of("0123456789") != std::string::npos || number.size() > 5)
    return "DISPLAY=" + display + " is not a display name";
  Fd s;
  const bool local = host.empty() || host == "unix";
  bool connected = false;
  if (local) {
    const std::string path = "/tmp/.X11-unix/X" + number;
#if defined(__linux__)
    connected = connect_unix(s, path, true);
#endif
    if (!connected) connected = connect_unix(s, path, false);
  } else {
    connected = connect_tcp(s, host, 6000 + std::stoi(number));
  }
  if (!connected) return "no X server answers on DISPLAY=" + display;

  std::string auth_file = getenv_string("XAUTHORITY");
  if (auth_file.empty() && !home_folder().empty()) auth_file = home_folder() + "/.Xauthority";
  const auto cookie = auth_file.empty() ? std::nullopt : xauth_cookie(auth_file, number, local ? hostname() : host);
  // Connection setup: little-endian byte order, protocol 11.0, the cookie's name and data padded to 4.
  std::string req = {'l', 0, 11, 0, 0, 0};
  const auto put16 = [&req](std::size_t v) {
    req.push_back(static_cast<char>(v & 0xff));
    req.push_back(static_cast<char>((v >> 8) & 0xff));
  };
  put16(cookie ? cookie->name.size() : 0);
  put16(cookie ? cookie->data.size() : 0);
  put16(0);
  if (cookie) {
    for (const std::string* part : {&cookie->name, &cookie->data}) {
      req += *part;
      req.append((4 - part->size() % 4) % 4, '\0');
    }
  }
  if (::send(s.fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
    return "the X server on DISPLAY=" + display + " closed the connection";
  unsigned char head[8];
  if (!read_exact(s.fd, head, sizeof head, 3000)) return "the X server on DISPLAY=" + display + " did not answer";
  if (head[0] == 1) return "";
  // Failed (0) or Authenticate (2): the reason follows the 8-byte head.
  const std::size_t reason_len = head[1];
  std::string reason(reason_len, '\0');
  if (reason_len > 0 && read_exact(s.fd, reinterpret_cast<unsigned char*>(reason.data()), reason_len, 1000))
    return "the X server on DISPLAY=" + display + " refused this user: " + util::trim(reason);
  return "the X server on DISPLAY=" + display + " refused this user";
}

// A Wayland compositor listens on $XDG_RUNTIME_DIR/$WAYLAND_DISPLAY (or an absolute path).
std::string wayland_answers(const std::string& name) {
  std::string path = name;
  if (path.empty() || path[0] != '/') {
    const std::string runtime = getenv_string("XDG_RUNTIME_DIR");
    if (runtime.empty()) return "WAYLAND_DISPLAY is set but XDG_RUNTIME_DIR is not";
    path = runtime + "/" + name;
  }
  Fd s;
  if (!connect_unix(s, path, false)) return "no Wayland compositor answers on " + path;
  return "";
}

}  // namespace

UiSession ui_session() {
  const std::string forced = getenv_string("RAYVAULT_UI_SESSION");
  if (!forced.empty()) {
    const bool on = forced == "1" || forced == "true" || forced == "yes";
    return {on, "RAYVAULT_UI_SESSION=" + forced};
  }
#if defined(__APPLE__)
  // The user who owns the console is the one logged in at the screen.
  struct stat st{};
  if (::stat("/dev/console", &st) != 0) return {false, "no console device"};
  if (st.st_uid == 0) return {false, "nobody is logged in at the console"};
  if (st.st_uid != ::getuid()) return {false, "another user is logged in at the console"};
  return {true, "console user"};
#else
  std::string why;
  if (const std::string wl = getenv_string("WAYLAND_DISPLAY"); !wl.empty()) {
    why = wayland_answers(wl);
    if (why.empty()) return {true, "WAYLAND_DISPLAY=" + wl};
  }
  if (const std::string x = getenv_string("DISPLAY"); !x.empty()) {
    const std::string x_why = x11_answers(x);
    if (x_why.empty()) return {true, "DISPLAY=" + x};
    why += (why.empty() ? "" : "; ") + x_why;
  }
  if (why.empty()) why = "neither DISPLAY nor WAYLAND_DISPLAY is set (no desktop session)";
  return {false, why};
#endif
}

bool ui_session_active() { return ui_session().active; }

std::vector<std::string> screenshot_command(const std::string& out_png) {
#if defined(__APPLE__)
  return {"screencapture", "-x", "-t", "png", out_png};
#else
  const std::string display = getenv_string("DISPLAY");
  if (display.empty()) return {};
  return {"ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y", "-f", "x11grab", "-i", display, "-frames:v", "1", out_png};
#endif
}

}  // namespace rayvault::platform
