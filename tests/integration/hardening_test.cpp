// A tailnet peer without the secret must not stall, flood or crash a worker: each attack on a real
// worker process, from another loopback address than the good client's, with the good client's
// answers timed.
#include <doctest/doctest.h>

#include <csignal>
#include <fstream>
#include <functional>
#include <thread>

#include "protocol/blobs.hpp"
#include "tests/integration/harness.hpp"
#include "util/crypto.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"

using namespace rayvault;
using namespace rayvault::test;

namespace {

bool terminal(const json& j) {
  return j.is_object() && (j.value("status", "") == "succeeded" || j.value("status", "") == "failed");
}

// The slowest of n fresh /health requests from the good client, in ms (-1 when one failed).
long slowest_health(int port, int n = 10) {
  long worst = 0;
  for (int i = 0; i < n; ++i) {
    const long ms = health_ms(port);
    if (ms < 0) return -1;
    worst = std::max(worst, ms);
  }
  return worst;
}

std::string head(const std::string& request_line, const std::vector<std::string>& headers) {
  std::string h = request_line + "\r\nHost: 127.0.0.1\r\n";
  for (const auto& line : headers) h += line + "\r\n";
  return h + "\r\n";
}

// Resident memory says something only without a sanitizer: ASan's quarantine and TSan's shadow
// memory grow it by design.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kRssMeaningful = false;
#else
constexpr bool kRssMeaningful = true;
#endif

int status_of(const std::string& response) {
  return response.rfind("HTTP/1.1 ", 0) == 0 ? std::atoi(response.c_str() + 9) : 0;
}

}  // namespace

// Row 1: idle connections held open by one peer do not keep others waiting.
TEST_CASE("hardening 1: 500 idle connections from one peer") {
  TempDir t;
  WorkerProcess w(t.path, "w1");
  std::vector<RawConnection> idle;
  for (int i = 0; i < 500; ++i) idle.emplace_back(w.port());
  const long worst = slowest_health(w.port());
  CHECK(worst >= 0);
  CHECK_MESSAGE(worst < 1000, "slowest /health took " << worst << " ms");
  // Past the per-peer cap, the peer's extra connections are closed at once.
  CHECK(idle.back().closed_by_peer(std::chrono::seconds(5)));
}

