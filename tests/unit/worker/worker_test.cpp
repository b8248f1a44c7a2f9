// Worker pieces that need no network: the bind policy and nvidia-smi parsing.
#include <doctest/doctest.h>

#include "worker/bind_policy.hpp"
#include "worker/caps.hpp"

using namespace rayvault::worker;

TEST_CASE("worker::is_loopback_or_tailnet") {
  for (const char* ok : {"127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]", "100.64.0.1", "100.127.255.254",
                         "fd7a:115c:a1e0::1", "FD7A:115C:A1E0:ab12::1"})
    CHECK_MESSAGE(is_loopback_or_tailnet(ok), ok);
  for (const char* no : {"0.0.0.0", "::", "10.0.0.1", "192.168.1.10", "100.63.255.255", "100.128.0.1", "8.8.8.8",
                         "fd7a:115c:a1e1::1", "127.0.0", "127.0.0.1.5", "example.com", ""})
    CHECK_MESSAGE(!is_loopback_or_tailnet(no), no);
}

TEST_CASE("worker::parse_nvidia_smi") {
  CHECK(parse_nvidia_smi("NVIDIA GeForce RTX 4090, 24564\n") == std::pair<std::string, double>{"NVIDIA GeForce RTX 4090", 23.99});
  CHECK(parse_nvidia_smi("NVIDIA A100-SXM4-80GB, 81920\nNVIDIA A100-SXM4-80GB, 81920\n").second == 80.0);
  CHECK(parse_nvidia_smi("").first.empty());
  CHECK(parse_nvidia_smi("No devices were found\n").first.empty());
}
