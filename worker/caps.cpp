// Capability detection over the platform layer's system facts and the installed tools.
#include "worker/caps.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <future>

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

namespace {

// What the probes found: tools' version lines, GPUs, the desktop session. Run at once, each in a
// thread of its own, so detection takes as long as the slowest tool.
struct Probes {
  bool pending = false;  // not detected yet: the quick caps a worker answers with at start
  std::vector<GpuDevice> gpus;
  std::string python, ffmpeg, ffprobe, espeak, openclaw_version;
  platform::UiSession session;
  json tts_providers = json::array();
};

Probes run_probes(const CapsInputs& inputs, const std::string& openclaw, bool has_openclaw) {
  auto version = [](std::vector<std::string> argv) { return std::async(std::launch::async, first_line_of, std::move(argv)); };
  auto gpus = std::async(std::launch::async, detect_gpus);
  auto python = std::async(std::launch::async, [] {
    std::string v = first_line_of({"python3", "--version"});
    return v.empty() ? first_line_of({"python", "--version"}) : v;
  });
  auto ffmpeg = version({"ffmpeg", "-version"});
  auto ffprobe = version({"ffprobe", "-version"});
  auto espeak = version({"espeak-ng", "--version"});
  auto claw = has_openclaw ? version({openclaw, "--version"}) : std::future<std::string>();
  auto session = std::async(std::launch::async, platform::ui_session);
  Probes p;
  const bool tts = std::find(inputs.supported_steps.begin(), inputs.supported_steps.end(), protocol::steps::kTtsRenderChunks) !=
                   inputs.supported_steps.end();
  if (tts) p.tts_providers = tts::available_providers(inputs.step_config);
  p.gpus = gpus.get();
  p.python = python.get();
  p.ffmpeg = ffmpeg.get();
  p.ffprobe = ffprobe.get();
  p.espeak = espeak.get();
  if (claw.valid()) p.openclaw_version = claw.get();
  p.session = session.get();
  return p;
}

json assemble_caps(const CapsInputs& inputs, const Probes& probes, bool has_openclaw) {
  const std::string pending = "detecting";
  const auto tool = [&](const std::string& line) { return probes.pending ? pending : line.empty() ? std::string("missing") : line; };
  // The normalized keys describe the first GPU; `gpus` lists them all.
  const auto& gpus = probes.gpus;
  const std::string gpu_model = gpus.empty() ? std::string() : gpus[0].model;
  const double vram_gb = gpus.empty() ? 0.0 : gpus[0].vram_gb;
  json gpu_list = json::array();
  for (const auto& g : gpus) gpu_list.push_back({{"index", g.index}, {"model", g.model}, {"vram_gb", g.vram_gb}, {"driver", g.driver}});
  const std::string& python = probes.python;
  const std::string python_version =
      probes.pending ? pending : python.rfind("Python ", 0) == 0 ? python.substr(7) : (python.empty() ? "missing" : python);
  const bool has_ffprobe = !platform::find_executable("ffprobe").empty();
  const std::string pose_runner = inputs.step_config.setting("POSE_RUNNER");
  const auto runner_argv = util::split_command_line(pose_runner);
  const bool runner_found = !runner_argv.empty() && !platform::find_executable(runner_argv[0]).empty();
  const json tool_versions = {
      {"ffmpeg", tool(probes.ffmpeg)},
      {"ffprobe", tool(probes.ffprobe)},
      {"espeak-ng", tool(probes.espeak)},
      {"openclaw", !has_openclaw ? std::string("missing") : probes.pending ? pending
                   : probes.openclaw_version.empty() ? std::string("present") : probes.openclaw_version},
      {"pose_runner", pose_runner.empty() ? "not configured" : runner_found ? "configured" : "configured, not found"},
  };
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
      {"ffmpeg_version", tool(probes.ffmpeg)},
      {"davinci_available", davinci},
      // Compatibility keys of the reference worker.
      {"platform", os == "windows" ? "win32" : os},  // Python's sys.platform
      {"python", python_version},
      {"ffmpeg", probes.pending ? !platform::find_executable("ffmpeg").empty() : !probes.ffmpeg.empty()},
      {"ffprobe", has_ffprobe},
      {"openclaw_available", has_openclaw},
      {"gpu", !gpu_model.empty()},
      {"tts_provider", default_tts_provider(inputs.supported_steps, inputs.step_config)},
      {"ui_session_active", probes.session.active},
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
      {"ui_session_detail", probes.pending ? pending : probes.session.detail},
      {"protocol_features", inputs.protocol_features},
  };
  if (tts) {
    caps["tts_providers"] = probes.tts_providers;
    caps["tts_parallel"] = inputs.step_config.tts_parallel;
  }
  if (probes.pending) caps["caps_pending"] = true;
  return caps;
}

std::string openclaw_of(const CapsInputs& inputs) {
  std::string openclaw = inputs.step_config.setting("OPENCLAW_BIN");
  return openclaw.empty() ? std::string("openclaw") : openclaw;
}

}  // namespace

json detect_caps(const CapsInputs& inputs) {
  const std::string openclaw = openclaw_of(inputs);
  const bool has_openclaw = !platform::find_executable(openclaw).empty();
  return assemble_caps(inputs, run_probes(inputs, openclaw, has_openclaw), has_openclaw);
}

json quick_caps(const CapsInputs& inputs) {
  Probes pending;
  pending.pending = true;
  pending.gpus = inputs.gpus;
  const std::string openclaw = openclaw_of(inputs);
  return assemble_caps(inputs, pending, !platform::find_executable(openclaw).empty());
}

CapsCache::CapsCache(CapsInputs inputs, std::chrono::seconds refresh_every)
    : inputs_(std::move(inputs)), every_(refresh_every), caps_(quick_caps(inputs_)) {
  // The probes run in the background from the start: the worker answers at once, with the quick
  // caps (`caps_pending`) until the first detection is done.
  thread_ = std::thread([this] { loop(); });
}

bool CapsCache::wait_detected(std::chrono::milliseconds within) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, within, [this] { return detected_ || stop_; }) && detected_;
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
  do {
    lock.unlock();
    json fresh;
    try {
      fresh = detect_caps(inputs_);
    } catch (const std::exception& ex) {  // no thread for a probe, a tool that cannot start: keep what we had
      std::fprintf(stderr, "rayvault-worker: capability detection failed this time: %s\n", ex.what());
    }
    lock.lock();
    if (!fresh.is_null()) caps_ = std::move(fresh);
    detected_ = true;
    cv_.notify_all();
  } while (!cv_.wait_for(lock, every_, [this] { return stop_; }));
}

}  // namespace rayvault::worker