// Row 2: slow request heads neither hold a thread nor stay open past the idle timeout.
TEST_CASE("hardening 2: slow headers and silent connections") {
  TempDir t;
  WorkerProcess w(t.path, "w1", WorkerOptions{"s3cret", "", {"--idle-timeout-sec", "2"}});
  std::vector<RawConnection> slow;
  for (int i = 0; i < 64; ++i) {
    slow.emplace_back(w.port());
    REQUIRE(slow.back().send("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
  }
  std::atomic<bool> done{false};
  std::thread drip([&] {
    for (int round = 0; round < 10 && !done; ++round) {
      for (auto& c : slow) (void)c.send("X-Slow: " + std::to_string(round) + "\r\n");
      std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the attack's own pace
    }
  });
  const long worst = slowest_health(w.port());
  done = true;
  drip.join();
  CHECK(worst >= 0);
  CHECK_MESSAGE(worst < 1000, "slowest /health took " << worst << " ms");
  // A connection that goes silent is closed once the idle timeout passes.
  RawConnection silent(w.port());
  REQUIRE(silent.send("GET /health HTTP/1.1\r\n"));
  CHECK(silent.closed_by_peer(std::chrono::seconds(10)));
}

// Row 3: bodies that would be inflated, read without bound, or heads of endless headers.
TEST_CASE("hardening 3: compressed or chunked or oversized bodies and oversized heads are refused") {
  TempDir t;
  WorkerProcess w(t.path, "w1");
  const long rss_before = rss_kib(w.pid());

  RawConnection gzip(w.port());
  REQUIRE(gzip.send(head("POST /job HTTP/1.1", {"Content-Type: application/json", "Content-Encoding: gzip",
                                                 "Content-Length: 4"}) + "abcd"));
  std::string answer = gzip.read_until_closed(std::chrono::seconds(5));
  CHECK(status_of(answer) == 415);
  CHECK(answer.find("Content-Encoding is not accepted") != std::string::npos);

  RawConnection chunked(w.port());
  REQUIRE(chunked.send(head("POST /job HTTP/1.1", {"Content-Type: application/json", "Transfer-Encoding: chunked"}) +
                       "4\r\nabcd\r\n"));
  answer = chunked.read_until_closed(std::chrono::seconds(5));
  CHECK(status_of(answer) == 411);

  // Two Content-Length headers (request smuggling past a proxy) and other transfer encodings.
  RawConnection twice(w.port());
  REQUIRE(twice.send(head("POST /job HTTP/1.1", {"Content-Length: 0", "Content-Length: 7"}) + "{\"a\":1}"));
  CHECK(status_of(twice.read_until_closed(std::chrono::seconds(5))) == 400);
  RawConnection identity(w.port());
  REQUIRE(identity.send(head("POST /job HTTP/1.1", {"Transfer-Encoding: identity", "Content-Length: 7"}) + "{\"a\":1}"));
  CHECK(status_of(identity.read_until_closed(std::chrono::seconds(5))) == 411);

  // A body a little over the limit is read, thrown away and answered 413 (the test of the
  // contract's refusals sends 5 MiB); a declared 1 GiB is refused from its head: the connection is
  // closed with no byte of the body read.
  RawConnection big(w.port());
  REQUIRE(big.send(head("POST /job HTTP/1.1", {"Content-Type: application/json", "Content-Length: 1073741824"})));
  CHECK(big.closed_by_peer(std::chrono::seconds(5)));

  // A head of endless headers is cut off at the head limit, not kept in memory.
  RawConnection headers(w.port());
  std::string many = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (int i = 0; i < 200000; ++i) many += "X-H" + std::to_string(i) + ": v\r\n";
  (void)headers.send(many + "\r\n");  // the worker may close before all of it is sent
  answer = headers.read_until_closed(std::chrono::seconds(5));
  CHECK((answer.empty() || status_of(answer) >= 400));

  CHECK(health_ms(w.port()) >= 0);
  if (kRssMeaningful)
    CHECK_MESSAGE(rss_kib(w.pid()) - rss_before < 64 * 1024, "RSS grew from " << rss_before << " KiB to " << rss_kib(w.pid()));
}

// Row 4: a batch's long polls (one controller, 64 jobs) do not keep /health waiting.
TEST_CASE("hardening 4: 64 long polls and a good client") {
  TempDir t;
  const auto video = make_video(t.path, 1);
  const std::string path_env = path_with_standin(t.path / "bin", "ffprobe", "sleep 3\nexec /usr/bin/ffprobe \"$@\"");
  WorkerProcess w(t.path, "w1", WorkerOptions{"s3cret", "", {}, {{"PATH", path_env}}});
  const json payload{{"media_path", video.string()}};
  const std::string h = protocol::inputs_hash(payload);
  REQUIRE(http_post(w.port(), "/job", job_body("run", "slow", "FFMPEG_PROBE", payload).dump()).status == 200);
  std::vector<RawConnection> polls;
  for (int i = 0; i < 64; ++i) {
    polls.emplace_back(w.port());
    REQUIRE(polls.back().send(
        head("GET /job/slow?" + signed_query("run", "slow", "JOB_STATUS", h) + "&wait_ms=20000 HTTP/1.1", {"Connection: close"})));
  }
  const long worst = slowest_health(w.port());
  CHECK(worst >= 0);
  CHECK_MESSAGE(worst < 1000, "slowest /health took " << worst << " ms");
  // Every held poll is answered when the job ends, with the terminal record.
  int answered = 0;
  for (auto& p : polls) {
    const std::string answer = p.read_until_closed(std::chrono::seconds(20));
    if (status_of(answer) == 200 && answer.find("\"status\":\"succeeded\"") != std::string::npos) ++answered;
  }
  CHECK(answered == 64);
}

// Row 5: a huge payload.timeout_sec cannot lift the worker's own limit.
TEST_CASE("hardening 5: timeout_sec 1e19 keeps --job-timeout-sec") {
  TempDir t;
  const auto video = make_video(t.path, 1);
  const std::string path_env = path_with_standin(t.path / "bin", "ffprobe", "sleep 60");
  WorkerProcess w(t.path, "w1", WorkerOptions{"s3cret", "", {"--job-timeout-sec", "1"}, {{"PATH", path_env}}});
  const json payload{{"media_path", video.string()}, {"timeout_sec", 1e19}};
  REQUIRE(http_post(w.port(), "/job", job_body("run", "long", "FFMPEG_PROBE", payload).dump()).status == 200);
  const auto started = std::chrono::steady_clock::now();
  const json done = poll_job(w.port(), "run", "long", protocol::inputs_hash(payload), terminal, std::chrono::seconds(30));
  CHECK(done["error_code"] == "TIMEOUT");
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(15));
}

// Row 7: no step's tool finds the secret in its environment.
TEST_CASE("hardening 7: the secret is not in a tool's environment") {
  TempDir t;
  const auto video = make_video(t.path, 1);
  const std::string path_env = path_with_standin(t.path / "bin", "ffprobe", "env >&2\nexit 1");
  WorkerProcess w(t.path, "w1", WorkerOptions{"worker-secret-value", "previous-secret-value", {}, {{"PATH", path_env}}});
  const json payload{{"media_path", video.string()}};
  const std::string h = protocol::inputs_hash(payload);
  REQUIRE(http_post(w.port(), "/job", job_body("run", "env", "FFMPEG_PROBE", payload, "worker-secret-value").dump()).status == 200);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::string log;
  while (std::chrono::steady_clock::now() < until && log.find("job_failed") == std::string::npos)
    log = http_get(w.port(), "/job/env/logs?" + signed_query("run", "env", "JOB_LOGS", h, "worker-secret-value")).body;
  REQUIRE(log.find("job_failed") != std::string::npos);
  CHECK(log.find("PATH=") != std::string::npos);  // the tool did print its environment
  CHECK(log.find("worker-secret-value") == std::string::npos);
  CHECK(log.find("previous-secret-value") == std::string::npos);
  CHECK(log.find("RAYVAULT_CLUSTER_SECRET") == std::string::npos);
}

// Row 8: a second worker on a port in use exits 5 instead of sharing the traffic.
TEST_CASE("hardening 8: a port in use is refused with exit 5") {
  TempDir t;
  WorkerProcess first(t.path, "w1");
  platform::ProcessSpec spec;
  spec.argv = {RAYVAULT_WORKER_BIN, "--host", "127.0.0.1", "--port", std::to_string(first.port()), "--root",
               (t.path / "second").string()};
  spec.env = {{"RAYVAULT_CLUSTER_SECRET", "s3cret"}};
  spec.timeout = std::chrono::seconds(30);
  std::string err;
  spec.on_output_line = [&err](std::string_view l) { err += std::string(l) + "\n"; };
  auto r = platform::run_process(spec);
  REQUIRE(r.ok());
  CHECK(r->exit_code == 5);
  CHECK(err.find("cannot listen on 127.0.0.1:" + std::to_string(first.port())) != std::string::npos);
  CHECK(health_ms(first.port()) >= 0);
}

// Row 9: a stop asked during start-up is kept (it used to be lost, and the worker served on).
TEST_CASE("hardening 9: SIGTERM during start-up stops the worker") {
  TempDir t;
  // Capability detection runs `ffmpeg -version`; this one says when it starts, then takes 2 s.
  const fs::path mark = t.path / "detecting";
  const std::string path_env =
      path_with_standin(t.path / "bin", "ffmpeg", "touch '" + mark.string() + "'\nsleep 2\nexec /usr/bin/ffmpeg \"$@\"", false);
  platform::ProcessSpec spec;
  spec.argv = {RAYVAULT_WORKER_BIN, "--host", "127.0.0.1", "--port", "0", "--root", (t.path / "root").string(),
               "--ready-file", (t.path / "ready").string()};
  spec.env = {{"RAYVAULT_CLUSTER_SECRET", "s3cret"}, {"PATH", path_env}};
  auto child = platform::Child::spawn(spec, t.path / "w.log");
  REQUIRE(child.ok());
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!fs::exists(mark) && std::chrono::steady_clock::now() < until) std::this_thread::yield();
  REQUIRE(fs::exists(mark));
  CHECK(child->terminate(std::chrono::seconds(20)) == 0);  // 0: it stopped by itself, cleanly
}

