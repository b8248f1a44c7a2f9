// The interface every job step implements, and what a step is given to do its work.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "platform/process.hpp"
#include "protocol/json.hpp"
#include "util/error.hpp"

namespace rayvault::worker {

namespace fs = std::filesystem;
using protocol::json;

enum class LogLevel { info, warning, error };
std::string_view to_string(LogLevel level);

// The worker's settings for its steps (flags, environment and its KEY=VALUE file).
struct StepConfig {
  fs::path cache_dir;  // caches that outlive a job (TTS chunks) live under it
  // KEY=VALUE file read after the environment for provider keys and endpoints
  // (ELEVENLABS_API_KEY, MOSS_TTS_ENDPOINT, PIPER_MODEL, ...).
  fs::path env_file;
  int tts_parallel = 2;  // chunks of one job rendered at once
  std::uintmax_t tts_cache_max_bytes = std::uintmax_t{2048} << 20;  // least recently used chunks go past it

  // A setting: the environment first, then env_file; trimmed; "" when neither has it.
  std::string setting(const char* key) const;
};

// A GPU this node has, as nvidia-smi reports it.
struct GpuDevice {
  std::string index;  // CUDA_VISIBLE_DEVICES value
  std::string model;
  double vram_gb = 0;
  std::string driver;
};

struct StepContext {
  std::string run_id, job_id, step_name;
  const json& payload;
  fs::path staging_dir;     // empty folder the step writes its artifacts into
  fs::path output_dir;      // where the artifacts will live once the engine publishes them
  fs::path workspace_root;  // the only place output_dir may point to
  std::chrono::seconds timeout;
  const std::atomic<bool>* cancel = nullptr;
  std::function<void(LogLevel, std::string_view event, std::string_view message)> log;
  const StepConfig& config;
  const GpuDevice* gpu = nullptr;  // the GPU this job holds (steps that need one); null: none
  // When the whole job must end (its timeout counts from its start, over all its tools and
  // requests); run_tool gives each tool at most what is left.
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  // What is left of the job's time, at most `cap`; zero once the deadline has passed.
  std::chrono::milliseconds remaining(std::chrono::milliseconds cap) const;

  // Runs a tool with the job's timeout and cancel flag; its stderr lines go to the job log.
  // Maps "not installed" to missing_code (FFMPEG_MISSING, ...), a timeout to TIMEOUT, and a
  // non-zero exit to COMMAND_FAILED with the last lines the tool printed.
  Result<platform::ProcessResult> run_tool(std::vector<std::string> argv, std::string_view missing_code,
                                           bool capture_stdout = false) const;
  // The same with a full spec (stdin, environment); spec.timeout and spec.cancel are the job's, and
  // spec.on_output_line, when set, sees each line before the job log does.
  Result<platform::ProcessResult> run_tool(platform::ProcessSpec spec, std::string_view missing_code) const;
  bool cancelled() const { return cancel != nullptr && cancel->load(); }
};

struct StepOutput {
  json metrics = json::object();
  std::vector<std::string> artifacts;  // names relative to staging_dir, in the order to report
  std::string message;                 // a one-line summary
  bool verdict_failed = false;         // ran to the end, but its verdict is "failed" (QA gates)
};

class Step {
 public:
  virtual ~Step() = default;
  virtual std::string_view name() const = 0;
  // Runs the step. An Error with a wire code fails the job with exit_code 2; an exception fails it
  // with exit_code 1 and UNHANDLED_EXCEPTION.
  virtual Result<StepOutput> run(const StepContext& ctx) const = 0;
  // True for steps that run on a GPU: the engine runs them in GPU slots (one job per GPU unless
  // configured), apart from the CPU slots, and gives them the GPU they hold.
  virtual bool needs_gpu() const { return false; }
  // True for a step whose payload.timeout_sec is its own tool's limit (OPENCLAW_TASK's agent),
  // not a lower job timeout.
  virtual bool owns_timeout_sec() const { return false; }
};

using StepRegistry = std::map<std::string, std::unique_ptr<Step>, std::less<>>;

// The steps this build implements.
StepRegistry make_default_steps();

// Helpers for steps reading their payload; errors carry INVALID_INPUT.
Result<std::string> required_string(const json& payload, const char* key);

// A path field as the Python worker reads it: trimmed, and a leading "~" (alone or before a
// separator) is the user's home folder.
Result<std::string> required_path(const json& payload, const char* key);

// A yes/no field: true/false, a number (0 is false), or text parse_bool_text reads; null or
// missing mean `fallback`; anything else is INVALID_INPUT ("payload.KEY must be true or false").
Result<bool> optional_bool(const json& payload, const char* key, bool fallback);

// A duration in seconds as the Python worker reads it: a number or a numeric string; 0, negative,
// null or missing mean `fallback`; text, booleans, NaN and values over `max` are INVALID_INPUT.
Result<double> optional_seconds(const json& payload, const char* key, double fallback, double max);

}  // namespace rayvault::worker
