// The worker's HTTP API against the contract: refusals with their exact status and message,
// idempotency, rotation, restarts, Range downloads and hostile names. Real worker processes.
#include <doctest/doctest.h>

#include <future>
#include <thread>

#include "platform/process.hpp"
#include "platform/system_info.hpp"
#include "protocol/steps.hpp"
#include "tests/integration/harness.hpp"
#include "util/files.hpp"

using namespace rayvault;
using namespace rayvault::test;

namespace {
bool terminal(const json& j) {
  return j.is_object() && (j.value("status", "") == "succeeded" || j.value("status", "") == "failed");
}
}  // namespace

TEST_CASE("integration: worker refuses what the contract refuses") {
  TempDir t;
  WorkerProcess w(t.path, "w1");
  const json payload{{"media_path", "/tmp/a.mp4"}};

  SUBCASE("wrong secret") {
    const auto r = http_post(w.port(), "/job", job_body("r", "j", "FFMPEG_PROBE", payload, "not-the-secret").dump());
    CHECK(r.status == 401);
    CHECK(r.detail() == "auth_token invalid");
  }
  SUBCASE("skewed timestamp") {
    json body = job_body("r", "j", "FFMPEG_PROBE", payload);
    body["timestamp"] = "2020-01-01T00:00:00Z";
    const auto r = http_post(w.port(), "/job", body.dump());
    CHECK(r.status == 401);
    CHECK(r.detail().rfind("timestamp outside allowed skew (", 0) == 0);
    CHECK(r.detail().find("s > 300s)") != std::string::npos);
  }
  SUBCASE("tampered payload") {
    json body = job_body("r", "j", "FFMPEG_PROBE", payload);
    body["payload"]["media_path"] = "/etc/shadow";
    const auto r = http_post(w.port(), "/job", body.dump());
    CHECK(r.status == 401);
    CHECK(r.detail() == "payload does not match inputs_hash");
  }
  SUBCASE("another endpoint's token") {
    // A valid JOB_STATUS signature replayed as a job submission.
    json body = job_body("r", "j", "JOB_STATUS", payload);
    const auto r = http_post(w.port(), "/job", body.dump());
    CHECK(r.status == 401);
    CHECK(r.detail().rfind("Unsupported step_name='JOB_STATUS'. Supported: AUDIO_POSTCHECK, FFMPEG_PROBE", 0) == 0);
    const auto q = http_get(w.port(), "/job/j?" + signed_query("r", "j", "JOB_LOGS", protocol::inputs_hash(payload)));
    CHECK(q.status == 401);
    CHECK(q.detail() == "Unsupported step_name='JOB_LOGS'. Supported: JOB_STATUS");
  }
  SUBCASE("missing fields, message_type, malformed and oversized bodies") {
    CHECK(http_post(w.port(), "/job", R"({"message_type":"submit_job","run_id":"r"})").detail() ==
          "Missing envelope fields: job_id, step_name, inputs_hash, timestamp, auth_token");
    json wrong_type = job_body("r", "j", "FFMPEG_PROBE", payload);
    wrong_type["message_type"] = "register_caps";
    auto r = http_post(w.port(), "/job", wrong_type.dump());
    CHECK(r.status == 400);
    CHECK(r.detail() == "message_type must be 'submit_job'");
    r = http_post(w.port(), "/caps", R"({"message_type":"submit_job"})");
    CHECK(r.status == 400);
    CHECK(r.detail() == "message_type must be 'register_caps'");
    r = http_post(w.port(), "/job", "{not json");
    CHECK(r.status == 400);
    CHECK(r.detail().rfind("malformed JSON", 0) == 0);
    r = http_post(w.port(), "/job", "[" + std::string(70, '[') + std::string(71, ']'));
    CHECK(r.status == 400);
    r = http_post(w.port(), "/job", std::string(5u << 20, ' '));
    CHECK(r.status == 413);
    CHECK(r.detail() == "request body too large");
    json not_object = job_body("r", "j", "FFMPEG_PROBE", payload);
    not_object["payload"] = json::array();
    r = http_post(w.port(), "/job", not_object.dump());
    CHECK(r.status == 400);
    CHECK(r.detail() == "payload must be an object");
  }
  SUBCASE("unknown jobs and envelope mismatches") {
    const std::string h = protocol::inputs_hash(payload);
    auto r = http_get(w.port(), "/job/nope?" + signed_query("r", "nope", "JOB_STATUS", h));
    CHECK(r.status == 404);
    CHECK(r.detail() == "job_id not found: nope");
    REQUIRE(http_post(w.port(), "/job", job_body("r", "j", "FFMPEG_PROBE", payload).dump()).status == 200);
    r = http_get(w.port(), "/job/j?" + signed_query("other-run", "j", "JOB_STATUS", h));
    CHECK(r.status == 403);
    CHECK(r.detail() == "job envelope mismatch");
    r = http_get(w.port(), "/job/j?" + signed_query("r", "j", "JOB_STATUS", std::string(64, 'f')));
    CHECK(r.status == 403);
  }
  SUBCASE("the secret never appears in what the worker prints") {
    (void)http_post(w.port(), "/job", job_body("r", "j", "FFMPEG_PROBE", payload, "wrong").dump());
    CHECK(w.output().find("s3cret") == std::string::npos);
  }
}

