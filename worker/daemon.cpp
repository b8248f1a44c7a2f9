// Wiring of the worker daemon; no logic of its own beyond start-up checks.
#include "worker/daemon.hpp"

#include <cstdio>
#include <map>
#include <thread>

#include "platform/process.hpp"
#include "platform/system_info.hpp"
#include "protocol/errors.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"
#include "worker/bind_policy.hpp"
#include "worker/blob_store.hpp"
#include "worker/caps.hpp"
#include "worker/engine.hpp"
#include "worker/http_server.hpp"

namespace rayvault::worker {
namespace {

int fail(const Error& e) {
  std::fprintf(stderr, "rayvault-worker: %s\n", e.message.c_str());
  return protocol::exit_code(e.kind);
}

namespace fs = std::filesystem;

struct Secrets {
  std::string current, previous;
  std::vector<std::string> list() const {
    std::vector<std::string> out{current};
    if (!previous.empty()) out.push_back(previous);
    return out;
  }
};

// The secrets: from the secrets file when one is given (KEY=VALUE lines, the same names as the
// environment's), else from the environment. Values trimmed as the Python worker does; a blank one
// counts as unset. Error (config) when there is no current secret.
Result<Secrets> load_secrets(const fs::path& file) {
  std::map<std::string, std::string> values;
  if (!file.empty()) {
    auto text = util::read_file(file, 64u << 10);
    if (!text) return Error(ErrorKind::config, "cannot read the secrets file " + util::u8(file) + ": " + text.error().message);
    values = util::parse_key_value_text(*text);
  } else {
    for (const char* name : {"RAYVAULT_CLUSTER_SECRET_CURRENT", "RAYVAULT_CLUSTER_SECRET", "RAYVAULT_CLUSTER_SECRET_PREVIOUS"})
      values[name] = platform::getenv_string(name);
  }
  auto get = [&values](const char* name) {
    const auto it = values.find(name);
    return it == values.end() ? std::string() : util::trim(it->second);
  };
  Secrets s{get("RAYVAULT_CLUSTER_SECRET_CURRENT"), get("RAYVAULT_CLUSTER_SECRET_PREVIOUS")};
  if (s.current.empty()) s.current = get("RAYVAULT_CLUSTER_SECRET");
  if (s.current.empty())
    return Error(ErrorKind::config, std::string("no cluster secret: set RAYVAULT_CLUSTER_SECRET") +
                                        (file.empty() ? "" : " in " + util::u8(file)) +
                                        " (and RAYVAULT_CLUSTER_SECRET_PREVIOUS while rotating)");
  return s;
}

// SIGHUP: the secrets file again, for every request from now on; a file that cannot be read or
// holds no secret changes nothing.
void reload_secrets(const fs::path& file, WorkerServer& server) {
  if (file.empty()) {
    std::fprintf(stderr, "rayvault-worker: SIGHUP: the secrets come from the environment, which a running "
                         "process cannot reread; give --secrets-file, or restart the worker to change them\n");
    return;
  }
  auto next = load_secrets(file);
  if (!next) {
    std::fprintf(stderr, "rayvault-worker: SIGHUP: secrets not changed: %s\n", next.error().message.c_str());
    return;
  }
  server.set_secrets(next->list());
  std::fprintf(stderr, "rayvault-worker: SIGHUP: secrets read again from %s (%s)\n", util::u8(file).c_str(),
               next->previous.empty() ? "current only" : "current and previous");
}

// The Slurm settings when the worker runs steps through Slurm; null otherwise.
Result<std::shared_ptr<const slurm::Config>> slurm_settings(const DaemonOptions& o) {
  bool on = o.launch == "slurm";
  if (o.launch != "slurm" && o.launch != "local") return Error(ErrorKind::config, "--launch must be local or slurm");
  if (!o.slurm_config.empty()) {
    auto text = util::read_file(o.slurm_config, 1u << 20);
    if (!text) return Error(ErrorKind::config, "cannot read the Slurm settings " + util::u8(o.slurm_config) + ": " + text.error().message);
    if (auto doc = protocol::parse_json(*text); doc && doc->is_object() && protocol::string_field(*doc, "launch") == "slurm") on = true;
  }
  if (!on) return std::shared_ptr<const slurm::Config>();
  if (platform::os_name() == "windows")
    return Error(ErrorKind::config, "the Slurm launch mode runs on a cluster's Linux (or macOS) nodes, not on Windows");
  auto config = slurm::load_config(o.slurm_config);
  if (!config) return config.error();
  if (auto st = slurm::complete_config(*config, fs::absolute(o.root)); !st) return st.error();
  std::error_code ec;
  fs::create_directories(config->shared_dir, ec);
  if (ec) return Error(ErrorKind::config, "cannot make the Slurm shared folder " + util::u8(config->shared_dir) + ": " + ec.message());
  if (config->worker_binary.empty() || !fs::is_regular_file(config->worker_binary, ec))
    return Error(ErrorKind::config, "the program the batch jobs run is missing: " + util::u8(config->worker_binary) +
                                        " (set worker_binary in the Slurm settings)");
  const fs::path sbatch = config->bin_dir.empty() ? platform::find_executable("sbatch") : config->bin_dir / "sbatch";
  if (sbatch.empty() || !fs::exists(sbatch, ec))
    std::fprintf(stderr, "rayvault-worker: warning: Slurm's sbatch is not installed here; Slurm jobs will fail SLURM_MISSING\n");
  return std::shared_ptr<const slurm::Config>(std::make_shared<slurm::Config>(std::move(config).value()));
}

// What caps say of the Slurm cluster: the lane's last sinfo reading and the settings.
std::function<protocol::json()> slurm_caps(Engine& engine) {
  const auto config = engine.config().slurm;
  if (!config) return {};
  return [&engine, config] {
    protocol::json info = engine.slurm_info();
    info["steps"] = config->steps;
    info["max_jobs"] = config->max_jobs;
    info["allowed_partitions"] = config->partitions;
    if (!config->gpu_model.empty()) info["gpu_model"] = config->gpu_model;
    if (config->gpu_vram_gb > 0) info["gpu_vram_gb"] = config->gpu_vram_gb;
    return info;
  };
}

}  // namespace

int run_daemon(DaemonOptions o) {
  auto secrets = load_secrets(o.secrets_file);
  // The secrets stay in this process only: no step's tool inherits them.
  for (const char* name : {"RAYVAULT_CLUSTER_SECRET_CURRENT", "RAYVAULT_CLUSTER_SECRET", "RAYVAULT_CLUSTER_SECRET_PREVIOUS"})
    platform::unset_env(name);
  if (!secrets) return fail(secrets.error());
  if (!o.secrets_file.empty()) {
    std::error_code ec;
    const auto perms = fs::status(o.secrets_file, ec).permissions();
    if (!ec && (perms & (fs::perms::group_read | fs::perms::others_read)) != fs::perms::none)
      std::fprintf(stderr, "rayvault-worker: warning: the secrets file %s can be read by other users (chmod 600 it)\n",
                   util::u8(o.secrets_file).c_str());
  }
  if (!o.allow_any_bind && !is_loopback_or_tailnet(o.host))
    return fail(Error(ErrorKind::config, "refusing to listen on " + o.host +
                                             ": not loopback or a tailnet address (pass --allow-any-bind to do it on purpose)"));
  if (o.port < 0 || o.port > 65535) return fail(Error(ErrorKind::config, "--port must be in 0..65535"));
  if (o.worker_id.empty()) o.worker_id = platform::hostname();
  if (!util::is_safe_component(o.worker_id))
    return fail(Error(ErrorKind::config, "worker id may hold only letters, digits, '.', '_' and '-'"));
  if (o.slots <= 0) o.slots = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

  // Signals are routed to one thread before any other thread starts. SIGHUP reads the secrets
  // again: rotation without stopping running jobs.
  std::atomic<WorkerServer*> server_ptr{nullptr};
  std::atomic<bool> stop_requested{false};
  std::atomic<bool> hup_early{false};
  platform::on_shutdown_signal(
      [&] {
        stop_requested = true;
        if (auto* s = server_ptr.load()) s->stop();
      },
      [file = o.secrets_file, &server_ptr, &hup_early] {
        if (auto* s = server_ptr.load()) reload_secrets(file, *s);
        else hup_early = true;  // read once the server exists
      });

  EngineConfig ec;
  ec.root = o.root;
  ec.worker_id = o.worker_id;
  ec.slots = o.slots;
  ec.job_timeout = std::chrono::seconds(o.job_timeout_sec);
  ec.step_config.env_file = o.env_file;
  ec.step_config.tts_parallel = o.tts_parallel;
  ec.step_config.tts_cache_max_bytes = static_cast<std::uintmax_t>(o.tts_cache_mb) << 20;
  ec.gpus = detect_gpus();  // GPU slots are fixed at start
  ec.jobs_per_gpu = o.jobs_per_gpu;
  auto slurm_config = slurm_settings(o);
  if (!slurm_config) return fail(slurm_config.error());
  ec.slurm = *slurm_config;
  if (!(o.blob_quota_gb >= 0) || o.blob_quota_gb > 1e6) return fail(Error(ErrorKind::config, "--blob-quota-gb must be 0 or more"));
  BlobStoreConfig bc;
  bc.dir = o.root / "blobs";
  bc.quota_bytes = static_cast<std::uint64_t>(o.blob_quota_gb * 1024 * 1024 * 1024);
  auto blobs = BlobStore::open(bc);
  if (!blobs) return fail(blobs.error());
  ec.blobs = std::move(blobs).value();
  auto engine = Engine::open(ec, make_default_steps());
  if (!engine) return fail(engine.error());

  CapsCache caps(CapsInputs{(*engine)->supported_steps(), o.slots, worker_protocol_features(), (*engine)->config().step_config,
                           (*engine)->gpu_slots(), o.tags, slurm_caps(**engine), ec.gpus},
                 std::chrono::seconds(std::max(5, o.caps_refresh_sec)));
  ServerConfig sc;
  sc.host = o.host;
  sc.port = o.port;
  sc.secrets = secrets->list();
  sc.allow_custom_inputs_hash = o.allow_custom_inputs_hash;
  sc.max_body_bytes = o.max_body_bytes;
  sc.idle_timeout_sec = o.idle_timeout_sec;
  sc.max_connections = o.max_connections;
  sc.max_connections_per_peer = o.max_connections_per_peer;
  WorkerServer server(sc, **engine, caps);
  auto port = server.bind();
  if (!port) return fail(port.error());
  (*engine)->start();
  server_ptr = &server;
  if (hup_early.exchange(false)) reload_secrets(o.secrets_file, server);
  if (stop_requested) server.stop();

  std::fprintf(stderr, "rayvault-worker %s (%s) listening on %s:%d, root %s, %d slots, %d GPU slots%s%s\n", RAYVAULT_VERSION,
               o.worker_id.c_str(), o.host.c_str(), *port, util::u8((*engine)->config().root).c_str(), o.slots,
               (*engine)->gpu_slots(), ec.slurm ? ", Slurm launch" : "",
               secrets->previous.empty() ? "" : ", accepting the previous secret");
  if (!o.ready_file.empty()) {
    // Ready means listening with its capabilities known: /health answers from the start (with
    // `caps_pending` until the probes are done), the ready file waits for them.
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!caps.wait_detected(std::chrono::milliseconds(100)) && !stop_requested && std::chrono::steady_clock::now() < give_up) {
    }
    if (!stop_requested && !caps.wait_detected(std::chrono::milliseconds(0)))
      std::fprintf(stderr, "rayvault-worker: capability detection is taking long; writing the ready file anyway\n");
  }
  if (!o.ready_file.empty() && !stop_requested) {
    const protocol::json ready{{"host", o.host}, {"port", *port}, {"pid", platform::process_id()}, {"worker_id", o.worker_id}};
    if (auto st = util::write_file_atomic(o.ready_file, protocol::dump_json(ready)); !st) return fail(st.error());
  }
  server.serve();
  server_ptr = nullptr;
  std::fprintf(stderr, "rayvault-worker: stopping; running jobs are marked WORKER_RESTARTED\n");
  (*engine)->stop();
  return 0;
}

}  // namespace rayvault::worker
