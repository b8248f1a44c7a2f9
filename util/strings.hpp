// Small string helpers with no project knowledge (ASCII only, locale-independent).
#pragma once

#include <string>
#include <string_view>

namespace rayvault::util {

// Without leading and trailing white space (space, \t, \n, \v, \f, \r).
std::string trim(std::string_view s);

// ASCII letters lower- or upper-cased; other bytes (UTF-8 included) unchanged.
std::string ascii_lower(std::string_view s);
std::string ascii_upper(std::string_view s);

}  // namespace rayvault::util
