// Capability detection over the platform layer's system facts and the installed tools.
#include "worker/caps.hpp"

#include <algorithm>
#include <cmath>

#include "platform/process.hpp"
#include "platform/system_info.hpp"
#include "protocol/steps.hpp"
#include "util/strings.hpp"
#include "worker/tts/provider.hpp"

namespace rayvault::worker {
namespace {

using util::trim;

double round2(double v) { return std::round(v * 100.0) / 100.0; }


// First line a tool prints for a version query; empty when it is missing or fails.
std::string first_line_of(std::vector<std::string> argv) {
  platform::ProcessSpec spec;
  spec.argv = std::move(argv);
  spec.timeout = std::chrono::seconds(10);
  spec.max_stdout_bytes = 1 << 16;
  std::string err_first;
  spec.on_output_line = [&](std::string_view line) {
    if (err_first.empty()) err_first = std::string(line);
  };
  auto res = platform::run_process(spec);
  if (!res || res->exit_code != 0) return {};
  std::string text = res->stdout_text.empty() ? err_first : res->stdout_text;
  return trim(text.substr(0, text.find('\n')));
}

}  // namespace

std::vector<GpuDevice> detect_gpus() {
  std::vector<GpuDevice> out;
  for (const auto& g : platform::nvidia_gpus()) out.push_back({g.index, g.model, round2(g.memory_mib / 1024.0), g.driver});
  return out;
}

std::string default_tts_provider(const std::vector<std::string>& supported_steps, const StepConfig& config) {
  if (std::string configured = tts::canonical_name(config.setting("TTS_PROVIDER")); !configured.empty()) return configured;
  const bool tts = std::find(supported_steps.begin(), supported_steps.end(), protocol::steps::kTtsRenderChunks) !=
                   supported_steps.end();
  return tts ? std::string(kDefaultTtsProvider) : "none";
}

json detect_caps(const CapsInputs& inputs) {
  // The normalized keys describe the first GPU; `gpus` lists them all.
  const std::vector<GpuDevice> gpus = detect_gpus();
  const std::string gpu_model = gpus.empty() ? std::string() : gpus[0].model;
  const double vram_gb = gpus.empty() ? 0.0 : gpus[0].vram_gb;
  json gpu_list = json::array();
  for (const auto& g : gpus) gpu_list.push_back({{"index", g.index}, {"model", g.model}, {"vram_gb", g.vram_gb}, {"driver", g.driver}});
  std::string python = first_line_of({"python3", "--version"});
  if (python.empty()) python = first_line_of({"python", "--version"});
  const std::string python_version = python.rfind("Python ", 0) == 0 ? python.substr(7) : (python.empty() ? "missing" : python);
  const std::string ffmpeg_line = first_line_of({"ffmpeg", "-version"});
  const std::string ffprobe_line = first_line_of({"ffprobe", "-version"});
  const bool has_ffprobe = !platform::find_executable("ffprobe").empty();
  std::string openclaw = inputs.step_config.setting("OPENCLAW_BIN");
  if (openclaw.empty()) openclaw = "openclaw";
  const bool has_openclaw = !platform::find_executable(openclaw).empty();
  const std::string pose_runner = inputs.step_config.setting("POSE_RUNNER");
  const auto runner_argv = util::split_command_line(pose_runner);
  const bool runner_found = !runner_argv.empty() && !platform::find_executable(runner_argv[0]).empty();
  const json tool_versions = {
      {"ffmpeg", ffmpeg_line.empty() ? "missing" : ffmpeg_line},
      {"ffprobe", ffprobe_line.empty() ? "missing" : ffprobe_line},
      {"espeak-ng", [] { const auto v = first_line_of({"espeak-ng", "--version"}); return v.empty() ? std::string("missing") : v; }()},
      {"openclaw", [&] {
         if (!has_openclaw) return std::string("missing");
         const auto v = first_line_of({openclaw, "--version"});
         return v.empty() ? std::string("present") : v;
       }()},
      {"pose_runner", pose_runner.empty() ? "not configured" : runner_found ? "configured" : "configured, not found"},
  };
  const auto session = platform::ui_session();
  std::string davinci_path = platform::getenv_string("RAYVAULT_DAVINCI_RESOLVE");
  bool davinci = !davinci_path.empty() && !platform::find_executable(davinci_path).empty();
  if (!davinci) davinci = !platform::find_executable("resolve").empty();
  const std::string os = platform::os_name();
  const auto& steps = inputs.supported_steps;
  const bool tts = std::find(steps.begin(), steps.end(), protocol::steps::kTtsRenderChunks) != steps.end();

  json caps = {
      {"os", os},
      {"cpu", platform::cpu_model()},
      {"ram_gb", round2(static_cast<double>(platform::total_ram_bytes()) / (1024.0 * 1024.0 * 1024.0))},
      {"gpu_model", gpu_model},
      {"vram_gb", vram_gb},
      {"python_version", python_version},
      {"ffmpeg_version", ffmpeg_line.empty() ? "missing" : ffmpeg_line},
      {"davinci_available", davinci},
      // Compatibility keys of the reference worker.
      {"platform", os == "windows" ? "win32" : os},  // Python's sys.platform
      {"python", python_version},
      {"ffmpeg", !ffmpeg_line.empty()},
      {"ffprobe", has_ffprobe},
      {"openclaw_available", has_openclaw},
      {"gpu", !gpu_model.empty()},
      {"tts_provider", default_tts_provider(inputs.supported_steps, inputs.step_config)},
      {"ui_session_active", session.active},
      // Extensions.
      {"hostname", platform::hostname()},
      {"platform_release", platform::platform_string()},
      {"supported_steps", inputs.supported_steps},
      {"slots", inputs.slots},
      {"cpu_slots", inputs.slots},
      {"gpu_slots", inputs.gpu_slots},
      {"tags", inputs.tags},
      {"gpus", gpu_list},
      {"tool_versions", tool_versions},
      {"ui_session_detail", session.detail},
      {"protocol_features", inputs.protocol_features},
  };
  if (tts) {
    caps["tts_providers"] = tts::available_providers(inputs.step_config);
    caps["tts_parallel"] = inputs.step_config.tts_parallel;
  }
  return caps;
}

CapsCache::CapsCache(CapsInputs inputs, std::chrono::seconds refresh_every)
    : inputs_(std::move(inputs)), every_(refresh_every), caps_(detect_caps(inputs_)) {
  thread_ = std::thread([this] { loop(); });
}

CapsCache::~CapsCache() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

json CapsCache::get() const {
  json caps;
  {
    std::lock_guard lock(mu_);
    caps = caps_;
  }
  if (inputs_.slurm) apply_slurm_caps(caps, inputs_.slurm());
  return caps;
}

void apply_slurm_caps(json& caps, const json& slurm) {
  if (!slurm.is_object()) return;
  caps["launch"] = "slurm";
  caps["slurm"] = slurm;
  // The cluster's GPUs stand for this node's: the configured model, else the GRES type.
  std::string model = protocol::string_field(slurm, "gpu_model");
  // Else the first GRES type of the default partition, else of any partition.
  for (const bool want_default : {true, false})
    for (const auto& p : slurm.value("partitions", json::array()))
      if (model.empty() && (!want_default || p.value("default", false)))
        for (const auto& t : p.value("gpu_types", json::array()))
          if (model.empty() && t.is_string()) model = "Slurm " + t.get<std::string>();
  if (model.empty()) model = "Slurm GPU";
  if (slurm.value("gpus", 0) > 0 || slurm.contains("partitions")) {
    caps["gpu_model"] = model;
    caps["gpu"] = true;
    if (const auto v = slurm.find("gpu_vram_gb"); v != slurm.end() && v->is_number() && v->get<double>() > caps.value("vram_gb", 0.0))
      caps["vram_gb"] = v->get<double>();
  }
  if (const auto m = slurm.find("max_jobs"); m != slurm.end()) caps["gpu_slots"] = *m;
}

void CapsCache::loop() {
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, every_, [this] { return stop_; })) {
    lock.unlock();
    json fresh = detect_caps(inputs_);
    lock.lock();
    caps_ = std::move(fresh);
  }
}

}  // namespace rayvault::worker
