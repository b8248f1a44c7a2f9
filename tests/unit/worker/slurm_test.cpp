// The Slurm launch mode's pure parts: settings, what a payload may ask, GRES lists, batch scripts.
#include <doctest/doctest.h>

#include <random>

#include "util/files.hpp"
#include "worker/slurm.hpp"

using namespace rayvault::worker;
using rayvault::protocol::json;
namespace fs = std::filesystem;

namespace {

rayvault::Result<slurm::Config> load(const json& j) {
  // A name of its own: ctest runs the test cases of this file as parallel processes.
  const fs::path file =
      fs::temp_directory_path() / ("rayvault-slurm-settings-test-" + std::to_string(std::random_device{}()) + ".json");
  REQUIRE(rayvault::util::write_file_atomic(file, j.dump()).ok());
  auto c = slurm::load_config(file);
  fs::remove(file);
  return c;
}

}  // namespace

TEST_CASE("slurm::parse_gres_gpus reads sinfo's GRES and GRES-used forms") {
  const auto one = slurm::parse_gres_gpus("gpu:2");
  REQUIRE(one.size() == 1);
  CHECK(one[0].type == "");
  CHECK(one[0].count == 2);
  const auto typed = slurm::parse_gres_gpus("gpu:a100:4(S:0-1),gpu:v100:2,mps:100");
  REQUIRE(typed.size() == 2);
  CHECK(typed[0].type == "a100");
  CHECK(typed[0].count == 4);
  CHECK(typed[1].type == "v100");
  CHECK(typed[1].count == 2);
  const auto used = slurm::parse_gres_gpus("gpu:(null):1(IDX:0),gpu:a100:2(IDX:0,2)");
  REQUIRE(used.size() == 2);
  CHECK(used[0].type == "");
  CHECK(used[0].count == 1);
  CHECK(used[1].count == 2);
  CHECK(slurm::parse_gres_gpus("(null)").empty());
  CHECK(slurm::parse_gres_gpus("").empty());
  CHECK(slurm::parse_gres_gpus("gpu:0")[0].count == 0);
}

// Slurm's login and compute nodes run Linux (or macOS): the paths below are POSIX ones, and a
// Windows worker refuses the Slurm mode at start.
#if !defined(_WIN32)
TEST_CASE("slurm::load_config takes the documented keys and refuses what Slurm would misread") {
  auto c = load({{"launch", "slurm"},
                 {"steps", {"pose_estimate", "FRAME_SAMPLING"}},
                 {"shared_dir", "/shared/rayvault"},
                 {"partitions", {"gpu-long"}},
                 {"max_jobs", 8},
                 {"poll_min_sec", 2},
                 {"poll_max_sec", 1},
                 {"defaults", {{"partition", "gpu"}, {"time_limit_min", 90}, {"gpus", 2}, {"cpus", 8}, {"mem_gb", 1.5},
                               {"account", "studio"}, {"qos", "normal"}, {"extra", {"--constraint=a100", "--exclusive"}}}},
                 {"step_options", {{"FRAME_SAMPLING", {{"gpus", 0}, {"partition", "cpu"}}}}}});
  REQUIRE(c.ok());
  CHECK(c->steps == std::vector<std::string>{"POSE_ESTIMATE", "FRAME_SAMPLING"});
  CHECK(c->handles("pose_estimate"));
  CHECK(!c->handles("FFMPEG_PROBE"));
  CHECK(c->poll_max == c->poll_min);  // never below the minimum
  CHECK(c->defaults.mem_mb == 1536);
  CHECK(c->limits_for("FRAME_SAMPLING").gpus == 0);
  CHECK(c->limits_for("FRAME_SAMPLING").cpus == 8);  // per-step options start from the defaults
  CHECK(c->limits_for("POSE_ESTIMATE").partition == "gpu");
  REQUIRE(slurm::complete_config(*c, "/var/lib/rayvault").ok());
  CHECK(c->partitions == std::vector<std::string>{"gpu-long", "gpu", "cpu"});

  for (const json& bad : {json{{"defaults", {{"partition", "gpu --wrap"}}}}, json{{"defaults", {{"extra", {"--output=/tmp/x"}}}}},
                          json{{"defaults", {{"extra", {"-J x"}}}}}, json{{"defaults", {{"gpus", -1}}}},
                          json{{"shared_dir", "/shared/my folder"}}, json{{"shared_dir", "/shared/%j"}},
                          json{{"steps", {"REGISTER_CAPS"}}}, json{{"colour", "blue"}}, json{{"defaults", {{"walltime", 3}}}},
                          json{{"max_jobs", 0}}, json{{"defaults", {{"extra", {"--out=/tmp/x"}}}}},
                          json{{"defaults", {{"extra", {"--job=x"}}}}}})
    CHECK_MESSAGE(!load(bad).ok(), bad.dump());
  // The default shared folder is under the root: a root the batch script cannot name is refused.
  auto plain = load(json::object());
  REQUIRE(plain.ok());
  CHECK(!slurm::complete_config(*plain, "/var/lib/ray vault").ok());
  CHECK(!slurm::complete_config(*plain, "/var/lib/100%").ok());
}

#endif

