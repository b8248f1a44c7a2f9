// rayvault-bench: what the benchmark harness (tools/bench.sh) needs besides the real binaries.
//   rayvault-bench plain-server PORT [THREADS]   a libmicrohttpd server built and configured as the
//                                                worker's (same flags, polling threads, limits),
//                                                answering every request with one fixed JSON body
//   rayvault-bench sign-blob SECRET DIGEST      prints {"put_query", "stat_query"} for /blobs/DIGEST
//   rayvault-bench sign SECRET RUN JOB STEP PAYLOAD_JSON
//                                                prints {"body": signed POST body, "query": signed
//                                                JOB_STATUS query string, "artifacts_query": the same
//                                                for JOB_ARTIFACTS, "inputs_hash"} for the load
//                                                generator (valid for the contract's 300 s skew)
#include <microhttpd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "platform/net.hpp"
#include "platform/system_info.hpp"
#include "protocol/envelope.hpp"
#include "protocol/json.hpp"
#include "util/time.hpp"
#include "util/strings.hpp"

namespace {

using rayvault::protocol::json;

// A fixed body of the size and shape of a worker's answer to a status poll (a finished probe's RECORD).
const std::string kBody =
    R"({"job":{"artifacts":[{"name":"ffprobe.json","path":"/var/lib/rayvault-worker/jobs/http-probe/artifacts/ffprobe.json",)"
    R"("sha256":"9f2c1e4b0d6a8f3e5c7b9a1d2e4f6a8b0c2d4e6f8a0b2c4d6e8f0a2b4c6d8e0f","size_bytes":3412}],"cached_job_id":"",)"
    R"("created_at":"2026-11-25T08:00:00Z","error_code":"","error_message":"","exit_code":0,"finished_at":"2026-11-25T08:00:01Z",)"
    R"("idempotent":false,"inputs_hash":"a340f9eb8c0605a341744408552e0ebfe7491cf835fb45b77d8b3ac7206e8a5e","job_id":"http-probe",)"
    R"("log_path":"/var/lib/rayvault-worker/jobs/http-probe/worker.log","message":"probed small.mp4",)"
    R"("metrics":{"media_path":"/tmp/small.mp4"},"progress":1.0,"receipt_path":"/var/lib/rayvault-worker/jobs/http-probe/job_receipt.json",)"
    R"("run_id":"bench","started_at":"2026-11-25T08:00:00Z","status":"succeeded","step_name":"FFMPEG_PROBE","worker_id":"bench"},"ok":true})";

MHD_Result answer(void*, MHD_Connection* c, const char*, const char*, const char*, const char*, std::size_t* upload_size,
                  void** state) {
  if (*state == nullptr) {  // the head: wait for the body
    *state = c;
    return MHD_YES;
  }
  if (*upload_size > 0) {  // body bytes: read and dropped
    *upload_size = 0;
    return MHD_YES;
  }
  MHD_Response* r = MHD_create_response_from_buffer(kBody.size(), const_cast<char*>(kBody.data()), MHD_RESPMEM_PERSISTENT);
  MHD_add_response_header(r, "Content-Type", "application/json");
  const MHD_Result ok = MHD_queue_response(c, 200, r);
  MHD_destroy_response(r);
  return ok;
}

int plain_server(int port, unsigned threads) {
  // The worker's daemon flags and options (worker/http_server.cpp), with its defaults.
  const unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
  auto address = rayvault::platform::listen_address("127.0.0.1", port);
  if (!address) return 5;
  MHD_Daemon* d = MHD_start_daemon(flags, 0, nullptr, nullptr, answer, nullptr, MHD_OPTION_SOCK_ADDR, address->data(),
                                   MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT, 900u,
                                   MHD_OPTION_PER_IP_CONNECTION_LIMIT, 256u, MHD_OPTION_CONNECTION_TIMEOUT, 15u,
                                   MHD_OPTION_CONNECTION_MEMORY_LIMIT, static_cast<std::size_t>(32u << 10), MHD_OPTION_END);
  if (!d) {
    std::fprintf(stderr, "rayvault-bench: cannot listen on 127.0.0.1:%d\n", port);
    return 5;
  }
  std::atomic<bool> stop{false};
  rayvault::platform::on_shutdown_signal([&stop] { stop = true; });
  std::fprintf(stderr, "rayvault-bench plain-server on 127.0.0.1:%d, %u threads\n", port, threads);
  while (!stop) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  MHD_stop_daemon(d);
  return 0;
}

int sign(const std::string& secret, const std::string& run, const std::string& job, const std::string& step,
         const std::string& payload_text) {
  auto payload = rayvault::protocol::parse_json(payload_text);
  if (!payload || !payload->is_object()) {
    std::fprintf(stderr, "rayvault-bench sign: PAYLOAD_JSON is not a JSON object\n");
    return 2;
  }
  const auto hash = rayvault::protocol::inputs_hash(*payload);
  const auto now = rayvault::util::system_clock()();
  const auto post = rayvault::protocol::make_signed_envelope(run, job, step, hash, secret, now);
  json body = {{"message_type", "submit_job"}, {"payload", *payload}};
  rayvault::protocol::envelope_to_json(post, body);
  auto query = [&](const char* control_step) {
    const auto get = rayvault::protocol::make_signed_envelope(run, job, control_step, hash, secret, now);
    json fields = json::object();
    rayvault::protocol::envelope_to_json(get, fields);
    std::string text;
    for (const auto& [k, v] : fields.items())
      text += (text.empty() ? "" : "&") + k + "=" + rayvault::util::percent_encode(v.is_string() ? v.get<std::string>() : v.dump());
    return text;
  };
  std::printf("%s\n", rayvault::protocol::dump_json(json{{"body", rayvault::protocol::dump_json(body)},
                                                         {"query", query("JOB_STATUS")},
                                                         {"artifacts_query", query("JOB_ARTIFACTS")},
                                                         {"inputs_hash", hash}}).c_str());
  return 0;
}

// The query strings of a blob upload and a blob question (extension "blobs"), bound to DIGEST.
int sign_blob(const std::string& secret, const std::string& digest) {
  const auto now = rayvault::util::system_clock()();
  auto query = [&](const char* step) {
    const auto env = rayvault::protocol::make_signed_envelope("blobs", "blob", step, digest, secret, now);
    json fields = json::object();
    rayvault::protocol::envelope_to_json(env, fields);
    std::string text;
    for (const auto& [k, v] : fields.items())
      text += (text.empty() ? "" : "&") + k + "=" + rayvault::util::percent_encode(v.is_string() ? v.get<std::string>() : v.dump());
    return text;
  };
  std::printf("%s\n", rayvault::protocol::dump_json(json{{"put_query", query("BLOB_PUT")}, {"stat_query", query("BLOB_STAT")}}).c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "plain-server" && (argc == 3 || argc == 4))
    return plain_server(std::atoi(argv[2]), argc == 4 ? static_cast<unsigned>(std::atoi(argv[3])) : 2u);
  if (cmd == "sign" && argc == 7) return sign(argv[2], argv[3], argv[4], argv[5], argv[6]);
  if (cmd == "sign-blob" && argc == 4) return sign_blob(argv[2], argv[3]);
  std::fprintf(stderr,
               "usage: rayvault-bench plain-server PORT [THREADS] | sign SECRET RUN JOB STEP PAYLOAD_JSON | sign-blob SECRET DIGEST\n");
  return 2;
}
