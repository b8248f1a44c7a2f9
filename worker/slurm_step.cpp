// The compute-node side of the Slurm launch mode: one step run by the worker's own program inside
// a Slurm batch job.
#include <atomic>
#include <cstdio>
#include <mutex>

#include "platform/system_info.hpp"
#include "protocol/errors.hpp"
#include "protocol/steps.hpp"
#include "util/files.hpp"
#include "util/time.hpp"
#include "worker/slurm.hpp"
#include "worker/step.hpp"

namespace rayvault::worker {

int run_slurm_step(const std::filesystem::path& dir) {
  std::mutex out_mu;
  const auto emit = [&out_mu](std::string_view level, std::string_view event, std::string_view message) {
    const std::string line = protocol::dump_json(json{{"ts", util::format_utc(util::system_clock()())},
                                                      {"level", level}, {"event", event}, {"message", message}});
    std::lock_guard lock(out_mu);
    std::fprintf(stdout, "%s\n", line.c_str());
    std::fflush(stdout);
  };
  auto text = util::read_file(dir / "job.json", 64u << 20);
  auto spec = text ? protocol::parse_json(*text) : Result<json>(text.error());
  if (!spec || !spec->is_object()) {
    std::fprintf(stderr, "rayvault-worker slurm-step: cannot read %s: %s\n", util::u8(dir / "job.json").c_str(),
                 spec ? "not a JSON object" : spec.error().message.c_str());
    return 1;
  }
  const json& j = *spec;
  const std::string slurm_id = platform::getenv_string("SLURM_JOB_ID");
  const std::string restart = platform::getenv_string("SLURM_RESTART_COUNT");
  const fs::path staging = dir / "staging";
  std::error_code ec;
  fs::remove(dir / "result.json", ec);  // an earlier run's, before a requeue
  fs::remove_all(staging, ec);
  fs::create_directories(staging, ec);

  std::atomic<bool> cancel{false};
  platform::on_shutdown_signal([&cancel] { cancel = true; });  // scancel and time limits send SIGTERM

  StepConfig config;
  config.env_file = util::path_from_utf8(protocol::string_field(j, "env_file"));
  config.cache_dir = util::path_from_utf8(protocol::string_field(j, "cache_dir"));
  config.tts_parallel = std::max(1, j.value("tts_parallel", 2));
  config.tts_cache_max_bytes = j.value("tts_cache_max_bytes", config.tts_cache_max_bytes);

  // The GPUs Slurm gave this job (CUDA_VISIBLE_DEVICES, numbered within the allocation).
  GpuDevice gpu;
  gpu.index = platform::getenv_string("CUDA_VISIBLE_DEVICES");
  gpu.model = protocol::string_field(j, "gpu_model");
  if (!gpu.index.empty())
    for (const auto& g : platform::nvidia_gpus())
      if (g.index == gpu.index.substr(0, gpu.index.find(','))) {
        gpu.model = g.model;
        gpu.vram_gb = g.memory_mib / 1024.0;
        gpu.driver = g.driver;
      }
  if (gpu.model.empty()) gpu.model = "GPU";

  const std::string step_name = protocol::string_field(j, "step_name");
  const json payload = j.value("payload", json::object());
  const auto steps = make_default_steps();
  const auto step = steps.find(step_name);
  emit("info", "slurm_step_started",
       "Slurm job " + slurm_id + (restart.empty() || restart == "0" ? "" : " (restart " + restart + ")") + " on " +
           platform::hostname() + (gpu.index.empty() ? "" : ", GPU " + gpu.index) + ": running " + step_name);

  Result<StepOutput> outcome = Error(ErrorKind::internal, "not run");
  if (step == steps.end()) {
    outcome = Error(ErrorKind::unavailable, step_name + " is not supported by this worker build",
                    std::string(protocol::codes::kStepUnsupported));
  } else {
    const auto timeout = std::chrono::seconds(std::max(1, j.value("timeout_sec", 3600)));
    StepContext ctx{protocol::string_field(j, "run_id"),
                    protocol::string_field(j, "job_id"),
                    step_name,
                    payload,
                    staging,
                    util::path_from_utf8(protocol::string_field(j, "output_dir")),
                    util::path_from_utf8(protocol::string_field(j, "workspace_root")),
                    timeout,
                    &cancel,
                    [&emit](LogLevel level, std::string_view event, std::string_view message) { emit(to_string(level), event, message); },
                    config,
                    gpu.index.empty() ? nullptr : &gpu,
                    std::chrono::steady_clock::now() + timeout};
    try {
      outcome = step->second->run(ctx);
    } catch (const std::exception& ex) {
      outcome = Error(ErrorKind::internal, std::string("unexpected error: ") + ex.what(), std::string(protocol::codes::kUnhandledException));
    }
  }
  json result{{"slurm_job_id", slurm_id}, {"restart", restart}, {"ok", static_cast<bool>(outcome)}};
  if (outcome) {
    result["metrics"] = outcome->metrics;
    result["artifacts"] = outcome->artifacts;
    result["message"] = outcome->message;
    result["verdict_failed"] = outcome->verdict_failed;
    emit("info", "slurm_step_ended", "step done: " + outcome->message);
  } else {
    const Error& e = outcome.error();
    result["error_code"] = e.code.empty() ? std::string(protocol::codes::kUnhandledException) : e.code;
    result["error_message"] = e.message;
    emit("error", "slurm_step_ended", result["error_code"].get<std::string>() + ": " + e.message);
  }
  if (auto st = util::write_file_atomic(dir / "result.json", protocol::dump_json(result, 2)); !st) {
    std::fprintf(stderr, "rayvault-worker slurm-step: cannot write the result: %s\n", st.error().message.c_str());
    return 1;
  }
  return outcome ? 0 : 3;
}

}  // namespace rayvault::worker