TEST_CASE("integration: custom inputs_hash needs payload_hmac") {
  TempDir t;
  WorkerProcess w(t.path, "w1");
  const json payload{{"media_path", (t.path / "none.mp4").string()}};
  const std::string custom = "custom-hash-0123456789";
  json body = job_body("r", "j", "FFMPEG_PROBE", payload, "s3cret", custom);
  CHECK(http_post(w.port(), "/job", body.dump()).detail() == "payload does not match inputs_hash");
  body["payload_hmac"] = protocol::payload_hmac("s3cret", body["timestamp"].get<std::string>(), payload);
  const auto r = http_post(w.port(), "/job", body.dump());
  CHECK(r.status == 200);
  CHECK(r.json_body()["job"]["inputs_hash"] == custom);
  // An hmac made for another payload does not bind this one.
  json other = job_body("r", "j2", "FRAME_SAMPLING", payload, "s3cret", custom);
  other["payload_hmac"] = protocol::payload_hmac("s3cret", other["timestamp"].get<std::string>(), json{{"x", 1}});
  CHECK(http_post(w.port(), "/job", other.dump()).status == 401);
}

TEST_CASE("integration: rotation accepts the previous secret") {
  TempDir t;
  WorkerProcess w(t.path, "w1", WorkerOptions{"new-secret", "s3cret", {}, {}});
  const json payload{{"media_path", "/nope.mp4"}};
  CHECK(http_post(w.port(), "/job", job_body("r", "j1", "FFMPEG_PROBE", payload, "new-secret").dump()).status == 200);
  CHECK(http_post(w.port(), "/job", job_body("r", "j2", "FRAME_SAMPLING", payload, "s3cret").dump()).status == 200);
  CHECK(http_post(w.port(), "/job", job_body("r", "j3", "FFMPEG_PROBE", json{{"a", 1}}, "older").dump()).status == 401);
}

TEST_CASE("integration: idempotent resubmission runs the step once") {
  TempDir t;
  const auto video = make_video(t.path, 2);
  WorkerProcess w(t.path, "w1");
  const json payload{{"media_path", video.string()}};
  const std::string h = protocol::inputs_hash(payload);
  auto first = http_post(w.port(), "/job", job_body("run1", "probe-a", "FFMPEG_PROBE", payload).dump());
  REQUIRE(first.status == 200);
  CHECK(first.json_body()["idempotent"] == false);
  const json done = poll_job(w.port(), "run1", "probe-a", h, terminal);
  CHECK(done["status"] == "succeeded");

  SUBCASE("same key from another run: the existing job, aliased to the new run") {
    auto again = http_post(w.port(), "/job", job_body("run2", "probe-b", "FFMPEG_PROBE", payload).dump());
    REQUIRE(again.status == 200);
    CHECK(again.json_body()["idempotent"] == true);
    CHECK(again.json_body()["cached_job_id"] == "probe-a");
    CHECK(again.json_body()["job"]["status"] == "succeeded");
    // The new run reads the job under either id.
    CHECK(http_get(w.port(), "/job/probe-a?" + signed_query("run2", "probe-a", "JOB_STATUS", h)).status == 200);
    const auto aliased = http_get(w.port(), "/job/probe-b?" + signed_query("run2", "probe-b", "JOB_STATUS", h));
    CHECK(aliased.status == 200);
    CHECK(aliased.json_body()["job"]["job_id"] == "probe-a");
    const auto logs = http_get(w.port(), "/job/probe-b/logs?" + signed_query("run2", "probe-b", "JOB_LOGS", h));
    CHECK(logs.status == 200);
    // The step ran once: one job_started in the log.
    std::size_t starts = 0;
    for (std::size_t p = 0; (p = logs.body.find("\"event\":\"job_started\"", p)) != std::string::npos; ++p) ++starts;
    CHECK(starts == 1);
  }
  SUBCASE("same job_id again") {
    auto again = http_post(w.port(), "/job", job_body("run1", "probe-a", "FFMPEG_PROBE", payload).dump());
    CHECK(again.json_body()["idempotent"] == true);
  }
}

