// The unit tests' main. Started as `--rayvault-test-child echo ARGS...`, the binary is its own
// child process for the platform tests: it prints each argument it received (as UTF-8) on a line
// of stdout, a line on stderr, and exits with the number of arguments. As `--rayvault-test-child
// cat` it copies its standard input to stdout and exits 0.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <string>
#ifdef _WIN32
#include <fcntl.h>
#include <io.h>
#endif

#include "platform/system_info.hpp"
#include "tests/unit/child_path.hpp"

namespace rayvault::test {
std::string g_self_path;
}

int main(int argc, char** argv) {
  const auto args = rayvault::platform::utf8_arguments(argc, argv);
  if (args.size() >= 3 && args[1] == "--rayvault-test-child" && args[2] == "echo") {
    for (std::size_t i = 3; i < args.size(); ++i) std::printf("%s\n", args[i].c_str());
    std::fprintf(stderr, "child stderr line\n");
    return static_cast<int>(args.size() - 3);
  }
  if (args.size() == 3 && args[1] == "--rayvault-test-child" && args[2] == "cat") {
#ifdef _WIN32
    _setmode(_fileno(stdin), _O_BINARY);
    _setmode(_fileno(stdout), _O_BINARY);
#endif
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, stdin)) > 0) std::fwrite(buf, 1, n, stdout);
    return 0;
  }
  rayvault::test::g_self_path = args.empty() ? std::string() : args[0];
  doctest::Context context(argc, argv);
  return context.run();
}