// Row 10: a step's tool dies with a worker that is killed outright.
TEST_CASE("hardening 10: a killed worker leaves no tool running") {
  TempDir t;
  const auto video = make_video(t.path, 1);
  const fs::path pidfile = t.path / "tool.pid";
  const std::string path_env =
      path_with_standin(t.path / "bin", "ffprobe", "echo $$ > '" + pidfile.string() + "'\nexec sleep 60");
  WorkerProcess w(t.path, "w1", WorkerOptions{"s3cret", "", {}, {{"PATH", path_env}}});
  const json payload{{"media_path", video.string()}};
  REQUIRE(http_post(w.port(), "/job", job_body("run", "cut", "FFMPEG_PROBE", payload).dump()).status == 200);
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  std::string pid;
  while (pid.empty() && std::chrono::steady_clock::now() < until)
    if (auto text = util::read_file(pidfile)) pid = util::trim(*text);
  REQUIRE_FALSE(pid.empty());
  REQUIRE(fs::exists("/proc/" + pid));
  w.crash();
  until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (fs::exists("/proc/" + pid) && std::chrono::steady_clock::now() < until) std::this_thread::yield();
  CHECK_FALSE(fs::exists("/proc/" + pid));
}

// Row 11: ranges past the end are cut to it; a 416 carries one Content-Range.
TEST_CASE("hardening 11: Range answers") {
  TempDir t;
  const auto video = make_video(t.path, 1);
  WorkerProcess w(t.path, "w1");
  const json payload{{"media_path", video.string()}};
  const std::string h = protocol::inputs_hash(payload);
  REQUIRE(http_post(w.port(), "/job", job_body("run", "p", "FFMPEG_PROBE", payload).dump()).status == 200);
  REQUIRE(poll_job(w.port(), "run", "p", h, terminal)["status"] == "succeeded");
  const std::string whole = *util::read_file(w.root() / "jobs/p/artifacts/ffprobe.json");
  const std::string url = "/job/p/artifacts/ffprobe.json?" + signed_query("run", "p", "JOB_ARTIFACTS", h);
  auto r = http_get(w.port(), url, {{"Range", "bytes=0-999999999"}});
  CHECK(r.status == 206);
  CHECK(r.body == whole);
  CHECK(r.headers["Content-Range"] == "bytes 0-" + std::to_string(whole.size() - 1) + "/" + std::to_string(whole.size()));
  r = http_get(w.port(), url, {{"Range", "bytes=-10"}});
  CHECK(r.status == 206);
  CHECK(r.body == whole.substr(whole.size() - 10));
  // One Content-Range header on a 416, counted on the wire.
  RawConnection raw(w.port(), "127.0.0.1");
  REQUIRE(raw.send(head("GET " + url + " HTTP/1.1", {"Range: bytes=999999-", "Connection: close"})));
  const std::string answer = raw.read_until_closed(std::chrono::seconds(5));
  CHECK(status_of(answer) == 416);
  std::size_t count = 0;
  for (std::size_t p = 0; (p = answer.find("Content-Range:", p)) != std::string::npos; ++p) ++count;
  CHECK(count == 1);
}