TEST_CASE("integration: a restart keeps jobs and fails the one it cut off with WORKER_RESTARTED") {
  TempDir t;
  const auto video = make_video(t.path, 2);
  // A stand-in ffprobe that never finishes keeps a job running while the worker is killed.
  const std::string path_env = path_with_standin(t.path / "slow-bin", "ffprobe", "exec sleep 120");
  WorkerProcess w(t.path, "w1", WorkerOptions{"s3cret", "", {"--slots", "1"}, {{"PATH", path_env}}});

  const json p1{{"media_path", video.string()}};
  const json p2{{"media_path", video.string()}, {"note", "second"}};
  const std::string h1 = protocol::inputs_hash(p1), h2 = protocol::inputs_hash(p2);
  REQUIRE(http_post(w.port(), "/job", job_body("run", "long", "FFMPEG_PROBE", p1).dump()).status == 200);
  REQUIRE(http_post(w.port(), "/job", job_body("run", "next", "FFMPEG_PROBE", p2).dump()).status == 200);
  CHECK(poll_job(w.port(), "run", "long", h1, [](const json& j) { return j.value("status", "") == "running"; })["status"] ==
        "running");
  SUBCASE("wait_ms answers when the wait ends if the job is still running") {
    const auto start = std::chrono::steady_clock::now();
    const auto r = http_get(w.port(), "/job/long?" + signed_query("run", "long", "JOB_STATUS", h1) + "&wait_ms=400");
    CHECK(r.json_body()["job"]["status"] == "running");
    CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(350));
  }
  w.crash();
  // The same root, now with the real ffprobe on PATH.
  WorkerProcess again(t.path, "w1", WorkerOptions{"s3cret", "", {"--slots", "1"}, {}});
  const json cut = poll_job(again.port(), "run", "long", h1, terminal);
  CHECK(cut["status"] == "failed");
  CHECK(cut["error_code"] == "WORKER_RESTARTED");
  // The queued job survived and now runs.
  CHECK(poll_job(again.port(), "run", "next", h2, terminal)["status"] == "succeeded");
  SUBCASE("a graceful stop keeps finished jobs and their logs") {
    again.stop();
    WorkerProcess third(t.path, "w1");
    const auto r = http_get(third.port(), "/job/next?" + signed_query("run", "next", "JOB_STATUS", h2));
    CHECK(r.json_body()["job"]["status"] == "succeeded");
    const auto logs = http_get(third.port(), "/job/next/logs?" + signed_query("run", "next", "JOB_LOGS", h2));
    CHECK(logs.body.find("job_succeeded") != std::string::npos);
    // Resubmitting the job cut off by the crash runs it again (the node's fault, not the job's).
    const auto re = http_post(third.port(), "/job", job_body("run", "long", "FFMPEG_PROBE", p1).dump());
    CHECK(re.json_body()["idempotent"] == true);
    CHECK(poll_job(third.port(), "run", "long", h1, terminal)["status"] == "succeeded");
  }
}

