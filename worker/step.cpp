// Shared step plumbing: tool running with logging, payload field readers, the registry.
#include "worker/step.hpp"

#include <cmath>
#include <deque>

#include "platform/system_info.hpp"
#include "protocol/errors.hpp"
#include "protocol/steps.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"
#include "worker/steps/audio_postcheck.hpp"
#include "worker/steps/ffmpeg_probe.hpp"
#include "worker/steps/frame_sampling.hpp"
#include "worker/steps/openclaw_task.hpp"
#include "worker/steps/pose_estimate.hpp"
#include "worker/steps/tts_render_chunks.hpp"

namespace rayvault::worker {

std::string_view to_string(LogLevel level) {
  switch (level) {
    case LogLevel::info: return "info";
    case LogLevel::warning: return "warning";
    case LogLevel::error: return "error";
  }
  return "info";
}

std::string StepConfig::setting(const char* key) const {
  if (std::string v = util::trim(platform::getenv_string(key)); !v.empty()) return v;
  if (env_file.empty()) return {};
  std::error_code ec;
  if (!fs::is_regular_file(env_file, ec)) return {};
  auto text = util::read_file(env_file, 1u << 20);
  if (!text) return {};
  const auto values = util::parse_key_value_text(*text);
  const auto it = values.find(key);
  return it == values.end() ? std::string() : it->second;
}

Result<platform::ProcessResult> StepContext::run_tool(std::vector<std::string> argv, std::string_view missing_code,
                                                     bool capture_stdout) const {
  platform::ProcessSpec spec;
  spec.argv = std::move(argv);
  spec.capture_stdout = capture_stdout;
  return run_tool(std::move(spec), missing_code);
}

std::chrono::milliseconds StepContext::remaining(std::chrono::milliseconds cap) const {
  if (deadline == std::chrono::steady_clock::time_point::max()) return cap;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return std::max(std::chrono::milliseconds(0), std::min(cap, left));
}

Result<platform::ProcessResult> StepContext::run_tool(platform::ProcessSpec spec, std::string_view missing_code) const {
  const std::string tool = spec.argv.empty() ? std::string() : spec.argv[0];
  std::deque<std::string> tail;  // last lines, for the error message
  spec.timeout = remaining(timeout);
  if (spec.timeout.count() <= 0)
    return Error(ErrorKind::unavailable, "the job ran past its timeout of " + std::to_string(timeout.count()) + "s before " + tool,
                 std::string(protocol::codes::kTimeout));
  spec.cancel = cancel;
  // Service keys the worker holds are for its own requests, not for the tools it runs.
  for (const char* key : {"ELEVENLABS_API_KEY", "MOSS_TTS_API_KEY"}) spec.env.emplace_back(key, std::nullopt);
  auto caller_sees = std::move(spec.on_output_line);  // a step that reads the tool's messages itself
  spec.on_output_line = [&](std::string_view line) {
    if (caller_sees) caller_sees(line);
    if (line.empty()) return;
    if (log) log(LogLevel::info, "tool_output", line);
    tail.emplace_back(line.substr(0, 500));
    if (tail.size() > 5) tail.pop_front();
  };
  if (log) log(LogLevel::info, "tool_start", tool);
  auto res = platform::run_process(spec);
  if (!res) {
    if (res.error().kind == ErrorKind::unavailable)
      return Error(ErrorKind::unavailable, tool + " is not installed on this worker", std::string(missing_code));
    return Error(res.error().kind, res.error().message, std::string(protocol::codes::kCommandFailed));
  }
  if (res->timed_out)
    return Error(ErrorKind::unavailable, tool + " ran past the job timeout of " + std::to_string(timeout.count()) + "s",
                 std::string(protocol::codes::kTimeout));
  if (res->cancelled) return Error(ErrorKind::unavailable, tool + " was stopped", std::string(protocol::codes::kWorkerRestarted));
  if (res->exit_code != 0) {
    std::string detail;
    for (const auto& l : tail) detail += (detail.empty() ? "" : " | ") + l;
    return Error(ErrorKind::invalid_input,
                 tool + " exited with code " + std::to_string(res->exit_code) + (detail.empty() ? "" : ": " + detail),
                 std::string(protocol::codes::kCommandFailed));
  }
  return res;
}

Result<std::string> required_string(const json& payload, const char* key) {
  const auto it = payload.find(key);
  if (it == payload.end() || !it->is_string() || it->get_ref<const std::string&>().empty())
    return Error(ErrorKind::invalid_input, std::string("payload.") + key + " must be a non-empty string",
                 std::string(protocol::codes::kInvalidInput));
  const auto& s = it->get_ref<const std::string&>();
  if (s.find('\0') != std::string::npos)
    return Error(ErrorKind::invalid_input, std::string("payload.") + key + " holds a NUL byte",
                 std::string(protocol::codes::kInvalidInput));
  return s;
}

Result<std::string> required_path(const json& payload, const char* key) {
  auto raw = required_string(payload, key);
  if (!raw) return raw;
  std::string path = util::trim(*raw);
  if (path.empty())
    return Error(ErrorKind::invalid_input, std::string("payload.") + key + " must be a non-empty string",
                 std::string(protocol::codes::kInvalidInput));
  if (path[0] == '~' && (path.size() == 1 || path[1] == '/' || path[1] == '\\')) {
    if (const std::string home = platform::home_folder(); !home.empty()) path = home + path.substr(1);
  }
  return path;
}

Result<bool> optional_bool(const json& payload, const char* key, bool fallback) {
  const auto it = payload.find(key);
  if (it == payload.end() || it->is_null()) return fallback;
  if (it->is_boolean()) return it->get<bool>();
  if (it->is_number()) return it->get<double>() != 0;
  if (it->is_string())
    if (const auto b = util::parse_bool_text(it->get_ref<const std::string&>())) return *b;
  return Error(ErrorKind::invalid_input, std::string("payload.") + key + " must be true or false",
               std::string(protocol::codes::kInvalidInput));
}

Result<double> optional_seconds(const json& payload, const char* key, double fallback, double max) {
  const auto it = payload.find(key);
  if (it == payload.end() || it->is_null()) return fallback;
  const auto bad = [&] {
    return Error(ErrorKind::invalid_input,
                 std::string("payload.") + key + " must be a number of seconds up to " + std::to_string(static_cast<long long>(max)),
                 std::string(protocol::codes::kInvalidInput));
  };
  double value = 0;
  if (it->is_number()) {
    value = it->get<double>();
  } else if (it->is_string()) {
    const auto parsed = util::parse_number_text(it->get_ref<const std::string&>());
    if (!parsed) return bad();
    value = *parsed;
  } else {
    return bad();  // booleans, lists, objects
  }
  if (std::isnan(value) || value > max) return bad();
  return value > 0 ? value : fallback;
}

StepRegistry make_default_steps() {
  StepRegistry r;
  auto add = [&r](std::unique_ptr<Step> s) { r.emplace(std::string(s->name()), std::move(s)); };
  add(std::make_unique<steps::FfmpegProbe>());
  add(std::make_unique<steps::FrameSampling>());
  add(std::make_unique<steps::TtsRenderChunks>());
  add(std::make_unique<steps::AudioPostcheck>());
  add(std::make_unique<steps::OpenclawTask>());
  add(std::make_unique<steps::PoseEstimate>());
  return r;
}

}  // namespace rayvault::worker
