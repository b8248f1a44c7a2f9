// The real controller driving real workers: health, caps, both steps end to end with verified
// artifacts, failover, local fallback and the local cache, resumable and verified sync.
#include <doctest/doctest.h>

#include "protocol/steps.hpp"
#include "tests/integration/harness.hpp"
#include "util/files.hpp"

using namespace rayvault;
using namespace rayvault::test;

TEST_CASE("integration: controller health and caps") {
  TempDir t;
  WorkerProcess a(t.path, "wa");
  WorkerProcess b(t.path, "wb");
  // A third node that nobody answers for: a port that was free a moment ago.
  int dead_port = 0;
  {
    WorkerProcess gone(t.path, "gone");
    dead_port = gone.port();
  }
  write_nodes(t.path, {{"wa", a.port()}, {"wb", b.port()}, {"dead", dead_port}});

  const auto h = run_controller(t.path, {"health"});
  CHECK(h.exit_code == 0);
  CHECK(h.doc["ok"] == true);
  CHECK(h.doc["controller_auth_source"] == "RAYVAULT_CLUSTER_SECRET");
  CHECK(h.doc["controller_auth_mode"] == "hmac_strict");
  REQUIRE(h.doc["workers"].size() == 3);
  CHECK(h.doc["workers"][0]["ok"] == true);
  CHECK(h.doc["workers"][0]["worker_id"] == "wa");
  CHECK(h.doc["workers"][1]["worker_id"] == "wb");
  CHECK(h.doc["workers"][2]["ok"] == false);
  CHECK(h.doc["workers"][2]["error"].get<std::string>().find("cannot reach") != std::string::npos);

  const auto c = run_controller(t.path, {"caps"});
  CHECK(c.exit_code == 1);  // one node is down
  CHECK(c.doc["ok"] == false);
  REQUIRE(c.doc["rows"].size() == 3);
  const json caps = c.doc["rows"][0]["caps"];
  for (const char* key : {"os", "cpu", "ram_gb", "gpu_model", "vram_gb", "python_version", "ffmpeg_version",
                          "davinci_available"}) {
    CHECK_MESSAGE(caps.contains(key), key);
    CHECK_MESSAGE(caps["capabilities"].contains(key), key);
  }
  CHECK(caps["os"] == "linux");
  CHECK(caps["capabilities"]["ffprobe"] == true);
  CHECK(caps["capabilities"]["slots"] == 2);

  const auto one = run_controller(t.path, {"caps", "--node-id", "wb"});
  CHECK(one.exit_code == 0);
  CHECK(one.doc["rows"].size() == 1);

  SUBCASE("a wrong secret is refused and never printed") {
    const auto bad = run_controller(t.path, {"caps", "--node-id", "wa", "--cluster-secret", "wrong-secret-value"});
    CHECK(bad.exit_code == 1);
    CHECK(bad.doc["rows"][0]["error"].get<std::string>().find("auth_token invalid") != std::string::npos);
    CHECK(bad.out.find("wrong-secret-value") == std::string::npos);
  }
}

