// Windows command-line quoting, kept portable so that its rules are unit-tested everywhere.
#include "platform/process.hpp"

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

}  // namespace rayvault::platform
