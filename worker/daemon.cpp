// Wiring of the worker daemon; no logic of its own beyond start-up checks.
#include "worker/daemon.hpp"

#include <cstdio>
#include <thread>

#include "platform/system_info.hpp"
#include "protocol/errors.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"
#include "worker/bind_policy.hpp"
#include "worker/caps.hpp"
#include "worker/engine.hpp"
#include "worker/http_server.hpp"

namespace rayvault::worker {
namespace {

int fail(const Error& e) {
  std::fprintf(stderr, "rayvault-worker: %s\n", e.message.c_str());
  return protocol::exit_code(e.kind);
}

}  // namespace

int run_daemon(DaemonOptions o) {
  // Trimmed as the Python worker does; a blank value counts as unset.
  std::string current = util::trim(platform::getenv_string("RAYVAULT_CLUSTER_SECRET_CURRENT"));
  if (current.empty()) current = util::trim(platform::getenv_string("RAYVAULT_CLUSTER_SECRET"));
  const std::string previous = util::trim(platform::getenv_string("RAYVAULT_CLUSTER_SECRET_PREVIOUS"));
  // The secrets stay in this process only: no step's tool inherits them.
  for (const char* name : {"RAYVAULT_CLUSTER_SECRET_CURRENT", "RAYVAULT_CLUSTER_SECRET", "RAYVAULT_CLUSTER_SECRET_PREVIOUS"})
    platform::unset_env(name);
  if (current.empty())
    return fail(Error(ErrorKind::config,
                      "no cluster secret: set RAYVAULT_CLUSTER_SECRET (and RAYVAULT_CLUSTER_SECRET_PREVIOUS while rotating)"));
  if (!o.allow_any_bind && !is_loopback_or_tailnet(o.host))
    return fail(Error(ErrorKind::config, "refusing to listen on " + o.host +
                                             ": not loopback or a tailnet address (pass --allow-any-bind to do it on purpose)"));
  if (o.port < 0 || o.port > 65535) return fail(Error(ErrorKind::config, "--port must be in 0..65535"));
  if (o.worker_id.empty()) o.worker_id = platform::hostname();
  if (!util::is_safe_component(o.worker_id))
    return fail(Error(ErrorKind::config, "worker id may hold only letters, digits, '.', '_' and '-'"));
  if (o.slots <= 0) o.slots = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

  // Signals are routed to one thread before any other thread starts.
  std::atomic<WorkerServer*> server_ptr{nullptr};
  std::atomic<bool> stop_requested{false};
  platform::on_shutdown_signal([&] {
    stop_requested = true;
    if (auto* s = server_ptr.load()) s->stop();
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
  auto engine = Engine::open(ec, make_default_steps());
  if (!engine) return fail(engine.error());

  CapsCache caps(CapsInputs{(*engine)->supported_steps(), o.slots, worker_protocol_features(), (*engine)->config().step_config,
                           (*engine)->gpu_slots()},
                 std::chrono::seconds(std::max(5, o.caps_refresh_sec)));
  ServerConfig sc;
  sc.host = o.host;
  sc.port = o.port;
  sc.secrets = {current};
  if (!previous.empty()) sc.secrets.push_back(previous);
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
  if (stop_requested) server.stop();

  std::fprintf(stderr, "rayvault-worker %s (%s) listening on %s:%d, root %s, %d slots, %d GPU slots%s\n", RAYVAULT_VERSION,
               o.worker_id.c_str(), o.host.c_str(), *port, util::u8((*engine)->config().root).c_str(), o.slots,
               (*engine)->gpu_slots(),
               previous.empty() ? "" : ", accepting the previous secret");
  if (!o.ready_file.empty()) {
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
