// rayvault_soak: many signed requests at once against one running worker, from threads that each
// keep one connection alive; prints errors, latency percentiles and the worker's RSS before and
// after. A documented command (tools/soak.sh), not a CI test.
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "protocol/envelope.hpp"
#include "protocol/json.hpp"

namespace {

using rayvault::protocol::json;

long rss_kib(const std::string& pid) {
  std::ifstream in("/proc/" + pid + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: rayvault_soak PORT WORKER_PID REQUESTS CONCURRENCY (secret in RAYVAULT_CLUSTER_SECRET)\n");
    return 2;
  }
  const int port = std::atoi(argv[1]);
  const std::string pid = argv[2];
  const long total = std::atol(argv[3]);
  const int concurrency = std::atoi(argv[4]);
  const char* env_secret = std::getenv("RAYVAULT_CLUSTER_SECRET");
  const std::string secret = env_secret ? env_secret : "";

  // One job to ask about: a probe of a file that is not there fails at once, and stays known.
  const json payload{{"media_path", "/nonexistent/soak.mp4"}};
  const std::string hash = rayvault::protocol::inputs_hash(payload);
  {
    httplib::Client c("127.0.0.1", port);
    auto env = rayvault::protocol::make_signed_envelope("soak", "soak-job", "FFMPEG_PROBE", hash, secret,
                                                        std::chrono::system_clock::now());
    json body{{"message_type", "submit_job"}, {"payload", payload}};
    rayvault::protocol::envelope_to_json(env, body);
    auto r = c.Post("/job", body.dump(), "application/json");
    if (!r || r->status != 200) {
      std::fprintf(stderr, "soak: cannot submit the job to ask about (status %d)\n", r ? r->status : 0);
      return 1;
    }
  }

  const long rss_before = rss_kib(pid);
  std::atomic<long> next{0}, errors{0};
  std::vector<std::vector<double>> latencies(static_cast<std::size_t>(concurrency));
  const auto started = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < concurrency; ++t) {
    threads.emplace_back([&, t] {
      httplib::Client c("127.0.0.1", port);
      c.set_keep_alive(true);
      c.set_tcp_nodelay(true);
      c.set_read_timeout(30, 0);
      auto& mine = latencies[static_cast<std::size_t>(t)];
      while (next.fetch_add(1) < total) {
        // Every request signed afresh, as a controller does.
        const auto env = rayvault::protocol::make_signed_envelope("soak", "soak-job", "JOB_STATUS", hash, secret,
                                                                  std::chrono::system_clock::now());
        const std::string path = "/job/soak-job?run_id=soak&step_name=JOB_STATUS&inputs_hash=" + env.inputs_hash +
                                 "&timestamp=" + httplib::detail::encode_query_param(env.timestamp) +
                                 "&auth_token=" + env.auth_token;
        const auto t0 = std::chrono::steady_clock::now();
        auto r = c.Get(path);
        mine.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        if (!r || r->status != 200) ++errors;
      }
    });
  }
  for (auto& th : threads) th.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::vector<double> all;
  for (auto& v : latencies) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  auto pct = [&all](double p) { return all.empty() ? 0.0 : all[std::min(all.size() - 1, static_cast<std::size_t>(p * all.size()))]; };
  std::printf("requests %zu, errors %ld, %.0f req/s, latency ms p50 %.2f p99 %.2f max %.2f, worker RSS %ld -> %ld KiB\n",
              all.size(), errors.load(), static_cast<double>(all.size()) / seconds, pct(0.5), pct(0.99),
              all.empty() ? 0.0 : all.back(), rss_before, rss_kib(pid));
  return errors == 0 ? 0 : 1;
}