// Row 13: a submit cut off while it follows the job leaves the ledger able to find it.
TEST_CASE("hardening 13: the ledger knows a job from its submission on") {
  TempDir t;
  PythonWorkerStandIn py("py", "", PythonWorkerStandIn::Flavor::never_finishes);
  write_nodes(t.path, {{"py", py.port()}});
  platform::ProcessSpec spec;
  spec.argv = {RAYVAULT_CONTROLLER_BIN, "submit", "--run-id", "r", "--job-id", "j", "--step-name", "FFMPEG_PROBE",
               "--payload-json", R"({"media_path":"/srv/a.mp4"})", "--no-stage"};
  spec.cwd = t.path;
  spec.env = {{"RAYVAULT_CLUSTER_SECRET", "s3cret"}};
  auto controller = platform::Child::spawn(spec, t.path / "controller.log");
  REQUIRE(controller.ok());
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  // Cut off while it follows the job (it has polled), before any receipt was written.
  while (py.status_polls() == 0 && std::chrono::steady_clock::now() < until) std::this_thread::yield();
  REQUIRE(py.status_polls() > 0);
  REQUIRE(py.job_submissions() == 1);
  (void)controller->kill();
  const auto st = run_controller(t.path, {"status", "--run-id", "r", "--job-id", "j"});
  CHECK(st.exit_code == 0);
  CHECK(st.doc["ledger"]["node_id"] == "py");
  CHECK(st.doc["job"]["status"] == "running");
}

