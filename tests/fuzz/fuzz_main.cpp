// libFuzzer entry point; RAYVAULT_FUZZ_TARGET names the target function at compile time.
#include <cstdlib>

#include "tests/fuzz/targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (!rayvault::fuzz::RAYVAULT_FUZZ_TARGET(data, size)) std::abort();
  return 0;
}
