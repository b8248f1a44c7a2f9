// `submit`: reads the job from the command line and places it on the mesh (controller/dispatch).
#include <cstdio>
#include <thread>

#include "controller/cli/commands.hpp"
#include "controller/batch.hpp"
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
  if (!o.batch_file.empty()) {
    if (!o.job_id.empty() || !o.step_name.empty() || !o.payload_json.empty() || !o.payload_file.empty() || !o.inputs.empty())
      return print_error(Error(ErrorKind::invalid_input, "--batch takes the jobs from its file: give no --job-id, --step-name or payload"));
    BatchOptions b{o.run_id, o.force, o.no_local_fallback, o.priority, o.max_per_worker};
    b.no_stage = o.no_stage;
    return run_batch(*cluster, util::path_from_utf8(o.batch_file), b);
  }
  if (o.run_id.empty() || o.job_id.empty() || o.step_name.empty())
    return print_error(Error(ErrorKind::invalid_input, "submit needs --run-id, --job-id and --step-name (or --batch FILE)"));
  auto payload = read_json_arg(o.payload_json, o.payload_file, "payload");
  if (!payload) return print_error(payload.error());
  auto req_doc = read_json_arg(o.requirements_json, o.requirements_file, "requirements");
  if (!req_doc) return print_error(req_doc.error());
  // --input FIELD=PATH sets the field and marks it as a file to send.
  json with_inputs = payload->is_null() ? json::object() : *payload;
  std::vector<std::string> input_fields;
  for (const auto& arg : o.inputs) {
    const auto eq = arg.find('=');
    const std::string field = util::trim(arg.substr(0, eq));
    if (eq == std::string::npos || field.empty() || util::trim(arg.substr(eq + 1)).empty())
      return print_error(Error(ErrorKind::invalid_input, "--input takes FIELD=PATH (for example video_path=final.mp4)"));
    if (!with_inputs.is_object()) break;  // prepare_job says what is wrong with the payload
    with_inputs[field] = arg.substr(eq + 1);
    input_fields.push_back(field);
  }
  const JobSpec spec{o.run_id, o.job_id, o.step_name, o.inputs_hash, with_inputs, *req_doc, o.force, input_fields, !o.no_stage};
  auto prepared = prepare_job(spec);
  if (!prepared) return print_error(prepared.error());
  auto& [req, requirements] = *prepared;
  for (const auto& w : requirements.warnings) std::fprintf(stderr, "rayvault-controller: warning: %s\n", w.c_str());
  auto ledger = state::Ledger::open(cluster->config().state_dir);
  if (!ledger) return print_error(ledger.error());

  DispatchOptions opts;
  opts.no_local_fallback = o.no_local_fallback;
  opts.priority = o.priority;
  auto out = dispatch_job(*cluster, **ledger, req, requirements, opts);
  if (!out) return print_error(out.error());
  return finish(*out);
}

}  // namespace rayvault::controller::cli
