// OPENCLAW_TASK {message, agent = "researcher", timeout_sec = 600, screenshot = false}: runs
// `openclaw agent --agent A --timeout T --message M` in the user's desktop session. Needs the
// openclaw CLI (OPENCLAW_MISSING) and a desktop session that answers (UI_SESSION_REQUIRED).
// Artifacts: openclaw_output.txt (what it printed), openclaw_result.json and, when asked, a
// screenshot of the desktop after the task.
#pragma once

#include "worker/step.hpp"

namespace rayvault::worker::steps {

class OpenclawTask final : public Step {
 public:
  std::string_view name() const override;
  Result<StepOutput> run(const StepContext& ctx) const override;
  bool owns_timeout_sec() const override { return true; }  // the agent's --timeout, not the job's
};

}  // namespace rayvault::worker::steps
