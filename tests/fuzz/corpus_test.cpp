// Replays every checked-in fuzz corpus file through its target as an ordinary test.
#include <doctest/doctest.h>

#include <filesystem>

#include "tests/fuzz/targets.hpp"
#include "util/files.hpp"

namespace {
void replay(const char* name, bool (*target)(const std::uint8_t*, std::size_t)) {
  const std::filesystem::path dir = std::filesystem::path(RAYVAULT_FUZZ_CORPUS) / name;
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    auto bytes = rayvault::util::read_file(entry.path());
    REQUIRE(bytes.ok());
    CHECK_MESSAGE(target(reinterpret_cast<const std::uint8_t*>(bytes->data()), bytes->size()), entry.path().string());
    ++files;
  }
  CHECK(files > 0);
}
}  // namespace

TEST_CASE("fuzz corpus: json") { replay("json", rayvault::fuzz::json_target); }
TEST_CASE("fuzz corpus: nodes_config") { replay("nodes_config", rayvault::fuzz::nodes_config_target); }
TEST_CASE("fuzz corpus: envelope") { replay("envelope", rayvault::fuzz::envelope_target); }
