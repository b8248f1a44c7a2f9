// Small string helpers with no project knowledge (ASCII only, locale-independent).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rayvault::util {

// Without leading and trailing white space (space, \t, \n, \v, \f, \r).
std::string trim(std::string_view s);

// The lines of a text, each trimmed, without the empty ones (a tool's output read line by line).
std::vector<std::string> nonempty_lines(std::string_view text);

// Without the leading and trailing characters Python's str.strip() removes: every code point
// whose str.isspace() is true (ASCII white space, U+001C-U+001F, U+0085, U+00A0, U+1680,
// U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000), read as UTF-8.
std::string python_strip(std::string_view s);

// ASCII letters lower- or upper-cased; other bytes (UTF-8 included) unchanged.
std::string ascii_lower(std::string_view s);
std::string ascii_upper(std::string_view s);

// A number written as text, read as Python's float() reads it: surrounding white space, a sign,
// decimal or exponent notation, "inf" and "nan"; nullopt for anything else (hex included).
std::optional<double> parse_number_text(std::string_view s);

// A yes/no written as text, trimmed and in any case: true, yes, on, 1 or false, no, off, 0;
// nullopt for anything else.
std::optional<bool> parse_bool_text(std::string_view s);

// KEY=VALUE lines as a .env file holds them: blank lines and '#' comments skipped, an optional
// leading "export ", keys and values trimmed, one pair of matching quotes around a value removed.
// Lines without '=' are skipped. A later key replaces an earlier one.
std::map<std::string, std::string> parse_key_value_text(std::string_view text);

// Percent-encodes a URL path or query component (RFC 3986 unreserved characters kept).
std::string percent_encode(std::string_view s);

// A configured command line split into arguments: white space separates them, "..." and '...'
// group (the quotes removed), and \" inside double quotes is a quote. Backslashes are otherwise
// kept, so Windows paths stay as written: "C:\Program Files\Python\python.exe" -m runner.
std::vector<std::string> split_command_line(std::string_view line);

}  // namespace rayvault::util
