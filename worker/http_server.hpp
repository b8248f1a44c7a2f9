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
  int max_wait_ms = 120000;
  int threads = 64;
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

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The protocol features this worker advertises in its caps.
std::vector<std::string> worker_protocol_features();

}  // namespace rayvault::worker
