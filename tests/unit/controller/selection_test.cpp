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

TEST_CASE("controller::order_candidates") {
  // {index, free_slots, queue_depth, latency_ms, cooling}
  std::vector<Candidate> c{{0, 0, 4, 1, false}, {1, 2, 0, 90, false}, {2, 2, 0, 3, false}, {3, 2, 0, 5, false},
                           {4, 8, 0, 1, true},  {5, 1, 0, 1, false},  {6, 2, 1, 1, false}};
  order_candidates(c);
  std::vector<std::size_t> order;
  for (const auto& x : c) order.push_back(x.index);
  // Most free slots first; equal slots: shorter queue, then latency (3 and 5 ms are one class, so
  // file order; 90 ms is a slower class), then the busy node; the cooling node last however free.
  CHECK(order == std::vector<std::size_t>{2, 3, 1, 6, 5, 0, 4});
}

TEST_CASE("controller::latency_class") {
  CHECK(latency_class(0) == 0);
  CHECK(latency_class(49) == 0);
  CHECK(latency_class(50) == 1);
  CHECK(latency_class(99) == 1);
  CHECK(latency_class(100) == 2);
  CHECK(latency_class(450) == 4);
}

TEST_CASE("controller::load_for_step") {
  const json modern = json::parse(R"({"queue_depth":3,"load":{"cpu_slots":4,"cpu_running":2,"cpu_queued":1,
    "gpu_slots":2,"gpu_running":0,"gpu_queued":0},"caps":{"slots":4}})");
  CHECK(load_for_step(modern, "FFMPEG_PROBE").free_slots == 1);
  CHECK(load_for_step(modern, "POSE_ESTIMATE").free_slots == 2);
  CHECK(load_for_step(modern, "POSE_ESTIMATE").queue_depth == 3);
  // A Python node reports no load: caps.slots (else 1) less its queue.
  CHECK(load_for_step(json::parse(R"({"queue_depth":1,"caps":{}})"), "FFMPEG_PROBE").free_slots == 0);
  CHECK(load_for_step(json::parse(R"({"queue_depth":1,"caps":{"slots":3}})"), "FFMPEG_PROBE").free_slots == 2);
}

TEST_CASE("controller::requirements tags and steps") {
  auto r = parse_requirements(json::parse(R"({"tags":["gpu-room","studio"],"steps":["frame_sampling"]})"));
  REQUIRE(r.ok());
  const json caps = json::parse(R"({"supported_steps":["FFMPEG_PROBE","FRAME_SAMPLING"],"tags":["studio"]})");
  CHECK(unmet_reason(caps, *r, "FFMPEG_PROBE", {"gpu-room"}).empty());
  CHECK(unmet_reason(caps, *r, "FFMPEG_PROBE", {}) == "no tag gpu-room");
  const json fewer = json::parse(R"({"supported_steps":["FFMPEG_PROBE"]})");
  CHECK(unmet_reason(fewer, *r, "FFMPEG_PROBE", {"gpu-room", "studio"}) == "does not run FRAME_SAMPLING");
  CHECK(!parse_requirements(json::parse(R"({"tags":[1]})")).ok());
}
