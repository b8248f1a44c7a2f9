// doctest's main for the integration tests: a worker that closes a connection while the test
// still writes to it must fail that request, not end the test process.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "platform/system_info.hpp"

int main(int argc, char** argv) {
  rayvault::platform::ignore_broken_pipe();
  return doctest::Context(argc, argv).run();
}