// Row 14: an artifact reached through a symlinked folder, or hard-linked from elsewhere, is not served.
TEST_CASE("hardening 14: links in the artifact folder") {
  TempDir t;
  const auto video = make_video(t.path, 1);
  const fs::path hold = t.path / "hold";  // while it exists, ffprobe waits (a job that keeps running)
  WorkerProcess w(t.path, "w1", WorkerOptions("s3cret", "", {}, {{"PATH", path_with_holding_standin(t.path / "bin", "ffprobe", hold)}}));
  const json payload{{"media_path", video.string()}};
  const std::string h = protocol::inputs_hash(payload);
  REQUIRE(http_post(w.port(), "/job", job_body("run", "p", "FFMPEG_PROBE", payload).dump()).status == 200);
  const json done = poll_job(w.port(), "run", "p", h, terminal);
  REQUIRE(done["status"] == "succeeded");
  const std::string url = "/job/p/artifacts/ffprobe.json?" + signed_query("run", "p", "JOB_ARTIFACTS", h);
  REQUIRE(http_get(w.port(), url).status == 200);
  const fs::path folder = w.root() / "jobs/p/artifacts";
  SUBCASE("a hard link") {
    fs::create_hard_link(folder / "ffprobe.json", t.path / "elsewhere.json");
    CHECK(http_get(w.port(), url).status == 404);
  }
  SUBCASE("the worker's own links: its blob store's and a running job's that reads the blob") {
    // The artifact is a blob too; a job that names it links it into its inputs while it runs.
    const std::string sha = done["artifacts"][0]["sha256"];
    REQUIRE(fs::hard_link_count(folder / "ffprobe.json") == 2);
    { std::ofstream(hold) << "x"; }
    const json reader{{"media_path", protocol::blob_ref_json(sha, "ffprobe.json")}};
    REQUIRE(http_post(w.port(), "/job", job_body("run", "reader", "FFMPEG_PROBE", reader).dump()).status == 200);
    (void)poll_job(w.port(), "run", "reader", protocol::inputs_hash(reader), [](const json& j) { return j.value("status", "") == "running"; });
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (fs::hard_link_count(folder / "ffprobe.json") < 3 && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    REQUIRE(fs::hard_link_count(folder / "ffprobe.json") == 3);
    CHECK(http_get(w.port(), url).status == 200);
    fs::remove(hold);
    (void)poll_job(w.port(), "run", "reader", protocol::inputs_hash(reader), terminal);
  }
  SUBCASE("the folder swapped for a symlink") {
    fs::create_directories(t.path / "outside");
    REQUIRE(util::write_file_atomic(t.path / "outside/ffprobe.json", "secret bytes").ok());
    fs::rename(folder, w.root() / "jobs/p/moved");
    fs::create_directory_symlink(t.path / "outside", folder);
    const auto r = http_get(w.port(), url);
    CHECK(r.status == 404);
    CHECK(r.body.find("secret bytes") == std::string::npos);
  }
}

// Row 15: integers past a double's range in a payload are taken, as Python takes them.
TEST_CASE("hardening 15: a 400-digit integer in a payload") {
  TempDir t;
  WorkerProcess w(t.path, "w1");
  const std::string big = "9" + std::string(399, '1');
  auto payload = protocol::parse_json(R"({"media_path":"/nowhere.mp4","frame_count":)" + big + "}");
  REQUIRE(payload.ok());
  // Written canonically: the digits go on the wire as digits.
  const auto r = http_post(w.port(), "/job", protocol::canonical_json(job_body("run", "big", "FFMPEG_PROBE", *payload)));
  CHECK_MESSAGE(r.status == 200, r.body);  // 200: the worker hashed the same digits
  CHECK(r.json_body()["job"]["inputs_hash"] == protocol::inputs_hash(*payload));
}

// Row 16: timeouts in nodes.json beyond any sensible value are capped, not overflowed.
TEST_CASE("hardening 16: nodes.json timeouts of 1e300") {
  TempDir t;
  WorkerProcess w(t.path, "w1");
  write_nodes_file(t.path, R"({"controller":{"request_timeout_sec":1e300},"nodes":[{"node_id":"w1","host":"127.0.0.1",)"
                           R"("port":)" + std::to_string(w.port()) + R"(,"timeout_sec":1e300}]})");
  const auto h = run_controller(t.path, {"health"});
  CHECK(h.exit_code == 0);
  CHECK(h.doc["workers"][0]["ok"] == true);
  CHECK(h.err.find("nodes[0] ('w1').timeout_sec is over 3600.0; using that") != std::string::npos);
  const auto c = run_controller(t.path, {"caps"});
  CHECK(c.exit_code == 0);
}

// Row 6: the disk fills while a job runs. The job ends (STORAGE_FAILED, a node fault) instead of
// staying `running`; once there is room it runs again when resubmitted, and what it became is
// stored. Needs a small file system of its own: a tmpfs, mounted by root (as CI runs).
TEST_CASE("hardening 6: a full disk ends the job instead of leaving it running") {
  TempDir t;
  const fs::path small = t.path / "small";
  fs::create_directories(small);
  auto run = [](std::vector<std::string> argv) {
    platform::ProcessSpec spec;
    spec.argv = std::move(argv);
    spec.timeout = std::chrono::seconds(30);
    auto r = platform::run_process(spec);
    return r.ok() && r->exit_code == 0;
  };
  if (!run({"mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", small.string()})) {
    MESSAGE("skipped: mounting a tmpfs needs root");
    return;
  }
  struct Unmount {
    std::function<void()> f;
    ~Unmount() { f(); }
  } unmount{[&] { run({"umount", "-l", small.string()}); }};

  const auto video = make_video(t.path, 1);
  const fs::path filler = small / "filler";
  const fs::path mark = t.path / "filled-once";
  // The first run fills the disk before it prints its JSON; later runs do not.
  const std::string path_env = path_with_standin(
      t.path / "bin", "ffprobe",
      "if [ ! -e '" + mark.string() + "' ]; then touch '" + mark.string() + "'; dd if=/dev/zero of='" + filler.string() +
          "' bs=64k 2>/dev/null; fi\nexec /usr/bin/ffprobe \"$@\"");
  WorkerOptions options{"s3cret", "", {}, {{"PATH", path_env}}};
  WorkerProcess w(small, "w1", options);
  const json payload{{"media_path", video.string()}};
  const std::string h = protocol::inputs_hash(payload);
  REQUIRE(http_post(w.port(), "/job", job_body("run", "full", "FFMPEG_PROBE", payload).dump()).status == 200);
  const json first = poll_job(w.port(), "run", "full", h, terminal, std::chrono::seconds(30));
  CHECK(first["status"] == "failed");
  CHECK(first["error_code"] == "STORAGE_FAILED");

  fs::remove(filler);
  REQUIRE(http_post(w.port(), "/job", job_body("run", "full", "FFMPEG_PROBE", payload).dump()).status == 200);
  const json second = poll_job(w.port(), "run", "full", h,
                               [](const json& j) { return j.value("status", "") == "succeeded"; }, std::chrono::seconds(30));
  CHECK(second["status"] == "succeeded");
  // Stored for good: a restarted worker still knows it succeeded.
  w.stop();
  w.start();
  const auto r = http_get(w.port(), "/job/full?" + signed_query("run", "full", "JOB_STATUS", h));
  CHECK(r.json_body()["job"]["status"] == "succeeded");
}

// Row 12: a second job cannot write into a folder that holds another job's artifacts.
TEST_CASE("hardening 12: two jobs with the same output_dir") {
  TempDir t;
  const auto video = make_video(t.path, 1);
  WorkerProcess w(t.path, "w1");
  const json first{{"media_path", video.string()}, {"output_dir", "shared"}};
  const json second{{"media_path", video.string()}, {"output_dir", "/shared/"}, {"take", 2}};
  REQUIRE(http_post(w.port(), "/job", job_body("run", "one", "FFMPEG_PROBE", first).dump()).status == 200);
  const json one = poll_job(w.port(), "run", "one", protocol::inputs_hash(first), terminal);
  REQUIRE(one["status"] == "succeeded");
  REQUIRE(http_post(w.port(), "/job", job_body("run", "two", "FFMPEG_PROBE", second).dump()).status == 200);
  const json two = poll_job(w.port(), "run", "two", protocol::inputs_hash(second), terminal);
  CHECK(two["error_code"] == "INVALID_OUTPUT_DIR");
  CHECK(two["error_message"].get<std::string>().find("holds the artifacts of job one") != std::string::npos);
  // The first job's artifact is still the bytes it recorded.
  const auto r = http_get(w.port(), "/job/one/artifacts/ffprobe.json?" +
                                        signed_query("run", "one", "JOB_ARTIFACTS", protocol::inputs_hash(first)));
  CHECK(r.status == 200);
  CHECK(util::sha256_hex(r.body) == one["artifacts"][0]["sha256"]);
}

// A path long enough to overflow a recursive matcher's stack: the worker answers and stays up.
TEST_CASE("hardening: very long paths") {
  TempDir t;
  WorkerProcess w(t.path, "w1");
  for (const std::string& path : {"/job/" + std::string(30000, 'a'), "/job/x/artifacts/" + std::string(30000, 'b')}) {
    RawConnection raw(w.port());
    REQUIRE(raw.send(head("GET " + path + " HTTP/1.1", {"Connection: close"})));
    const std::string answer = raw.read_until_closed(std::chrono::seconds(5));
    CHECK(status_of(answer) >= 400);
    CHECK(health_ms(w.port()) >= 0);
  }
}

// Bodies held by many connections at once are bounded in all, not only each.
TEST_CASE("hardening: many large bodies received at once") {
  TempDir t;
  WorkerProcess w(t.path, "w1");
  const long rss_before = rss_kib(w.pid());
  const std::size_t size = (4u << 20) - 64;  // under the per-request limit
  std::vector<RawConnection> uploads;
  for (int i = 0; i < 48; ++i) {  // 192 MiB declared, all but the last bytes sent
    uploads.emplace_back(w.port());
    REQUIRE(uploads.back().send(head("POST /job HTTP/1.1", {"Content-Type: application/json",
                                                             "Content-Length: " + std::to_string(size)}) +
                                std::string(size - 16, ' ')));
  }
  CHECK(health_ms(w.port()) >= 0);
  const long grown = rss_kib(w.pid()) - rss_before;
  if (kRssMeaningful) CHECK_MESSAGE(grown < 128 * 1024, "RSS grew by " << grown << " KiB");
  // The ones past the budget are told so once their bodies end.
  (void)uploads.back().send(std::string(16, ' '));
  CHECK(status_of(uploads.back().read_until_closed(std::chrono::seconds(5))) == 503);
}