TEST_CASE("integration: FFMPEG_PROBE and FRAME_SAMPLING through the controller") {
  TempDir t;
  const auto video = make_video(t.path, 6);
  WorkerProcess w(t.path, "w1");
  write_nodes(t.path, {{"w1", w.port()}});

  const auto probe = run_controller(
      t.path, {"submit", "--run-id", "run1", "--job-id", "probe1", "--step-name", "FFMPEG_PROBE", "--payload-json",
               json{{"media_path", video.string()}}.dump()});
  CHECK(probe.exit_code == 0);
  CHECK(probe.doc["ok"] == true);
  CHECK(probe.doc["mode"] == "remote");
  CHECK(probe.doc["node_id"] == "w1");
  CHECK(probe.doc["status"] == "succeeded");
  CHECK(probe.doc["exit_code"] == 0);
  const fs::path rdir = t.path / "state/cluster/receipts/run1/probe1";
  const auto ffprobe_json = protocol::parse_json(*util::read_file(rdir / "artifacts/ffprobe.json"));
  REQUIRE(ffprobe_json.ok());
  CHECK(std::stod((*ffprobe_json)["format"]["duration"].get<std::string>()) == doctest::Approx(6.0).epsilon(0.05));
  CHECK(sha256_of(rdir / "artifacts/ffprobe.json") == sha256_of(w.root() / "jobs/probe1/artifacts/ffprobe.json"));
  const auto receipt = protocol::parse_json(*util::read_file(rdir / "job_receipt.json"));
  REQUIRE(receipt.ok());
  CHECK((*receipt)["mode"] == "remote");
  CHECK((*receipt)["node_id"] == "w1");
  CHECK((*receipt)["downloaded_artifacts"][0]["verified"] == true);
  CHECK((*receipt)["downloaded_artifacts"][0]["local_path"] == (rdir / "artifacts/ffprobe.json").string());
  CHECK(util::read_file(rdir / "worker.log")->find("job_succeeded") != std::string::npos);

  const auto frames = run_controller(
      t.path, {"submit", "--run-id", "run1", "--job-id", "frames1", "--step-name", "frame_sampling", "--payload-json",
               json{{"video_path", video.string()}, {"every_sec", 2}}.dump()});
  CHECK(frames.exit_code == 0);
  CHECK(frames.doc["status"] == "succeeded");
  const fs::path fdir = t.path / "state/cluster/receipts/run1/frames1/artifacts";
  const auto index = protocol::parse_json(*util::read_file(fdir / "frames_index.json"));
  REQUIRE(index.ok());
  CHECK((*index)["count"] == 3);
  // The index names each frame by its full path on the worker; the same file arrived here.
  for (const auto& f : (*index)["frames"]) {
    const fs::path on_worker = f.get<std::string>();
    CHECK(on_worker.parent_path() == w.root() / "jobs/frames1/artifacts");
    CHECK(sha256_of(fdir / on_worker.filename()) == sha256_of(on_worker));
  }

  SUBCASE("resubmission is idempotent and the step runs once") {
    const auto again = run_controller(
        t.path, {"submit", "--run-id", "run2", "--job-id", "frames2", "--step-name", "FRAME_SAMPLING", "--payload-json",
                 json{{"video_path", video.string()}, {"every_sec", 2}}.dump()});
    CHECK(again.exit_code == 0);
    CHECK(again.doc["idempotent"] == true);
    CHECK(again.doc["remote_job_id"] == "frames1");
    CHECK(fs::exists(t.path / "state/cluster/receipts/run2/frames2/artifacts/frame_000003.jpg"));
    CHECK_FALSE(fs::exists(w.root() / "jobs/frames2"));
  }
  SUBCASE("status and logs answer from the ledger and the worker") {
    const auto st = run_controller(t.path, {"status", "--run-id", "run1", "--job-id", "frames1"});
    CHECK(st.exit_code == 0);
    CHECK(st.doc["ledger"]["node_id"] == "w1");
    CHECK(st.doc["ledger"]["status"] == "succeeded");
    CHECK(st.doc["job"]["status"] == "succeeded");
    CHECK(st.doc["job"]["worker_id"] == "w1");
    const auto lg = run_controller(t.path, {"logs", "--run-id", "run1", "--job-id", "frames1"});
    CHECK(lg.exit_code == 0);
    REQUIRE(lg.doc["lines"].size() >= 3);
    CHECK(lg.doc["lines"][0]["event"] == "job_queued");
    const auto unknown = run_controller(t.path, {"status", "--run-id", "run1", "--job-id", "never"});
    CHECK(unknown.exit_code == 2);
    CHECK(unknown.doc["error"].get<std::string>().find("the ledger has no submission run1/never") != std::string::npos);
  }
  SUBCASE("--force runs a finished job again on the worker") {
    const auto forced = run_controller(
        t.path, {"submit", "--run-id", "run1", "--job-id", "probe1", "--step-name", "FFMPEG_PROBE", "--payload-json",
                 json{{"media_path", video.string()}}.dump(), "--force"});
    CHECK(forced.exit_code == 0);
    CHECK(forced.doc["mode"] == "remote");
    const std::string log = *util::read_file(t.path / "state/cluster/receipts/run1/probe1/worker.log");
    std::size_t starts = 0;
    for (std::size_t p = 0; (p = log.find("\"event\":\"job_started\"", p)) != std::string::npos; ++p) ++starts;
    CHECK(starts == 2);
  }
  // frame_000002.jpg's synced copy replaced by a partial download of half its size: its first
  // half, or (good == false) as many wrong bytes.
  const fs::path frame = fdir / "frame_000002.jpg";
  const fs::path part = fs::path(frame).concat(".part");
  auto cut_to_partial = [&](bool good) {
    const std::string bytes = *util::read_file(frame);
    fs::remove(frame);
    REQUIRE(util::write_file_atomic(part, good ? bytes.substr(0, bytes.size() / 2) : std::string(bytes.size() / 2, 'x')).ok());
    return bytes;
  };
  SUBCASE("sync-artifacts resumes a partial file with Range, from the ledger alone") {
    const std::string bytes = cut_to_partial(true);
    const auto s = run_controller(t.path, {"sync-artifacts", "--run-id", "run1", "--job-id", "frames1"});
    CHECK(s.exit_code == 0);
    CHECK(s.doc["ok"] == true);
    CHECK(*util::read_file(frame) == bytes);
    CHECK_FALSE(fs::exists(part));
    bool resumed = false;
    for (const auto& d : s.doc["receipt"]["downloaded_artifacts"])
      if (d["name"] == "frame_000002.jpg") resumed = d.value("resumed", false);
    CHECK(resumed);
  }
  SUBCASE("a partial file whose bytes are wrong is found out when the rest arrives and the next sync starts over") {
    const std::string bytes = cut_to_partial(false);
    auto s = run_controller(t.path, {"sync-artifacts", "--run-id", "run1", "--job-id", "frames1"});
    CHECK(s.exit_code == 2);
    CHECK_FALSE(fs::exists(frame));
    CHECK_FALSE(fs::exists(part));
    s = run_controller(t.path, {"sync-artifacts", "--run-id", "run1", "--job-id", "frames1"});
    CHECK(s.exit_code == 0);
    CHECK(*util::read_file(frame) == bytes);
  }
  SUBCASE("an artifact that does not match its SHA-256 is an error and is not kept") {
    // Corrupt the worker's copy after the fact: the listed hash no longer matches its bytes.
    const fs::path on_worker = w.root() / "jobs/frames1/artifacts/frame_000001.jpg";
    REQUIRE(util::write_file_atomic(on_worker, "corrupted bytes").ok());
    fs::remove(fdir / "frame_000001.jpg");
    const auto s = run_controller(t.path, {"sync-artifacts", "--run-id", "run1", "--job-id", "frames1"});
    CHECK(s.exit_code == 2);
    CHECK(s.doc["ok"] == false);
    json row;
    for (const auto& d : s.doc["receipt"]["downloaded_artifacts"])
      if (d["name"] == "frame_000001.jpg") row = d;
    REQUIRE(row.is_object());
    CHECK(row["local_path"] == "");
    CHECK(row["error"].get<std::string>().find("sha256 mismatch") != std::string::npos);
    CHECK_FALSE(fs::exists(fdir / "frame_000001.jpg"));
    CHECK_FALSE(fs::exists(fdir / "frame_000001.jpg.part"));
  }
  SUBCASE("a step's failure on the content is the job's answer, with its error code") {
    // The file exists but is no media: ffprobe's verdict (COMMAND_FAILED) is not the node's fault.
    REQUIRE(util::write_file_atomic(t.path / "not-media.mp4", "plain text, not a video").ok());
    const auto bad = run_controller(t.path, {"submit", "--run-id", "run1", "--job-id", "bad", "--step-name", "FFMPEG_PROBE",
                                             "--payload-json", json{{"media_path", (t.path / "not-media.mp4").string()}}.dump()});
    CHECK(bad.exit_code == 2);
    CHECK(bad.doc["mode"] == "remote");
    CHECK(bad.doc["status"] == "failed");
    CHECK(bad.doc["error_code"] == "COMMAND_FAILED");
  }
}

