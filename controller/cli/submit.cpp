// `submit`: reads the job from the command line and places it on the mesh (controller/dispatch).
#include <cstdio>
#include <thread>

#include "controller/cli/commands.hpp"
#include "controller/dispatch.hpp"
#include "protocol/envelope.hpp"
#include "protocol/errors.hpp"
#include "protocol/ids.hpp"
#include "protocol/job_record.hpp"
#include "protocol/steps.hpp"
#include "state/ledger.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"

namespace rayvault::controller::cli {
namespace {

namespace fs = std::filesystem;

Result<json> read_json_arg(const std::string& inline_text, const std::string& file, const char* what) {
  if (!inline_text.empty() && !file.empty())
    return Error(ErrorKind::invalid_input, std::string("give --") + what + "-json or --" + what + "-file, not both");
  std::string text = inline_text;
  if (!file.empty()) {
    auto read = util::read_file(util::path_from_utf8(file), 16u << 20);
    if (!read) return Error(ErrorKind::invalid_input, std::string("cannot read --") + what + "-file: " + read.error().message);
    text = std::move(read).value();
  }
  if (text.empty()) return json();
  auto parsed = protocol::parse_json(text);
  if (!parsed) return Error(ErrorKind::invalid_input, std::string(what) + ": " + parsed.error().message);
  return parsed;
}

int finish(json out) {
  const bool ok = out.value("ok", false) == true;
  print_json(out);
  return ok ? 0 : 2;
}

}  // namespace

int run_submit(const GlobalOptions& g, const SubmitOptions& o) {
  auto cluster = Cluster::load(g);
  if (!cluster) return print_error(cluster.error());
  // Without a secret no worker can be asked: say so instead of quietly running locally.
  if (auto st = cluster->require_secret(); !st) return print_error(st.error());
  auto run_id = protocol::normalize_id(o.run_id, "--run-id");
  if (!run_id) return print_error(run_id.error());
  auto job_id = protocol::normalize_id(o.job_id, "--job-id");
  if (!job_id) return print_error(job_id.error());
  auto payload = read_json_arg(o.payload_json, o.payload_file, "payload");
  if (!payload) return print_error(payload.error());
  if (payload->is_null()) *payload = json::object();
  if (!payload->is_object()) return print_error(Error(ErrorKind::invalid_input, "payload must be a JSON object"));
  auto req_doc = read_json_arg(o.requirements_json, o.requirements_file, "requirements");
  if (!req_doc) return print_error(req_doc.error());
  if (req_doc->is_null() && payload->contains("requirements")) *req_doc = (*payload)["requirements"];
  // Pose recovery needs a CUDA GPU with room for the model unless the job says otherwise.
  if (req_doc->is_null() && protocol::steps::normalize(o.step_name) == protocol::steps::kPoseEstimate)
    *req_doc = json{{"gpu_required", true}, {"min_vram_gb", 8}};
  auto requirements = parse_requirements(*req_doc);
  if (!requirements) return print_error(requirements.error());
  for (const auto& w : requirements->warnings) std::fprintf(stderr, "rayvault-controller: warning: %s\n", w.c_str());

  JobRequest req{*run_id, *job_id, protocol::steps::normalize(o.step_name), protocol::normalize_hash(o.inputs_hash),
                 *payload, o.force};
  if (req.inputs_hash.empty()) req.inputs_hash = protocol::inputs_hash(*payload);
  if (req.inputs_hash.size() < 16 || !util::is_safe_component(req.inputs_hash))
    return print_error(Error(ErrorKind::invalid_input, "--inputs-hash must be 16 to 128 letters, digits, '.', '_' or '-'"));
  if (req.step_name.empty()) return print_error(Error(ErrorKind::invalid_input, "--step-name is required"));
  auto ledger = state::Ledger::open(cluster->config().state_dir);
  if (!ledger) return print_error(ledger.error());

  DispatchOptions opts{o.no_local_fallback, o.priority};
  auto out = dispatch_job(*cluster, **ledger, req, *requirements, opts);
  if (!out) return print_error(out.error());
  return finish(*out);
}

}  // namespace rayvault::controller::cli