TEST_CASE("slurm::resources_for lets a payload lower the limits, never raise them") {
  auto c = load({{"partitions", {"gpu", "gpu-long"}},
                 {"defaults", {{"partition", "gpu"}, {"time_limit_min", 60}, {"gpus", 2}, {"cpus", 4}, {"mem_gb", 16}}}});
  REQUIRE(c.ok());
  std::vector<std::string> notes;
  auto r = slurm::resources_for(*c, "POSE_ESTIMATE", json{{"slurm", {{"time_limit_min", 30}, {"gpus", 1}, {"cpus", "2"}, {"mem_gb", 4}}}}, notes);
  REQUIRE(r.ok());
  CHECK(r->time_limit_min == 30);
  CHECK(r->gpus == 1);
  CHECK(r->cpus == 2);
  CHECK(r->mem_mb == 4096);
  CHECK(notes.empty());
  r = slurm::resources_for(*c, "POSE_ESTIMATE", json{{"slurm", {{"time_limit_min", 600}, {"gpus", 8}, {"partition", "gpu-long"}}}}, notes);
  REQUIRE(r.ok());
  CHECK(r->time_limit_min == 60);
  CHECK(r->gpus == 2);
  CHECK(r->partition == "gpu-long");
  CHECK(notes.size() == 2);
  // payload.timeout_sec lowers the time limit too (whole minutes, at least one).
  r = slurm::resources_for(*c, "POSE_ESTIMATE", json{{"timeout_sec", 90}}, notes);
  CHECK(r->time_limit_min == 2);
  // A GPU step keeps at least one GPU.
  r = slurm::resources_for(*c, "POSE_ESTIMATE", json{{"slurm", {{"gpus", 0}}}}, notes);
  CHECK(r->gpus == 1);
  // Huge numbers are only more than the limit.
  r = slurm::resources_for(*c, "POSE_ESTIMATE", json{{"timeout_sec", 1e300}, {"slurm", {{"cpus", 1e300}}}}, notes);
  REQUIRE(r.ok());
  CHECK(r->time_limit_min == 60);
  CHECK(r->cpus == 4);
  // Memory the worker leaves to the partition's default is not the payload's to set.
  auto open_mem = load({{"defaults", {{"mem_gb", 0}}}});
  REQUIRE(open_mem.ok());
  notes.clear();
  r = slurm::resources_for(*open_mem, "POSE_ESTIMATE", json{{"slurm", {{"mem_gb", 512}}}}, notes);
  CHECK(r->mem_mb == 0);
  CHECK(notes.size() == 1);
  for (const json& bad : {json{{"slurm", "fast"}}, json{{"slurm", {{"partition", "debug"}}}}, json{{"slurm", {{"gpus", "many"}}}},
                          json{{"slurm", {{"exclusive", true}}}}, json{{"slurm", {{"cpus", -1}}}}})
    CHECK_MESSAGE(!slurm::resources_for(*c, "POSE_ESTIMATE", bad, notes).ok(), bad.dump());
}

#if !defined(_WIN32)
TEST_CASE("slurm::batch_script asks for the resources, requeues, and runs the worker's own program") {
  slurm::Resources r;
  r.partition = "gpu";
  r.time_limit_min = 45;
  r.gpus = 2;
  r.gpu_type = "a100";
  r.cpus = 6;
  r.mem_mb = 2048;
  r.account = "studio";
  r.extra = {"--constraint=nvlink"};
  const std::string s = slurm::batch_script(r, slurm::job_name("hpc", "shot 1", "0a1b2c3d"), "/shared/rv/hpc/job", "/opt/rv/rayvault-worker", "about");
  for (const char* line : {"#SBATCH --job-name=rayvault.hpc.", "#SBATCH --partition=gpu\n", "#SBATCH --time=45\n",
                           "#SBATCH --gres=gpu:a100:2\n", "#SBATCH --cpus-per-task=6\n", "#SBATCH --mem=2048M\n",
                           "#SBATCH --account=studio\n", "#SBATCH --requeue\n", "#SBATCH --output=/shared/rv/hpc/job/slurm-%j.out\n",
                           "#SBATCH --constraint=nvlink\n", "exec '/opt/rv/rayvault-worker' slurm-step '/shared/rv/hpc/job'\n"})
    CHECK_MESSAGE(s.find(line) != std::string::npos, line);
  CHECK(s.rfind("#!/bin/sh\n", 0) == 0);
  CHECK(s.find("--qos") == std::string::npos);
  // The name carries the job id in its folder form: no spaces reach Slurm.
  CHECK(slurm::job_name("hpc", "shot 1", "0a1b2c3d").find(' ') == std::string::npos);
  CHECK(slurm::is_terminal("COMPLETED"));
  CHECK(!slurm::is_terminal("PENDING"));
  CHECK(slurm::error_code_for("TIMEOUT") == "SLURM_TIMEOUT");
  CHECK(slurm::error_code_for("OUT_OF_MEMORY") == "SLURM_OUT_OF_MEMORY");
  CHECK(slurm::error_code_for("NODE_FAIL") == "SLURM_NODE_FAIL");
  CHECK(slurm::error_code_for("PREEMPTED") == "SLURM_PREEMPTED");
  CHECK(slurm::error_code_for("CANCELLED") == "SLURM_CANCELLED");
  CHECK(slurm::error_code_for("FAILED") == "SLURM_JOB_FAILED");
  CHECK(slurm::never_starts("PartitionTimeLimit"));
  CHECK(!slurm::never_starts("Resources"));
  CHECK(!slurm::never_starts("Priority"));
}
#endif
