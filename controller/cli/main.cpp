// rayvault-controller: the command line (the only translation unit with CLI11).
#include <CLI/CLI.hpp>

#include <algorithm>

#include "platform/system_info.hpp"

#include "controller/cli/commands.hpp"

int main(int argc, char** argv) {
  using namespace rayvault::controller;
  // A worker that closes a connection mid-request fails that request, not the controller.
  rayvault::platform::ignore_broken_pipe();
  CLI::App app{"rayvault-controller: runs RayVault cluster jobs on the workers of the tailnet"};
  app.set_version_flag("--version", RAYVAULT_VERSION);
  app.require_subcommand(1);
  app.fallthrough();
  GlobalOptions g;
  app.add_option("--nodes-file", g.nodes_file, "the cluster's nodes.json")->capture_default_str();
  app.add_option("--cluster-secret", g.cluster_secret, "shared secret (prefer the environment variable)");

  auto* health = app.add_subcommand("health", "probe every enabled worker's /health");
  bool health_table = false;
  health->add_flag("--table", health_table, "print the node view as a table instead of JSON");

  auto* nodes = app.add_subcommand("nodes", "every worker node: reachable, latency, load, caps, cool-down");
  cli::ViewFormat nodes_format = cli::ViewFormat::automatic;
  cli::JobsOptions jobs_opts;
  auto* jobs = app.add_subcommand("jobs", "submissions the ledger knows, newest first");
  jobs->add_option("--status", jobs_opts.status, "only jobs in this status (succeeded, failed, running, ...)");
  jobs->add_option("--run-id", jobs_opts.run_id, "only this run's jobs");
  jobs->add_option("--limit", jobs_opts.limit, "at most this many")->check(CLI::Range(1, 1000000))->capture_default_str();
  for (auto [cmd, fmt] : {std::pair<CLI::App*, cli::ViewFormat*>{nodes, &nodes_format}, {jobs, &jobs_opts.format}}) {
    cmd->add_flag_callback("--table", [fmt] { *fmt = cli::ViewFormat::table; }, "a table (the default on a terminal)");
    cmd->add_flag_callback("--json", [fmt] { *fmt = cli::ViewFormat::json; }, "JSON (the default when piped)");
  }

  cli::CapsOptions caps_opts;
  auto* caps = app.add_subcommand("caps", "ask every enabled worker (or one) for its capabilities");
  caps->add_option("--node-id", caps_opts.node_id, "only this node");
  caps->add_option("--run-id", caps_opts.run_id, "run id of the probe")->capture_default_str();

  cli::SubmitOptions s;
  auto* submit = app.add_subcommand("submit", "run a job on a fitting worker, or locally");
  submit->add_option("--run-id", s.run_id, "the run (with --batch: for jobs that name none)");
  submit->add_option("--job-id", s.job_id);
  submit->add_option("--step-name", s.step_name);
  submit->add_option("--batch", s.batch_file, "a JSON list of jobs, or one JSON job a line: run them all over the mesh");
  submit->add_option("--max-per-worker", s.max_per_worker, "with --batch: jobs in flight on one worker (default: its slots)")
      ->check(CLI::Range(1, 256));
  submit->add_option("--payload-json", s.payload_json, "the job's payload as JSON text");
  submit->add_option("--payload-file", s.payload_file, "a file holding the payload");
  submit->add_option("--requirements-json", s.requirements_json, "os_in, min_ram_gb, min_vram_gb, gpu_required, davinci_available");
  submit->add_option("--requirements-file", s.requirements_file);
  submit->add_option("--input", s.inputs, "FIELD=PATH: payload.FIELD is this local file, sent to the worker (repeat for more)");
  submit->add_flag("--no-stage", s.no_stage,
                   "send paths as they are (files the worker itself can read) instead of sending the files");
  submit->add_option("--inputs-hash", s.inputs_hash, "use this inputs_hash instead of the payload's hash");
  submit->add_flag("--force", s.force, "run again: bypass the local cache and ask the worker to re-run a finished job");
  submit->add_flag("--no-local-fallback", s.no_local_fallback, "fail instead of running locally");
  submit->add_option("--priority", s.priority, "higher runs first in the worker's queue (-1000..1000)")
      ->check(CLI::Range(-1000, 1000));

  cli::SyncOptions y;
  auto* sync = app.add_subcommand("sync-artifacts", "download a job's receipt, log and artifacts (resumable)");

  cli::JobOptions st;
  auto* status = app.add_subcommand("status", "show what the ledger and the worker know of a job");
  cli::JobOptions lg;
  auto* logs = app.add_subcommand("logs", "print a job's log lines");

  cli::CancelOptions cn;
  auto* cancel = app.add_subcommand("cancel", "cancel a queued or running job on its node");
  // Commands about one existing job find it by run and job id; node and hash default to the ledger's.
  for (auto [cmd, opts] : {std::pair<CLI::App*, cli::SyncOptions*>{sync, &y}, {status, &st}, {logs, &lg}, {cancel, &cn}}) {
    cmd->add_option("--run-id", opts->run_id)->required();
    cmd->add_option("--job-id", opts->job_id)->required();
    cmd->add_option("--node-id", opts->node_id, "the node that ran it (default: from the ledger)");
    cmd->add_option("--inputs-hash", opts->inputs_hash, "the job's inputs_hash (default: from the ledger)");
  }
  cancel->add_option("--reason", cn.reason, "why, recorded in the job's message and log");
  cancel->add_option("--wait-sec", cn.wait_sec, "how long to follow a running job while it stops")
      ->check(CLI::Range(1, 3600))->capture_default_str();

  // CLI11 takes the arguments in reverse order, without the program name.
  std::vector<std::string> args = rayvault::platform::utf8_arguments(argc, argv);
  std::reverse(args.begin(), args.end());
  args.pop_back();
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    if (*health) return cli::run_health(g, health_table ? cli::ViewFormat::table : cli::ViewFormat::json);
    if (*nodes) return cli::run_nodes(g, nodes_format);
    if (*jobs) return cli::run_jobs(g, jobs_opts);
    if (*caps) return cli::run_caps(g, caps_opts);
    if (*submit) return cli::run_submit(g, s);
    if (*sync) return cli::run_sync_artifacts(g, y);
    if (*status) return cli::run_status(g, st);
    if (*logs) return cli::run_logs(g, lg);
    if (*cancel) return cli::run_cancel(g, cn);
  } catch (const std::exception& ex) {
    return print_error(rayvault::Error(rayvault::ErrorKind::internal, std::string("unexpected error: ") + ex.what()));
  }
  return 2;
}
