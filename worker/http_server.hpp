// The worker's HTTP API (the wire contract's endpoints and our extensions) over the engine.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "util/error.hpp"
#include "util/time.hpp"

namespace rayvault::worker {

class Engine;
class CapsCache;

struct ServerConfig {
  std::string host = "127.0.0.1";
  int port = 8787;                  // 0: any free port
  std::vector<std::string> secrets;  // current, then previous
  bool allow_custom_inputs_hash = false;
  std::size_t max_body_bytes = 4u << 20;
  std::size_t max_buffered_bytes = 64u << 20;  // request bodies held by all connections together
  int max_wait_ms = 120000;
  int threads = 2;                   // polling threads; each serves many connections
  int max_connections = 900;         // in all (below the usual 1024 open files)
  int max_connections_per_peer = 256;  // from one address; more are accepted and closed at once
  int idle_timeout_sec = 15;         // a connection that sends nothing for this long is closed
  std::size_t max_head_bytes = 32u << 10;  // request line and headers of one request
  int max_long_polls = 600;          // wait_ms requests held at once; past it they answer at once
  int max_long_polls_per_peer = 200;
  util::Clock clock = util::system_clock();
};

class WorkerServer {
 public:
  WorkerServer(ServerConfig config, Engine& engine, CapsCache& caps);
  ~WorkerServer();

  // Binds the socket; returns the port (useful with port 0). Error (unavailable) when it cannot.
  Result<int> bind();
  // Serves until stop(); returns when the server has stopped.
  void serve();
  void stop();
  // Replaces the secrets (current, then previous) for every request from now on: rotation without
  // a restart.
  void set_secrets(std::vector<std::string> secrets);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The protocol features this worker advertises in its caps.
std::vector<std::string> worker_protocol_features();

}  // namespace rayvault::worker
