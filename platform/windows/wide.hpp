// UTF-8 <-> UTF-16 at the Windows API boundary.
#pragma once

#include <string>
#include <string_view>

namespace rayvault::platform::win {

std::wstring widen(std::string_view utf8);
std::string narrow(std::wstring_view utf16);

}  // namespace rayvault::platform::win