TEST_CASE("integration: artifact bytes with Range and hostile names") {
  TempDir t;
  const auto video = make_video(t.path, 4);
  WorkerProcess w(t.path, "w1");
  const json payload{{"video_path", video.string()}, {"every_sec", 1}};
  const std::string h = protocol::inputs_hash(payload);
  REQUIRE(http_post(w.port(), "/job", job_body("run", "frames", "FRAME_SAMPLING", payload).dump()).status == 200);
  const json done = poll_job(w.port(), "run", "frames", h, terminal);
  REQUIRE(done["status"] == "succeeded");
  const fs::path index = w.root() / "jobs/frames/artifacts/frames_index.json";
  const std::string whole = *util::read_file(index);
  const std::string q = signed_query("run", "frames", "JOB_ARTIFACTS", h);

  SUBCASE("whole file, with its hash in a header") {
    auto r = http_get(w.port(), "/job/frames/artifacts/frames_index.json?" + q);
    CHECK(r.status == 200);
    CHECK(r.body == whole);
    CHECK(r.headers.at("X-Artifact-SHA256") == sha256_of(index));
  }
  SUBCASE("a range from an offset") {
    const auto r = http_get(w.port(), "/job/frames/artifacts/frames_index.json?" + q, {{"Range", "bytes=10-"}});
    CHECK(r.status == 206);
    CHECK(r.body == whole.substr(10));
    CHECK(r.headers.at("Content-Range") == "bytes 10-" + std::to_string(whole.size() - 1) + "/" + std::to_string(whole.size()));
  }
  SUBCASE("a range past the end") {
    const auto r = http_get(w.port(), "/job/frames/artifacts/frames_index.json?" + q,
                            {{"Range", "bytes=" + std::to_string(whole.size()) + "-"}});
    CHECK(r.status == 416);
  }
  SUBCASE("names that leave the artifact folder, or are not listed") {
    for (const char* name : {"..%2F..%2Fworker.db", "../../worker.db", "%2Fetc%2Fpasswd", "..", "nope.jpg",
                             "..%2Fjob_receipt.json"}) {
      const auto r = http_get(w.port(), std::string("/job/frames/artifacts/") + name + "?" + q);
      CHECK_MESSAGE(r.status == 404, name);
    }
  }
  SUBCASE("ids that are not plain names") {
    json body = job_body("run", "../escape", "FFMPEG_PROBE", json{{"media_path", "/x"}});
    auto r = http_post(w.port(), "/job", body.dump());
    CHECK(r.status == 400);
    CHECK(r.detail() == "job_id must not hold a path separator ('/' or '\\')");
    body = job_body("../run", "ok-id", "FFMPEG_PROBE", json{{"media_path", "/x"}});
    CHECK(http_post(w.port(), "/job", body.dump()).status == 400);
    CHECK_FALSE(fs::exists(w.root() / "escape"));
    CHECK(http_get(w.port(), "/job/..%2F..%2Fetc?" + signed_query("run", "../../etc", "JOB_STATUS", h)).status == 404);
  }
  SUBCASE("output_dir outside the workspace fails the job, inside it is used") {
    const json out_payload{{"video_path", video.string()}, {"every_sec", 2}, {"output_dir", "../../outside"}};
    const std::string oh = protocol::inputs_hash(out_payload);
    REQUIRE(http_post(w.port(), "/job", job_body("run", "esc", "FRAME_SAMPLING", out_payload).dump()).status == 200);
    const json esc = poll_job(w.port(), "run", "esc", oh, terminal);
    CHECK(esc["error_code"] == "INVALID_OUTPUT_DIR");
    CHECK(esc["exit_code"] == 2);
    CHECK_FALSE(fs::exists(w.root().parent_path() / "outside"));
    const json in_payload{{"video_path", video.string()}, {"every_sec", 2}, {"output_dir", "shots/a"}};
    const std::string ih = protocol::inputs_hash(in_payload);
    REQUIRE(http_post(w.port(), "/job", job_body("run", "inside", "FRAME_SAMPLING", in_payload).dump()).status == 200);
    CHECK(poll_job(w.port(), "run", "inside", ih, terminal)["status"] == "succeeded");
    CHECK(fs::exists(w.root() / "workspace/shots/a/frames_index.json"));
  }
}