TEST_CASE("integration: failover and local fallback") {
  TempDir t;
  const auto video = make_video(t.path, 2);
  const std::string payload = json{{"media_path", video.string()}}.dump();
  int dead_port = 0;
  {
    WorkerProcess gone(t.path, "gone");
    dead_port = gone.port();
  }

  SUBCASE("no worker answers: the job runs locally, then comes from the cache, --force runs it again") {
    write_nodes(t.path, {{"dead", dead_port}});
    const auto r = run_controller(t.path, {"submit", "--run-id", "r", "--job-id", "j", "--step-name", "FFMPEG_PROBE",
                                           "--payload-json", payload});
    CHECK(r.exit_code == 0);
    CHECK(r.doc["mode"] == "local");
    CHECK(r.doc["node_id"] == "local");
    CHECK(r.doc["status"] == "succeeded");
    CHECK(r.doc["message"].get<std::string>().find("dead") != std::string::npos);
    CHECK(fs::exists(t.path / "state/cluster/receipts/r/j/artifacts/ffprobe.json"));
    const std::string cache = "state/cluster/local_cache/ffmpeg_probe_" + r.doc["inputs_hash"].get<std::string>() + ".json";
    CHECK(fs::exists(t.path / cache));
    const auto cached = run_controller(t.path, {"submit", "--run-id", "r", "--job-id", "j2", "--step-name", "FFMPEG_PROBE",
                                                "--payload-json", payload});
    CHECK(cached.doc["mode"] == "local_cached");
    CHECK(cached.doc["status"] == "succeeded");
    const auto forced = run_controller(t.path, {"submit", "--run-id", "r", "--job-id", "j3", "--step-name", "FFMPEG_PROBE",
                                                "--payload-json", payload, "--force"});
    CHECK(forced.doc["mode"] == "local");
    CHECK(forced.doc["status"] == "succeeded");
    const auto no_fallback = run_controller(t.path, {"submit", "--run-id", "r", "--job-id", "j4", "--step-name",
                                                     "FRAME_SAMPLING", "--payload-json", payload, "--no-local-fallback"});
    CHECK(no_fallback.exit_code == 2);
    CHECK(no_fallback.doc["ok"] == false);
    CHECK(no_fallback.doc["attempts"][0]["node_id"] == "dead");
  }
  SUBCASE("the first worker is down: the next one runs it") {
    WorkerProcess w(t.path, "alive");
    write_nodes(t.path, {{"dead", dead_port}, {"alive", w.port()}});
    const auto r = run_controller(t.path, {"submit", "--run-id", "r", "--job-id", "j", "--step-name", "FFMPEG_PROBE",
                                           "--payload-json", payload});
    CHECK(r.exit_code == 0);
    CHECK(r.doc["mode"] == "remote");
    CHECK(r.doc["node_id"] == "alive");
  }
  SUBCASE("no worker meets the requirements: local, saying why") {
    WorkerProcess w(t.path, "linux-box");
    write_nodes(t.path, {{"linux-box", w.port()}});
    const auto r = run_controller(t.path, {"submit", "--run-id", "r", "--job-id", "j", "--step-name", "FFMPEG_PROBE",
                                           "--payload-json", payload, "--requirements-json", R"({"os_in":["windows"]})"});
    CHECK(r.doc["mode"] == "local");
    CHECK(r.doc["message"].get<std::string>().find("os linux not in os_in") != std::string::npos);
  }
  SUBCASE("bad command-line input is refused with exit 2 and nothing written") {
    write_nodes(t.path, {{"dead", dead_port}});
    auto r = run_controller(t.path, {"submit", "--run-id", "../x", "--job-id", "j", "--step-name", "FFMPEG_PROBE"});
    CHECK(r.exit_code == 2);
    CHECK_FALSE(fs::exists(t.path / "state/cluster/x"));
    r = run_controller(t.path, {"submit", "--run-id", "r", "--job-id", "j", "--step-name", "FFMPEG_PROBE", "--payload-json", "{"});
    CHECK(r.exit_code == 2);
    CHECK(r.doc["error"].get<std::string>().find("malformed JSON") != std::string::npos);
    r = run_controller(t.path, {"submit", "--run-id", "r", "--job-id", "j", "--step-name", "FFMPEG_PROBE", "--payload-json",
                                "{}", "--requirements-json", R"({"min_ram":1})"});
    CHECK(r.exit_code == 2);
    r = run_controller(t.path, {"--nodes-file", "missing.json", "health"});
    CHECK(r.exit_code == 3);
  }
}
