// The path of the running unit test binary, for tests that start it as a child.
#pragma once

#include <string>

namespace rayvault::test {
extern std::string g_self_path;
}
