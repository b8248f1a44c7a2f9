// Requirement matching and least-loaded ordering.
#include <doctest/doctest.h>

#include "controller/selection.hpp"

using namespace rayvault;
using namespace rayvault::controller;

namespace {
const json kGpuPc = {{"os", "windows"}, {"ram_gb", 64.0}, {"gpu_model", "RTX 4090"}, {"vram_gb", 23.99},
                     {"gpu", true}, {"davinci_available", true},
                     {"supported_steps", {"FFMPEG_PROBE", "POSE_ESTIMATE"}}};
const json kMac = {{"os", "darwin"}, {"ram_gb", 16.0}, {"gpu_model", ""}, {"vram_gb", 0.0}, {"gpu", false},
                   {"davinci_available", false}};

Requirements req(const char* text) {
  auto r = parse_requirements(json::parse(text));
  REQUIRE(r.ok());
  return *r;
}
}  // namespace

TEST_CASE("controller::unmet_reason") {
  CHECK(unmet_reason(kGpuPc, req(R"({"os_in":["Windows","linux"],"min_vram_gb":20,"gpu_required":true})"), "POSE_ESTIMATE") == "");
  CHECK(unmet_reason(kMac, req(R"({"os_in":["windows","linux"]})"), "FFMPEG_PROBE") == "os darwin not in os_in");
  CHECK(unmet_reason(kMac, req(R"({"min_ram_gb":32})"), "FFMPEG_PROBE") == "ram_gb 16 < 32");
  CHECK(unmet_reason(kGpuPc, req(R"({"min_vram_gb":24})"), "POSE_ESTIMATE") == "vram_gb 23.99 < 24");
  CHECK(unmet_reason(kMac, req(R"({"gpu_required":true})"), "FFMPEG_PROBE") == "no GPU");
  CHECK(unmet_reason(kMac, req(R"({"davinci_available":true})"), "FFMPEG_PROBE") == "no DaVinci Resolve");
  // A worker that lists its steps is only chosen for those.
  CHECK(unmet_reason(kGpuPc, req("{}"), "FRAME_SAMPLING") == "does not run FRAME_SAMPLING");
  // One that does not list them (an older worker) is assumed to run every step.
  CHECK(unmet_reason(kMac, req("{}"), "FRAME_SAMPLING") == "");
}

TEST_CASE("controller::parse_requirements") {
  CHECK(parse_requirements(json()).ok());
  CHECK(parse_requirements(json::parse(R"({"os_in":"linux"})"))->os_in == std::vector<std::string>{"linux"});
  CHECK_FALSE(parse_requirements(json::parse(R"({"os_in":[1]})")).ok());
  CHECK_FALSE(parse_requirements(json::parse("[]")).ok());
  CHECK_FALSE(parse_requirements(json::parse(R"({"min_ram_gb":"lots"})")).ok());
  CHECK_FALSE(parse_requirements(json::parse(R"({"gpu_required":"maybe"})")).ok());
  CHECK_FALSE(parse_requirements(json::parse(R"({"gpu_required":[]})")).ok());
  // Stricter than the Python controller on purpose: a misspelt key would match every worker.
  CHECK(parse_requirements(json::parse(R"({"min_ram":4})")).error().message.find("unknown key 'min_ram'") != std::string::npos);
  SUBCASE("what the Python controller takes is taken, with a warning where it was interpreted") {
    auto r = parse_requirements(json::parse(
        R"({"gpu_required":"true","davinci_available":0,"min_vram_gb":" 8 ","os_in":[" Windows "]})"));
    REQUIRE(r.ok());
    CHECK(r->gpu_required);
    CHECK(r->davinci_available == false);
    CHECK(r->min_vram_gb == 8.0);
    CHECK(r->os_in == std::vector<std::string>{"windows"});
    REQUIRE(r->warnings.size() == 2);
    CHECK(r->warnings[0] == "requirements: davinci_available is 0, read as false");
    CHECK(r->warnings[1] == "requirements: gpu_required is \"true\", read as true");
    CHECK(parse_requirements(json::parse(R"({"gpu_required":"no"})"))->gpu_required == false);
  }
}

TEST_CASE("controller::order_by_load") {
  std::vector<Candidate> c{{0, 4, 2}, {1, 1, 1}, {2, 2, 8}, {3, 0, 1}, {4, 0, 4}};
  order_by_load(c);
  std::vector<std::size_t> order;
  for (const auto& x : c) order.push_back(x.index);
  // Idle first (file order), then by queue per slot: 2/8 < 1/1 < 4/2.
  CHECK(order == std::vector<std::size_t>{3, 4, 2, 1, 0});
}
