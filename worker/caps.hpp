// The worker's capabilities: detected once at start and refreshed in the background, so that
// /health and /caps never run a tool while a client waits.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "protocol/json.hpp"
#include "worker/step.hpp"

namespace rayvault::worker {

using protocol::json;

struct CapsInputs {
  std::vector<std::string> supported_steps;
  int slots = 1;
  std::vector<std::string> protocol_features;
  StepConfig step_config;  // where TTS keys and endpoints are configured
  int gpu_slots = 0;        // the engine's GPU slots
  std::vector<std::string> tags;  // --tags: what the admin says this node is for (matched by requirements.tags)
  // The Slurm launch mode's view of its cluster (Engine::slurm_info plus the settings), read on
  // each answer; empty: not a Slurm worker.
  std::function<json()> slurm;
  std::vector<GpuDevice> gpus;  // the GPUs found at start: the quick caps show them before the first detection
};

// A Slurm worker's caps: the `slurm` object (partitions, GPU types and counts, free GPUs) and the
// normalized GPU keys describing the cluster's GPUs, so requirements match it as a GPU node.
void apply_slurm_caps(json& caps, const json& slurm);

// The TTS provider a job that names none gets: TTS_PROVIDER by its canonical name (lower-cased;
// "moss" is "moss_tts"), else this worker's default, espeak-ng, when it runs TTS_RENDER_CHUNKS,
// else "none" (the Python nodes default to mock).
inline constexpr std::string_view kDefaultTtsProvider = "espeak-ng";
std::string default_tts_provider(const std::vector<std::string>& supported_steps, const StepConfig& config = {});

// Runs the probes (nvidia-smi, ffmpeg -version, python3 --version, ...; all at once) and returns
// the caps object: the eight normalized keys, the compatibility keys and our extensions.
json detect_caps(const CapsInputs& inputs);
// The caps a worker answers with before its first detection: the same keys from what is known
// without running a tool (tool versions and the session say "detecting"), and `caps_pending: true`.
json quick_caps(const CapsInputs& inputs);

// The GPUs nvidia-smi lists (platform::nvidia_gpus), VRAM in GiB (MiB / 1024, 2 decimals).
std::vector<GpuDevice> detect_gpus();

class CapsCache {
 public:
  // Starts detecting at once in the background; get() answers the quick caps until then.
  CapsCache(CapsInputs inputs, std::chrono::seconds refresh_every);
  ~CapsCache();
  json get() const;
  // Blocks until the first detection is done (true) or `within` passes (false).
  bool wait_detected(std::chrono::milliseconds within);

 private:
  void loop();
  CapsInputs inputs_;
  std::chrono::seconds every_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  json caps_;
  bool detected_ = false;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace rayvault::worker
