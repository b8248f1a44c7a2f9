// Worker pieces that need no network: the bind policy, nvidia-smi parsing, payload readers.
#include <doctest/doctest.h>

#include "platform/system_info.hpp"
#include "worker/bind_policy.hpp"
#include "worker/caps.hpp"
#include "worker/step.hpp"

using namespace rayvault::worker;
namespace platform = rayvault::platform;

TEST_CASE("worker::is_loopback_or_tailnet") {
  for (const char* ok : {"127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]", "100.64.0.1", "100.127.255.254",
                         "fd7a:115c:a1e0::1", "FD7A:115C:A1E0:ab12::1"})
    CHECK_MESSAGE(is_loopback_or_tailnet(ok), ok);
  for (const char* no : {"0.0.0.0", "::", "10.0.0.1", "192.168.1.10", "100.63.255.255", "100.128.0.1", "8.8.8.8",
                         "fd7a:115c:a1e1::1", "127.0.0", "127.0.0.1.5", "example.com", ""})
    CHECK_MESSAGE(!is_loopback_or_tailnet(no), no);
}

TEST_CASE("worker::optional_seconds") {
  // As the Python worker reads every_sec: numbers and numeric strings; 0, negative, null or
  // missing give the default; anything else, NaN or more than the maximum is INVALID_INPUT.
  auto read = [](const json& v) { return optional_seconds(json{{"every_sec", v}}, "every_sec", 5.0, 86400.0); };
  CHECK(*read(2) == 2.0);
  CHECK(*read(0.25) == 0.25);
  CHECK(*read("3") == 3.0);
  CHECK(*read(" 1e1 ") == 10.0);
  CHECK(*read(86400) == 86400.0);
  for (const json& v : {json(0), json(-1), json("-2.5"), json("0"), json("-inf"), json(nullptr)}) CHECK_MESSAGE(*read(v) == 5.0, v.dump());
  CHECK(*optional_seconds(json::object(), "every_sec", 5.0, 86400.0) == 5.0);
  for (const json& v : {json("abc"), json(""), json("2s"), json(true), json(false), json("nan"), json("inf"),
                        json(86400.001), json("0x1p3"), json::array(), json::object()}) {
    auto r = read(v);
    REQUIRE_FALSE_MESSAGE(r.ok(), v.dump());
    CHECK(r.error().code == "INVALID_INPUT");
  }
}

TEST_CASE("worker::required_path") {
  // Trimmed; a leading ~ alone or before a separator is the home folder, "~user" is left alone.
  const std::string home = rayvault::platform::home_folder();
  REQUIRE_FALSE(home.empty());
  CHECK(*required_path(json{{"p", "  /media/a.mp4 \n"}}, "p") == "/media/a.mp4");
  CHECK(*required_path(json{{"p", "~/a.mp4"}}, "p") == home + "/a.mp4");
  CHECK(*required_path(json{{"p", " ~ "}}, "p") == home);
  CHECK(*required_path(json{{"p", "~other/a.mp4"}}, "p") == "~other/a.mp4");
  for (const json& bad : {json("   "), json(""), json(5), json(nullptr)}) {
    auto r = required_path(json{{"p", bad}}, "p");
    REQUIRE_FALSE_MESSAGE(r.ok(), bad.dump());
    CHECK(r.error().code == "INVALID_INPUT");
  }
}

TEST_CASE("platform::parse_nvidia_smi_gpus") {
  const auto gpus = platform::parse_nvidia_smi_gpus("0, NVIDIA GeForce RTX 4090, 24564, 550.54.14\n1, NVIDIA RTX A6000, 49140, 550.54.14\n");
  REQUIRE(gpus.size() == 2);
  CHECK(gpus[0].index == "0");
  CHECK(gpus[0].model == "NVIDIA GeForce RTX 4090");
  CHECK(gpus[0].memory_mib == 24564.0);
  CHECK(gpus[1].driver == "550.54.14");
  CHECK(platform::parse_nvidia_smi_gpus("No devices were found\n").empty());
  CHECK(platform::parse_nvidia_smi_gpus("").empty());
  CHECK(platform::parse_nvidia_smi_gpus("x, name, 10, 1\n").empty());
}

TEST_CASE("worker::optional_bool") {
  auto read = [](const json& v) { return optional_bool(json{{"force", v}}, "force", false); };
  CHECK(*read(true));
  CHECK(*read(1));
  CHECK(*read(" yes "));
  CHECK_FALSE(*read("off"));
  CHECK_FALSE(*read(nullptr));
  CHECK(*optional_bool(json::object(), "force", true));
  for (const json& v : {json("maybe"), json::array(), json::object()}) {
    const auto r = read(v);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == "INVALID_INPUT");
    CHECK(r.error().message == "payload.force must be true or false");
  }
}