TEST_CASE("integration: the worker refuses to listen on a public address") {
  TempDir t;
  platform::ProcessSpec spec;
  spec.argv = {RAYVAULT_WORKER_BIN, "--host", "0.0.0.0", "--port", "0", "--root", (t.path / "root").string()};
  spec.env = {{"RAYVAULT_CLUSTER_SECRET", "s3cret"}};
  spec.timeout = std::chrono::seconds(20);
  std::string err;
  spec.on_output_line = [&err](std::string_view l) { err += std::string(l); };
  auto r = platform::run_process(spec);
  REQUIRE(r.ok());
  CHECK(r->exit_code == 3);
  CHECK(err.find("refusing to listen on 0.0.0.0") != std::string::npos);
  SUBCASE("and to start without a secret") {
    spec.argv = {RAYVAULT_WORKER_BIN, "--port", "0", "--root", (t.path / "root").string()};
    spec.env = {{"RAYVAULT_CLUSTER_SECRET", std::nullopt}, {"RAYVAULT_CLUSTER_SECRET_CURRENT", std::nullopt}};
    err.clear();
    auto r2 = platform::run_process(spec);
    REQUIRE(r2.ok());
    CHECK(r2->exit_code == 3);
    CHECK(err.find("no cluster secret") != std::string::npos);
  }
}

TEST_CASE("integration: tool output that is not UTF-8 fails the job and not the worker") {
  TempDir t;
  const auto video = make_video(t.path, 1);
  const std::string path_env =
      path_with_standin(t.path / "bad-bin", "ffprobe", "printf 'bad \\377\\376 bytes\\n' >&2\nexit 1");
  WorkerProcess w(t.path, "w1", WorkerOptions{"s3cret", "", {}, {{"PATH", path_env}}});
  const json payload{{"media_path", video.string()}};
  const std::string h = protocol::inputs_hash(payload);
  REQUIRE(http_post(w.port(), "/job", job_body("run", "bad-utf8", "FFMPEG_PROBE", payload).dump()).status == 200);
  const json done = poll_job(w.port(), "run", "bad-utf8", h, terminal);
  CHECK(done["status"] == "failed");
  CHECK(done["error_code"] == "COMMAND_FAILED");
  CHECK(done["error_message"].get<std::string>().find("bad") != std::string::npos);
  // The worker is still up, its log and receipt are readable.
  CHECK(http_get(w.port(), "/health").status == 200);
  CHECK(http_get(w.port(), "/job/bad-utf8/logs?" + signed_query("run", "bad-utf8", "JOB_LOGS", h)).status == 200);
  CHECK(protocol::parse_json(*util::read_file(w.root() / "jobs/bad-utf8/job_receipt.json")).ok());
}

