// OPENCLAW_TASK: checks tool and session first, then runs the agent with the job's limits.
#include "worker/steps/openclaw_task.hpp"

#include <chrono>
#include <cmath>

#include "platform/system_info.hpp"
#include "protocol/errors.hpp"
#include "protocol/steps.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"

namespace rayvault::worker::steps {
namespace {

constexpr std::size_t kMaxMessageBytes = 16000;  // the command line must fit Windows' 32767 characters

Error invalid(std::string message) {
  return Error(ErrorKind::invalid_input, std::move(message), std::string(protocol::codes::kInvalidInput));
}

}  // namespace

std::string_view OpenclawTask::name() const { return protocol::steps::kOpenclawTask; }

Result<StepOutput> OpenclawTask::run(const StepContext& ctx) const {
  const json& p = ctx.payload;
  auto message = required_string(p, "message");
  if (!message) return message.error();
  const std::string text = util::trim(*message);
  if (text.empty()) return invalid("payload.message must be a non-empty string");
  if (text.size() > kMaxMessageBytes) return invalid("payload.message is longer than " + std::to_string(kMaxMessageBytes) + " bytes");
  std::string agent = "researcher";
  if (const auto a = p.find("agent"); a != p.end() && !a->is_null()) {
    if (!a->is_string()) return invalid("payload.agent must be a string");
    agent = util::trim(a->get_ref<const std::string&>());
    if (agent.empty()) agent = "researcher";
    if (!util::is_safe_component(agent) || agent[0] == '-' || agent.size() > 64)
      return invalid("payload.agent must be an agent name (letters, digits, '.', '_', '-'): " + agent);
  }
  auto timeout = optional_seconds(p, "timeout_sec", 600.0, 86400.0);
  if (!timeout) return timeout.error();
  const auto screenshot_asked = optional_bool(p, "screenshot", false);
  if (!screenshot_asked) return screenshot_asked.error();
  const bool screenshot = *screenshot_asked;

  std::string binary = ctx.config.setting("OPENCLAW_BIN");
  if (binary.empty()) binary = "openclaw";
  if (platform::find_executable(binary).empty())
    return Error(ErrorKind::unavailable, "openclaw is not installed on this worker (" + binary + " not found on PATH)",
                 std::string(protocol::codes::kOpenclawMissing));
  const auto session = platform::ui_session();
  if (!session.active)
    return Error(ErrorKind::unavailable, "OPENCLAW_TASK needs a logged-in desktop session: " + session.detail,
                 std::string(protocol::codes::kUiSessionRequired));
  if (ctx.log) ctx.log(LogLevel::info, "ui_session", session.detail);

  // The agent gets its own limit; the process a little more, so the agent can report its timeout.
  const long long agent_timeout = std::llround(std::ceil(*timeout));
  StepContext limited = ctx;
  limited.timeout = std::min(ctx.timeout, std::chrono::seconds(agent_timeout + 30));
  const auto started = std::chrono::steady_clock::now();
  platform::ProcessSpec spec;
  spec.argv = {binary, "agent", "--agent", agent, "--timeout", std::to_string(agent_timeout), "--message", text};
  spec.capture_stdout = true;
  auto res = limited.run_tool(std::move(spec), protocol::codes::kOpenclawMissing);
  if (!res) return res.error();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  StepOutput out;
  if (auto st = util::write_file_atomic(ctx.staging_dir / "openclaw_output.txt", res->stdout_text); !st)
    return Error(st.error().kind, st.error().message, std::string(protocol::codes::kStorageFailed));
  out.artifacts.push_back("openclaw_output.txt");

  std::string shot_error;
  if (screenshot) {
    const fs::path png = ctx.staging_dir / "screenshot.png";
    platform::ProcessSpec grab;
    grab.argv = platform::screenshot_command(util::u8(png));
    grab.capture_stdout = false;
    StepContext quick = ctx;
    quick.timeout = std::min(ctx.timeout, std::chrono::seconds(30));
    if (grab.argv.empty()) {
      shot_error = "no display to capture";
    } else if (auto shot = quick.run_tool(std::move(grab), protocol::codes::kFfmpegMissing); !shot) {
      shot_error = shot.error().message;
    }
    std::error_code ec;
    if (shot_error.empty() && fs::is_regular_file(png, ec) && fs::file_size(png, ec) > 0) out.artifacts.push_back("screenshot.png");
    else if (shot_error.empty()) shot_error = "the capture wrote no picture";
    if (!shot_error.empty()) {
      fs::remove(png, ec);
      if (ctx.log) ctx.log(LogLevel::warning, "screenshot_failed", shot_error);
    }
  }
  // When the agent printed a JSON document, the result carries it as well as the text.
  json agent_output;
  if (auto parsed = protocol::parse_json(util::trim(res->stdout_text)); parsed && (parsed->is_object() || parsed->is_array()))
    agent_output = *parsed;
  const json result = {{"agent", agent},
                       {"message", text},
                       {"timeout_sec", agent_timeout},
                       {"exit_code", res->exit_code},
                       {"duration_sec", std::round(seconds * 1000.0) / 1000.0},
                       {"output_truncated", res->stdout_truncated},
                       {"output_bytes", res->stdout_text.size()},
                       {"agent_output", agent_output},
                       {"ui_session", session.detail},
                       {"screenshot", screenshot ? json(shot_error.empty() ? "screenshot.png" : "") : json(nullptr)},
                       {"screenshot_error", shot_error}};
  if (auto st = util::write_file_atomic(ctx.staging_dir / "openclaw_result.json", protocol::dump_json(result, 2)); !st)
    return Error(st.error().kind, st.error().message, std::string(protocol::codes::kStorageFailed));
  out.artifacts.push_back("openclaw_result.json");
  out.metrics = {{"agent", agent}, {"duration_sec", result["duration_sec"]}, {"output_bytes", res->stdout_text.size()},
                 {"screenshot", screenshot && shot_error.empty()}};
  out.message = "openclaw agent " + agent + " finished";
  return out;
}

}  // namespace rayvault::worker::steps
