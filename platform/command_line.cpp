// Windows command-line quoting and `query user` reading, kept portable so that their rules are
// unit-tested everywhere.
#include <vector>

#include "platform/process.hpp"
#include "platform/system_info.hpp"
#include "util/strings.hpp"

namespace rayvault::platform {

std::string quote_windows_argument(std::string_view arg) {
  if (!arg.empty() && arg.find_first_of(" \t\n\v\"") == std::string_view::npos) return std::string(arg);
  std::string out = "\"";
  std::size_t backslashes = 0;
  for (const char c : arg) {
    if (c == '\\') {
      ++backslashes;
      continue;
    }
    if (c == '"') {
      // Backslashes before a quote are doubled, and the quote itself is escaped.
      out.append(backslashes * 2 + 1, '\\');
      out.push_back('"');
    } else {
      out.append(backslashes, '\\');
      out.push_back(c);
    }
    backslashes = 0;
  }
  // Backslashes before the closing quote are doubled so that it stays a closing quote.
  out.append(backslashes * 2, '\\');
  out.push_back('"');
  return out;
}

Result<std::string> quote_batch_argument(std::string_view arg) {
  if (arg.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos)
    return Error(ErrorKind::invalid_input, "an argument with a line break cannot be passed to a batch file");
  std::string out = "\"";
  std::size_t backslashes = 0;
  for (const char c : arg) {
    if (c == '\\') {
      ++backslashes;
      out.push_back(c);
      continue;
    }
    if (c == '"') {
      out.append(backslashes, '\\');  // 2n backslashes before the quote: n literal ones
      out += "\"\"";
    } else if (c == '%') {
      out += "%%cd:~,%";
    } else {
      out.push_back(c);
    }
    backslashes = 0;
  }
  out.append(backslashes, '\\');
  out.push_back('"');
  return out;
}

bool query_user_shows_active(std::string_view output, std::string_view user) {
  const std::string me = util::ascii_lower(util::trim(user));
  if (me.empty()) return false;
  std::size_t start = 0;
  while (start < output.size()) {
    auto nl = output.find('\n', start);
    if (nl == std::string_view::npos) nl = output.size();
    const std::string line = util::ascii_lower(output.substr(start, nl - start));
    start = nl + 1;
    // Columns: USERNAME SESSIONNAME ID STATE ...; the current session's row starts with '>', and a
    // disconnected session has no SESSIONNAME, so the state is found as a word, not by position.
    std::vector<std::string> words;
    for (std::size_t i = 0; i < line.size();) {
      const auto b = line.find_first_not_of(" \t\r", i);
      if (b == std::string::npos) break;
      const auto e = line.find_first_of(" \t\r", b);
      words.push_back(line.substr(b, e == std::string::npos ? std::string::npos : e - b));
      i = e == std::string::npos ? line.size() : e;
    }
    if (words.empty()) continue;
    std::string name = words[0];
    if (!name.empty() && name[0] == '>') name.erase(0, 1);
    if (name != me) continue;
    for (std::size_t i = 1; i < words.size(); ++i)
      if (words[i] == "active") return true;
  }
  return false;
}

}  // namespace rayvault::platform