TEST_CASE("integration: the worker answers /health at once and detects its tools in the background") {
  TempDir t;
  const fs::path bin = t.path / "bin";
  fs::create_directories(bin);
  // An ffmpeg whose version query takes 3 s: detection cannot be done when the first /health comes.
  const std::string path = path_with_standin(bin, "ffmpeg",
                                             "case \"$1\" in -version) sleep 3; echo 'ffmpeg version 9.9 (slow stand-in)'; exit 0 ;; esac\n"
                                             "exec /usr/bin/ffmpeg \"$@\"",
                                             false);
  const fs::path ready = t.path / "ready.json";
  platform::ProcessSpec spec;
  spec.argv = {RAYVAULT_WORKER_BIN, "--port", "0", "--root", (t.path / "w").string(), "--ready-file", ready.string()};
  spec.env = {{"RAYVAULT_CLUSTER_SECRET", "s3cret"}, {"PATH", path}};
  const auto started = std::chrono::steady_clock::now();
  auto child = platform::Child::spawn(spec, t.path / "worker.log");
  REQUIRE(child.ok());
  // The port it took is in its start-up line, printed once it listens (the ready file comes later).
  int chosen = 0;
  while (chosen == 0 && std::chrono::steady_clock::now() - started < std::chrono::seconds(30)) {
    const auto log = util::read_file(t.path / "worker.log");
    const std::string out = log ? *log : std::string();
    if (const auto at = out.find("listening on 127.0.0.1:"); at != std::string::npos)
      chosen = std::atoi(out.c_str() + at + std::string("listening on 127.0.0.1:").size());
    REQUIRE(child->running());
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  REQUIRE(chosen > 0);
  const HttpReply first = http_get(chosen, "/health");
  REQUIRE(first.status == 200);
  const json early = first.json_body()["caps"];
  CHECK(early["caps_pending"] == true);
  CHECK(early["ffmpeg_version"] == "detecting");
  CHECK(early["os"] == platform::os_name());
  CHECK(early["supported_steps"].size() == 6);
  CHECK_FALSE(fs::exists(ready));  // ready means the capabilities are known
  // Once the probes are done: the ready file, and the real caps.
  while (!fs::exists(ready) && std::chrono::steady_clock::now() - started < std::chrono::seconds(30))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  REQUIRE(fs::exists(ready));
  CHECK(std::chrono::steady_clock::now() - started >= std::chrono::seconds(3));
  const json later = http_get(chosen, "/health").json_body()["caps"];
  CHECK_FALSE(later.contains("caps_pending"));
  CHECK(later["ffmpeg_version"] == "ffmpeg version 9.9 (slow stand-in)");
  CHECK(child->terminate() == 0);
}

namespace {
// A signed POST /jobs/watch body for `payload` ({jobs, wait_ms?, since?}).
json watch_body(const json& payload, std::string_view step = "JOB_WATCH") {
  json body = job_body("watch", "watch", std::string(step), payload);
  body["message_type"] = "watch_jobs";
  return body;
}
json watched(const std::string& job_id, const std::string& hash, const std::string& status) {
  return json{{"run_id", "run"}, {"job_id", job_id}, {"inputs_hash", hash}, {"status", status}};
}
}  // namespace

TEST_CASE("integration: POST /jobs/watch answers the jobs that changed and holds until one does") {
  TempDir t;
  const auto video = make_video(t.path, 1);
  const fs::path hold = t.path / "hold";
  REQUIRE(util::write_file_atomic(hold, "").ok());
  const std::string path_env = path_with_holding_standin(t.path / "bin", "ffprobe", hold);
  WorkerProcess w(t.path, "w1", WorkerOptions{"s3cret", "", {"--slots", "1"}, {{"PATH", path_env}}});
  const json p1{{"media_path", video.string()}}, p2{{"media_path", video.string()}, {"note", "second"}};
  const std::string h1 = protocol::inputs_hash(p1), h2 = protocol::inputs_hash(p2);
  REQUIRE(http_post(w.port(), "/job", job_body("run", "a", "FFMPEG_PROBE", p1).dump()).status == 200);
  REQUIRE(http_post(w.port(), "/job", job_body("run", "b", "FFMPEG_PROBE", p2).dump()).status == 200);
  REQUIRE(poll_job(w.port(), "run", "a", h1, [](const json& j) { return j.value("status", "") == "running"; })["status"] ==
          "running");
  const auto watch = [&](const json& payload) { return http_post(w.port(), "/jobs/watch", watch_body(payload).dump()); };

  SUBCASE("a status not given, or not the one given, is news at once") {
    const auto r = watch({{"jobs", {watched("a", h1, ""), watched("b", h2, "running")}}, {"wait_ms", 20000}});
    REQUIRE(r.status == 200);
    const json doc = r.json_body();
    REQUIRE(doc["jobs"].size() == 2);
    CHECK(doc["jobs"][0]["job_id"] == "a");
    CHECK(doc["jobs"][0]["job"]["status"] == "running");
    CHECK(doc["jobs"][1]["job"]["status"] == "queued");
    CHECK(doc["unchanged"] == 0);
    CHECK(doc["cursor"].is_number_unsigned());
  }
  SUBCASE("jobs it cannot read are named with the reason") {
    const auto r = watch({{"jobs", {watched("nope", h1, "queued"), watched("b", h1, "queued"), watched("a", h1, "running")}}});
    REQUIRE(r.status == 200);
    const json doc = r.json_body();
    REQUIRE(doc["jobs"].size() == 2);
    CHECK(doc["jobs"][0]["error"] == "not_found");
    CHECK(doc["jobs"][0]["detail"] == "job_id not found: nope");
    CHECK(doc["jobs"][1]["job_id"] == "b");
    CHECK(doc["jobs"][1]["error"] == "forbidden");  // b's inputs_hash is h2
    CHECK(doc["jobs"][1]["inputs_hash"] == h1);  // named as asked
    CHECK(doc["unchanged"] == 1);
  }
  SUBCASE("nothing new: held until the wait ends") {
    const auto start = std::chrono::steady_clock::now();
    const auto r = watch({{"jobs", {watched("a", h1, "running"), watched("b", h2, "queued")}}, {"wait_ms", 400}});
    REQUIRE_MESSAGE(r.status == 200, r.body);
    CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(350));
    CHECK(r.json_body()["jobs"].empty());
    CHECK(r.json_body()["unchanged"] == 2);
  }
  SUBCASE("held until a listed job changes, then answered with it") {
    const json first = watch({{"jobs", {watched("a", h1, "running")}}}).json_body();
    const json payload{{"jobs", {watched("a", h1, "running"), watched("b", h2, "queued")}},
                       {"wait_ms", 30000}, {"since", first["cursor"]}};
    auto answer = std::async(std::launch::async, [&] { return watch(payload); });
    CHECK(answer.wait_for(std::chrono::milliseconds(300)) == std::future_status::timeout);  // held
    fs::remove(hold);
    REQUIRE(answer.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
    const auto r = answer.get();
    REQUIRE(r.status == 200);
    const json doc = r.json_body();
    REQUIRE(!doc["jobs"].empty());
    for (const auto& j : doc["jobs"]) CHECK(j["job"]["status"] != (j["job_id"] == "a" ? "running" : "queued"));
    CHECK(doc["cursor"].get<std::uint64_t>() > first["cursor"].get<std::uint64_t>());
  }
  SUBCASE("a cursor that has moved on is news at once, even when no listed job changed") {
    const json first = watch({{"jobs", {watched("a", h1, "running")}}}).json_body();
    const auto r = watch({{"jobs", {watched("a", h1, "running")}}, {"wait_ms", 20000},
                          {"since", first["cursor"].get<std::uint64_t>() + 1000}});
    REQUIRE(r.status == 200);
    CHECK(r.json_body()["jobs"].empty());
    CHECK(r.json_body()["cursor"] == first["cursor"]);
  }
  SUBCASE("malformed or unbound watches are refused") {
    const json a = watched("a", h1, "running");
    CHECK(watch({{"jobs", json::array()}}).status == 400);
    CHECK(watch({{"jobs", "a"}}).status == 400);
    CHECK(watch(json::object()).status == 400);
    CHECK(watch({{"jobs", json::array({json{{"run_id", "run"}}})}}).detail() == "payload.jobs[0] needs run_id and job_id");
    json many = json::array();
    for (int i = 0; i < 257; ++i) many.push_back(a);
    CHECK(watch({{"jobs", many}}).detail() == "payload.jobs must list 1 to 256 jobs");
    CHECK(watch({{"jobs", {a}}, {"wait_ms", "400"}}).status == 400);
    CHECK(watch({{"jobs", {a}}, {"wait_ms", -1}}).status == 400);
    CHECK(watch({{"jobs", {a}}, {"since", -1}}).detail() == "since must be a cursor the worker answered");
    // The token binds the list: another list under the same token is refused.
    json body = watch_body({{"jobs", {a}}});
    body["payload"]["jobs"].push_back(watched("b", h2, "queued"));
    auto r = http_post(w.port(), "/jobs/watch", body.dump());
    CHECK(r.status == 401);
    CHECK(r.detail() == "payload does not match inputs_hash");
    // A token for another step, another secret, or the wrong message type.
    r = http_post(w.port(), "/jobs/watch", watch_body({{"jobs", {a}}}, "JOB_STATUS").dump());
    CHECK(r.status == 401);
    body = watch_body({{"jobs", {a}}});
    body["message_type"] = "submit_job";
    CHECK(http_post(w.port(), "/jobs/watch", body.dump()).status == 400);
    CHECK(http_get(w.port(), "/jobs/watch").status == 405);
  }
  fs::remove(hold);
}
