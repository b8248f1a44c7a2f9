// The worker daemon: options, and the function that wires engine, caps and server together.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace rayvault::worker {

struct DaemonOptions {
  std::string host = "127.0.0.1";
  int port = 8787;
  std::filesystem::path root = "state/worker";
  std::string worker_id;  // default: the host name
  int slots = 0;          // default: the core count
  int job_timeout_sec = 1800;
  int caps_refresh_sec = 300;
  std::size_t max_body_bytes = 4u << 20;
  int idle_timeout_sec = 15;          // a connection silent this long is closed
  int max_connections = 900;          // open at once, in all
  int max_connections_per_peer = 256;  // open at once from one address
  bool allow_any_bind = false;
  bool allow_custom_inputs_hash = false;
  int jobs_per_gpu = 1;               // POSE_ESTIMATE jobs a GPU runs at once
  int tts_cache_mb = 2048;            // the TTS chunk cache's size
  int tts_parallel = 2;               // TTS chunks of one job rendered at once
  double blob_quota_gb = 50;          // staged input files kept (<root>/blobs); 0: bounded by the disk only
  std::filesystem::path env_file;     // KEY=VALUE settings for steps; default <root>/worker.env
  std::vector<std::string> tags;      // advertised in caps; controllers match requirements.tags
  std::filesystem::path ready_file;  // written as JSON {host, port, pid, worker_id} once listening
  // KEY=VALUE file holding RAYVAULT_CLUSTER_SECRET(_CURRENT) and _PREVIOUS; read at start and on
  // each SIGHUP. Empty: the secrets come from the environment (read once).
  std::filesystem::path secrets_file;
  // "slurm": the steps the Slurm settings name run as Slurm batch jobs; "local": all run here.
  std::string launch = "local";
  std::filesystem::path slurm_config;  // the Slurm settings (JSON); "launch": "slurm" in it also turns it on
};

// Runs the worker until SIGINT/SIGTERM. The secret comes from the secrets file (read again on
// SIGHUP) or else the environment (RAYVAULT_CLUSTER_SECRET_CURRENT or RAYVAULT_CLUSTER_SECRET, and
// _PREVIOUS); never from a flag, which every user of the machine could read. Returns the process
// exit code: 0 after a clean stop, 3 for configuration errors, 5 when the port cannot be bound.
int run_daemon(DaemonOptions options);

}  // namespace rayvault::worker
