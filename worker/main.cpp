// rayvault-worker: parses flags and environment, then runs the daemon.
#include <CLI/CLI.hpp>

#include <algorithm>

#include "platform/system_info.hpp"
#include "util/files.hpp"

#include "worker/daemon.hpp"
#include "worker/slurm.hpp"

int main(int argc, char** argv) {
  rayvault::platform::ignore_broken_pipe();  // a peer that hangs up must not end the worker
  // Inside a Slurm batch job the worker's own program runs one step (see worker/slurm.hpp).
  if (argc == 3 && std::string_view(argv[1]) == "slurm-step")
    return rayvault::worker::run_slurm_step(rayvault::util::path_from_utf8(rayvault::platform::utf8_arguments(argc, argv)[2]));
  rayvault::worker::DaemonOptions o;
  CLI::App app{"rayvault-worker: runs RayVault cluster job steps for controllers on the tailnet"};
  app.set_version_flag("--version", RAYVAULT_VERSION);
  std::string root = "state/worker";
  std::string ready;
  app.add_option("--host", o.host, "address to listen on (loopback or tailnet)")->envname("RAYVAULT_WORKER_HOST")->capture_default_str();
  app.add_option("--port", o.port, "port to listen on (0: any free port)")->envname("RAYVAULT_WORKER_PORT")->capture_default_str();
  app.add_option("--root", root, "folder for jobs, workspace and worker.db")->envname("RAYVAULT_WORKER_ROOT")->capture_default_str();
  app.add_option("--worker-id", o.worker_id, "worker id (default: host name)")->envname("RAYVAULT_WORKER_ID");
  app.add_option("--slots", o.slots, "jobs run at once (default: core count)")->envname("RAYVAULT_WORKER_SLOTS");
  app.add_option("--job-timeout-sec", o.job_timeout_sec, "longest a step may run")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--caps-refresh-sec", o.caps_refresh_sec, "how often capabilities are detected again")->capture_default_str();
  app.add_option("--max-body-bytes", o.max_body_bytes, "largest request body accepted")->capture_default_str();
  app.add_option("--idle-timeout-sec", o.idle_timeout_sec, "close a connection silent this long")
      ->check(CLI::Range(1, 3600))->capture_default_str();
  app.add_option("--max-connections", o.max_connections, "connections open at once, in all")
      ->check(CLI::Range(1, 100000))->capture_default_str();
  app.add_option("--max-connections-per-peer", o.max_connections_per_peer, "connections open at once from one address")
      ->check(CLI::Range(1, 100000))->capture_default_str();
  app.add_flag("--allow-any-bind", o.allow_any_bind, "listen on an address that is neither loopback nor tailnet");
  app.add_flag("--allow-custom-inputs-hash", o.allow_custom_inputs_hash,
               "accept jobs whose inputs_hash is not their payload's hash without payload_hmac (old controllers)");
  std::string env_file;
  app.add_option("--env-file", env_file, "KEY=VALUE settings for steps (TTS keys, endpoints); default <root>/worker.env")
      ->envname("RAYVAULT_WORKER_ENV_FILE");
  app.add_option("--tts-parallel", o.tts_parallel, "TTS chunks of one job rendered at once")
      ->envname("RAYVAULT_TTS_PARALLEL")->check(CLI::Range(1, 64))->capture_default_str();
  app.add_option("--tts-cache-mb", o.tts_cache_mb, "size of the TTS chunk cache (least recently used chunks go)")
      ->envname("RAYVAULT_TTS_CACHE_MB")->check(CLI::Range(0, 1 << 20))->capture_default_str();
  app.add_option("--blob-quota-gb", o.blob_quota_gb,
                 "room for staged input files (<root>/blobs); least recently used ones go past it; 0: the disk's room")
      ->capture_default_str();
  app.add_option("--jobs-per-gpu", o.jobs_per_gpu, "GPU jobs (POSE_ESTIMATE) each GPU runs at once")
      ->envname("RAYVAULT_JOBS_PER_GPU")->check(CLI::Range(1, 16))->capture_default_str();
  app.add_option("--tags", o.tags, "what this node is for (e.g. gpu,studio): jobs that ask for a tag go to nodes with it")
      ->envname("RAYVAULT_WORKER_TAGS")->delimiter(',');
  std::string secrets_file;
  app.add_option("--secrets-file", secrets_file,
                 "KEY=VALUE file with RAYVAULT_CLUSTER_SECRET and RAYVAULT_CLUSTER_SECRET_PREVIOUS, read again on SIGHUP")
      ->envname("RAYVAULT_WORKER_SECRETS_FILE");
  app.add_option("--launch", o.launch, "local: every step runs here; slurm: the steps the Slurm settings name run as Slurm jobs")
      ->envname("RAYVAULT_WORKER_LAUNCH")->check(CLI::IsMember({"local", "slurm"}))->capture_default_str();
  std::string slurm_config;
  app.add_option("--slurm-config", slurm_config, "the Slurm settings (JSON: partition, time limit, GPUs, shared folder...)")
      ->envname("RAYVAULT_WORKER_SLURM_CONFIG");
  app.add_option("--ready-file", ready, "write {host, port, pid, worker_id} here once listening");
  // CLI11 takes the arguments in reverse order, without the program name.
  std::vector<std::string> args = rayvault::platform::utf8_arguments(argc, argv);
  std::reverse(args.begin(), args.end());
  args.pop_back();
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  o.root = rayvault::util::path_from_utf8(root);
  o.ready_file = rayvault::util::path_from_utf8(ready);
  o.env_file = rayvault::util::path_from_utf8(env_file);
  o.secrets_file = rayvault::util::path_from_utf8(secrets_file);
  o.slurm_config = rayvault::util::path_from_utf8(slurm_config);
  return rayvault::worker::run_daemon(std::move(o));
}
