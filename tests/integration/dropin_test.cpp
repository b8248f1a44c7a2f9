// Drop-in for the Python nodes: what their scripts and peers rely on behaves as the contract says,
// item by item, against real workers, the real controller and a stand-in Python worker.
#include <doctest/doctest.h>
#include <httplib.h>

#include <functional>

#include "protocol/ids.hpp"
#include "tests/integration/harness.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"

using namespace rayvault;
using namespace rayvault::test;

namespace {

bool terminal(const json& j) {
  return j.is_object() && (j.value("status", "") == "succeeded" || j.value("status", "") == "failed");
}

std::string enc(const std::string& s) { return httplib::detail::encode_query_param(s); }

json read_json(const fs::path& p) {
  auto text = util::read_file(p);
  REQUIRE_MESSAGE(text.ok(), p.string());
  auto doc = protocol::parse_json(*text);
  REQUIRE(doc.ok());
  return *doc;
}

// Every value of a document, recursively, is not null.
bool has_null(const json& j) {
  if (j.is_null()) return true;
  if (j.is_structured())
    for (const auto& v : j)
      if (has_null(v)) return true;
  return false;
}

// Submits a job straight to a worker and follows it to its end.
json run_job(const WorkerProcess& w, const std::string& run, const std::string& job, const std::string& step,
             const json& payload) {
  const auto r = http_post(w.port(), "/job", job_body(run, job, step, payload).dump());
  REQUIRE_MESSAGE(r.status == 200, r.body);
  return poll_job(w.port(), run, job, protocol::inputs_hash(payload), terminal);
}

// A loopback port where nothing listens (port 1 needs root to bind, and nothing here binds it).
constexpr int kDeadPort = 1;

std::vector<std::string> submit_args(const std::string& run, const std::string& job, const std::string& step,
                                     const json& payload, std::vector<std::string> more = {}) {
  std::vector<std::string> a{"submit", "--run-id", run, "--job-id", job, "--step-name", step, "--payload-json", payload.dump()};
  a.insert(a.end(), more.begin(), more.end());
  return a;
}

}  // namespace

// Item 1: a worker without artifact_download is not asked for bytes; its job is ok; sync likewise.
TEST_CASE("drop-in 1: a Python worker's succeeded job is ok without artifact bytes") {
  TempDir t;
  PythonWorkerStandIn py("py-worker");
  write_nodes(t.path, {{"py", py.port()}});
  // A path on the worker's own share: sent as it is.
  const auto r = run_controller(t.path, submit_args("run1", "probe1", "FFMPEG_PROBE", {{"media_path", "/srv/media/a.mp4"}}, {"--no-stage"}));
  CHECK(r.exit_code == 0);
  CHECK(r.doc["ok"] == true);
  CHECK(r.doc["mode"] == "remote");
  CHECK(r.doc["node_id"] == "py");
  CHECK(r.doc["status"] == "succeeded");
  CHECK(py.job_submissions() == 1);
  CHECK(py.artifact_byte_requests() == 0);
  CHECK(py.wait_ms_requests() == 0);  // it does not advertise wait_ms either: plain polling
  const json receipt = read_json(t.path / "state/cluster/receipts/run1/probe1/job_receipt.json");
  REQUIRE(receipt["artifacts"].size() == 1);
  CHECK(receipt["artifacts"][0]["path"] == "/srv/rayvault/jobs/probe1/artifacts/ffprobe.json");
  CHECK(receipt["downloaded_artifacts"] == json::array());
  CHECK(receipt["artifact_download"] == false);
  CHECK(receipt["job_status"]["metrics"]["media_path"] == "/srv/media/a.mp4");

  const auto s = run_controller(t.path, {"sync-artifacts", "--run-id", "run1", "--job-id", "probe1"});
  CHECK(s.exit_code == 0);
  CHECK(s.doc["ok"] == true);
  CHECK(s.doc["receipt"]["downloaded_artifacts"] == json::array());
  CHECK(py.artifact_byte_requests() == 0);
}

// Item 2 and item 9 from the controller's side: a peer that writes null (our worker 2.0.0 did) or
// a hostile artifact row still gives a receipt without null in its RECORD, and no crash.
TEST_CASE("drop-in 2: a peer's nulls and a malformed artifact row") {
  TempDir t;
  PythonWorkerStandIn old("old-worker", "", PythonWorkerStandIn::Flavor::older_rayvault);
  write_nodes(t.path, {{"old", old.port()}});
  // A path on the worker's own share: sent as it is.
  const auto r = run_controller(t.path, submit_args("run1", "probe1", "FFMPEG_PROBE", {{"media_path", "/srv/media/a.mp4"}}, {"--no-stage"}));
  CHECK(r.exit_code == 2);  // an artifact could not be verified: reported, not a crash
  CHECK(r.doc["status"] == "succeeded");
  CHECK(r.doc["message"].get<std::string>().find("artifact(s) failed to download or verify") != std::string::npos);
  const json rc = read_json(t.path / "state/cluster/receipts/run1/probe1/job_receipt.json");
  for (const auto& [key, value] : rc["job_status"].items()) CHECK_MESSAGE(!value.is_null(), key);
  CHECK(rc["job_status"]["error_code"] == "");
  CHECK(rc["job_status"]["started_at"].is_string());
  CHECK(rc["exit_code"] == 0);
  REQUIRE(rc["downloaded_artifacts"].size() == 2);
  for (const auto& row : rc["downloaded_artifacts"]) {
    CHECK(row["local_path"] == "");
    CHECK(row["error"].is_string());
  }
  CHECK(old.artifact_byte_requests() == 2);
}

// Item 2: the receipt keeps the Python controller's shape, remote and local.
TEST_CASE("drop-in 2: job_receipt.json in the Python controller's shape") {
  TempDir t;
  const auto video = make_video(t.path, 2);
  WorkerProcess w(t.path, "w1");
  write_nodes(t.path, {{"w1", w.port()}});
  const auto r = run_controller(t.path, submit_args("run1", "probe1", "FFMPEG_PROBE", {{"media_path", video.string()}}));
  REQUIRE(r.exit_code == 0);
  for (const char* key : {"ok", "mode", "run_id", "job_id", "step_name", "status", "node_id", "idempotent", "exit_code",
                          "message", "receipt_path"})
    CHECK_MESSAGE(r.doc.contains(key), key);
  const fs::path dir = t.path / "state/cluster/receipts/run1/probe1";
  CHECK(r.doc["receipt_path"] == (dir / "job_receipt.json").string());
  const json rc = read_json(dir / "job_receipt.json");
  CHECK(rc["mode"] == "remote");
  CHECK(rc["node_id"] == "w1");
  CHECK(rc["run_id"] == "run1");
  CHECK(rc["job_id"] == "probe1");
  CHECK(rc["inputs_hash"] == r.doc["inputs_hash"]);
  CHECK(rc["status"] == "succeeded");
  CHECK(rc["exit_code"] == 0);
  CHECK(rc["finished_at"].is_string());
  CHECK_FALSE(rc["finished_at"].get<std::string>().empty());
  // job_status is the worker's RECORD, as the worker answers it.
  REQUIRE(rc["job_status"].is_object());
  CHECK(rc["job_status"]["status"] == "succeeded");
  CHECK(rc["job_status"]["worker_id"] == "w1");
  CHECK(rc["job_status"]["artifacts"] == rc["artifacts"]);
  CHECK(rc["artifacts"][0]["sha256"] == sha256_of(w.root() / "jobs/probe1/artifacts/ffprobe.json"));
  const json d = rc["downloaded_artifacts"][0];
  CHECK(d["name"] == "ffprobe.json");
  CHECK(d["local_path"] == (dir / "artifacts/ffprobe.json").string());
  CHECK(d["size"] == fs::file_size(dir / "artifacts/ffprobe.json"));
  CHECK(d["sha256"] == sha256_of(dir / "artifacts/ffprobe.json"));
  CHECK(rc["artifacts_dir"] == (dir / "artifacts").string());
  CHECK(rc["artifacts_zip"] == "");
  CHECK(rc["remote_receipt_path"] == (w.root() / "jobs/probe1/job_receipt.json").string());
  CHECK(rc["log_path"] == (dir / "worker.log").string());
  CHECK(fs::exists(dir / "worker.log"));
  CHECK_FALSE(has_null(rc));

  SUBCASE("local: log_path and the step's metrics as the worker gives them") {
    w.stop();
    const auto l = run_controller(t.path, submit_args("run1", "probe2", "FFMPEG_PROBE",
                                                      {{"media_path", video.string()}, {"note", "local"}}));
    REQUIRE(l.exit_code == 0);
    CHECK(l.doc["mode"] == "local");
    const fs::path ldir = t.path / "state/cluster/receipts/run1/probe2";
    const json lr = read_json(ldir / "job_receipt.json");
    CHECK(lr["mode"] == "local");
    CHECK(lr["step_name"] == "FFMPEG_PROBE");
    REQUIRE(lr["job_status"].is_object());  // the RECORD, as in a remote receipt
    CHECK(lr["job_status"]["status"] == "succeeded");
    CHECK(lr["job_status"]["metrics"] == lr["metrics"]);
    CHECK(lr["log_path"] == (ldir / "worker.log").string());
    CHECK(util::read_file(ldir / "worker.log")->find("job_succeeded") != std::string::npos);
    CHECK(lr["metrics"]["media_path"] == video.string());
    CHECK(lr["duration_ms"].is_number_integer());
    CHECK(lr["downloaded_artifacts"][0]["local_path"] == (ldir / "artifacts/ffprobe.json").string());
    CHECK_FALSE(has_null(lr));

    // Cached: the receipt names this job's own folder, which holds the log and the artifacts.
    const auto c = run_controller(t.path, submit_args("run1", "probe3", "FFMPEG_PROBE",
                                                      {{"media_path", video.string()}, {"note", "local"}}));
    REQUIRE(c.exit_code == 0);
    CHECK(c.doc["mode"] == "local_cached");
    const fs::path cdir = t.path / "state/cluster/receipts/run1/probe3";
    const json cr = read_json(cdir / "job_receipt.json");
    CHECK(cr["log_path"] == (cdir / "worker.log").string());
    CHECK(cr["artifacts_dir"] == (cdir / "artifacts").string());
    CHECK(cr["downloaded_artifacts"][0]["local_path"] == (cdir / "artifacts/ffprobe.json").string());
    CHECK(sha256_of(cdir / "artifacts/ffprobe.json") == sha256_of(ldir / "artifacts/ffprobe.json"));
    const auto logs = run_controller(t.path, {"logs", "--run-id", "run1", "--job-id", "probe3"});
    CHECK(logs.exit_code == 0);
    CHECK(logs.doc["lines"].size() >= 3);
  }
}

// Item 3: secrets trimmed, blank ones skipped; source and mode as the Python controller prints them.
TEST_CASE("drop-in 3: trimmed secrets with their source and mode - no secret stops remote commands with exit 3") {
  TempDir t;
  WorkerProcess w(t.path, "w1", WorkerOptions{"  s3cret \n", ""});  // the worker trims its own
  write_nodes(t.path, {{"w1", w.port()}});
  const std::vector<std::pair<std::string, std::optional<std::string>>> padded{
      {"RAYVAULT_CLUSTER_SECRET", "   "}, {"RAYVAULT_CLUSTER_SECRET_CURRENT", "\t s3cret  "},
      {"RAYVAULT_CONTROLLER_AUTH_MODE", " HMAC_Strict "}};

  const auto h = run_controller(t.path, {"--cluster-secret", "  ", "health"}, padded);
  CHECK(h.exit_code == 0);
  CHECK(h.doc["controller_auth_source"] == "RAYVAULT_CLUSTER_SECRET_CURRENT");
  CHECK(h.doc["controller_auth_mode"] == "hmac_strict");
  REQUIRE(h.doc["workers"].size() == 1);
  CHECK(h.doc["workers"][0]["ok"] == true);
  CHECK(h.doc["workers"][0]["error"] == "");

  const auto c = run_controller(t.path, {"caps"}, padded);
  CHECK(c.exit_code == 0);
  CHECK(c.doc["rows"][0]["ok"] == true);
  const auto cli = run_controller(t.path, {"--cluster-secret", " s3cret ", "caps"}, {{"RAYVAULT_CLUSTER_SECRET", std::nullopt}});
  CHECK(cli.exit_code == 0);

  const std::vector<std::pair<std::string, std::optional<std::string>>> none{{"RAYVAULT_CLUSTER_SECRET", " "},
                                                                             {"RAYVAULT_CLUSTER_SECRET_CURRENT", ""}};
  const auto hn = run_controller(t.path, {"health"}, none);
  CHECK(hn.exit_code == 0);
  CHECK(hn.doc["controller_auth_source"] == "none");
  CHECK(hn.doc["workers"][0]["ok"] == true);
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"caps"},
           submit_args("r", "j", "FFMPEG_PROBE", {{"media_path", "/x"}}),
           {"sync-artifacts", "--run-id", "r", "--job-id", "j", "--node-id", "w1", "--inputs-hash", std::string(64, 'a')}}) {
    const auto r = run_controller(t.path, args, none);
    CHECK_MESSAGE(r.exit_code == 3, args[0]);
    CHECK(r.doc["ok"] == false);
    CHECK(r.doc["error"].get<std::string>().rfind("no cluster secret", 0) == 0);
  }
  // Nothing ran locally in place of the refused submit.
  CHECK_FALSE(fs::exists(t.path / "state/cluster/receipts/r"));
}

// Item 4: health and caps list only the enabled nodes whose role is worker.
TEST_CASE("drop-in 4: health and caps list only enabled worker nodes") {
  TempDir t;
  WorkerProcess w(t.path, "w1");
  const std::string p = std::to_string(w.port());
  write_nodes_file(t.path, R"({"nodes":[{"node_id":"w1","host":"127.0.0.1","port":)" + p + R"(},)"
                           R"({"node_id":"off","host":"127.0.0.1","port":)" + p + R"(,"enabled":false},)"
                           R"({"node_id":"mac-controller","host":"127.0.0.1","port":)" + p + R"(,"role":"controller"}]})");
  const auto h = run_controller(t.path, {"health"});
  REQUIRE(h.doc["workers"].size() == 1);
  CHECK(h.doc["workers"][0]["node_id"] == "w1");
  const auto c = run_controller(t.path, {"caps"});
  CHECK(c.exit_code == 0);
  REQUIRE(c.doc["rows"].size() == 1);
  CHECK(c.doc["rows"][0]["node_id"] == "w1");
  const auto off = run_controller(t.path, {"caps", "--node-id", "off"});
  CHECK(off.exit_code == 2);
  CHECK(off.doc["error"] == "no enabled worker node 'off' in the nodes file");
}

// Item 5: every nodes.json the Python controller accepts is accepted, with warnings on stderr.
TEST_CASE("drop-in 5: a lenient nodes.json is accepted - what is not a JSON object is refused") {
  TempDir t;
  WorkerProcess w(t.path, "w1");
  const std::string p = std::to_string(w.port());
  write_nodes_file(t.path, R"({"controller":{"poll_interval_sec":"0.2"},"nodes":[)"
                           R"({"node_id":"  w1 ","host":" 127.0.0.1 ","port":")" + p + R"(","enabled":"true"},)"
                           R"("not an object",{"node_id":"nohost"},{"host":"127.0.0.1"},)"
                           R"({"node_id":"off","host":"127.0.0.1","port":)" + p + R"(,"enabled":0},)"
                           R"({"node_id":"typo","host":"127.0.0.1","port":"87 87"}]})");
  const auto h = run_controller(t.path, {"health"});
  CHECK(h.exit_code == 0);
  REQUIRE(h.doc["workers"].size() == 2);
  // A node whose entry cannot be used is listed as failing, with the reason, not dropped.
  CHECK(h.doc["workers"][1]["node_id"] == "typo");
  CHECK(h.doc["workers"][1]["ok"] == false);
  CHECK(h.doc["workers"][1]["error"] == "nodes.json: nodes[5] ('typo') port must be a number");
  CHECK(h.doc["workers"][0]["node_id"] == "w1");
  CHECK(h.doc["workers"][0]["host"] == "127.0.0.1");
  CHECK(h.doc["workers"][0]["port"] == w.port());
  CHECK(h.doc["workers"][0]["ok"] == true);
  for (const char* warning : {"warning: nodes.json: nodes[0] ('w1').enabled is \"true\", read as true",
                              "warning: nodes.json: nodes[1] is not an object; skipped",
                              "warning: nodes.json: nodes[2] ('nohost') has no host; skipped",
                              "warning: nodes.json: nodes[3] has no node_id; skipped",
                              "warning: nodes.json: nodes[4] ('off').enabled is 0, read as false",
                              "warning: nodes.json: nodes[5] ('typo') port must be a number; the node is listed but not contacted"})
    CHECK_MESSAGE(h.err.find(warning) != std::string::npos, warning << "\nstderr: " << h.err);

  const auto video = make_video(t.path, 1);
  const auto s = run_controller(t.path, submit_args("r", "j", "FFMPEG_PROBE", {{"media_path", video.string()}},
                                                    {"--requirements-json", R"({"gpu_required":"false","min_ram_gb":"1"})"}));
  CHECK(s.exit_code == 0);
  CHECK(s.doc["mode"] == "remote");
  CHECK(s.err.find("requirements: gpu_required is \"false\", read as false") != std::string::npos);

  for (const char* text : {"not json at all", "[1, 2]", "\"nodes\""}) {
    write_nodes_file(t.path, text);
    const auto r = run_controller(t.path, {"health"});
    CHECK_MESSAGE(r.exit_code == 3, text);
    CHECK(r.doc["error"].get<std::string>().rfind("nodes.json: ", 0) == 0);
  }
}

// Item 6: --inputs-hash is trimmed and lower-cased before use.
TEST_CASE("drop-in 6: --inputs-hash is trimmed and lower-cased") {
  TempDir t;
  const auto video = make_video(t.path, 1);
  WorkerProcess w(t.path, "w1");
  write_nodes(t.path, {{"w1", w.port()}});
  const std::string custom = "ABCDEF0123456789ABCDEF0123456789";
  const auto r = run_controller(t.path, submit_args("r", "j", "FFMPEG_PROBE", {{"media_path", video.string()}},
                                                    {"--inputs-hash", "  " + custom + " \n"}));
  CHECK(r.exit_code == 0);
  CHECK(r.doc["inputs_hash"] == util::ascii_lower(custom));
  const json rc = read_json(t.path / "state/cluster/receipts/r/j/job_receipt.json");
  CHECK(rc["job_status"]["inputs_hash"] == util::ascii_lower(custom));
  const auto st = run_controller(t.path, {"status", "--run-id", "r", "--job-id", "j", "--inputs-hash", " " + custom});
  CHECK(st.exit_code == 0);
  CHECK(st.doc["job"]["status"] == "succeeded");
}

// Item 7: a failure that says this node cannot run the job moves it on, then to local.
TEST_CASE("drop-in 7: node faults move the job to the next node and then local") {
  TempDir t;
  const auto video = make_video(t.path, 1);
  // A worker without ffprobe on its PATH answers FFMPEG_MISSING.
  const fs::path empty_bin = t.path / "empty-bin";
  fs::create_directories(empty_bin);
  WorkerProcess bare(t.path, "bare", WorkerOptions{"s3cret", "", {}, {{"PATH", empty_bin.string()}}});
  WorkerProcess full(t.path, "full");

  SUBCASE("FFMPEG_MISSING on the first node, success on the next") {
    write_nodes(t.path, {{"bare", bare.port()}, {"full", full.port()}});
    const auto r = run_controller(t.path, submit_args("r", "j", "FFMPEG_PROBE", {{"media_path", video.string()}}));
    CHECK(r.exit_code == 0);
    CHECK(r.doc["node_id"] == "full");
    REQUIRE(r.doc["attempts"].size() == 2);  // every node tried, the one that ran it last
    CHECK(r.doc["attempts"][0]["node_id"] == "bare");
    CHECK(r.doc["attempts"][0]["outcome"] == "node_fault");
    CHECK(r.doc["attempts"][0]["error"].get<std::string>().find("FFMPEG_MISSING") != std::string::npos);
    CHECK(r.doc["attempts"][1]["node_id"] == "full");
    CHECK(r.doc["attempts"][1]["outcome"] == "succeeded");
  }
  SUBCASE("every code that blames the node, from a Python worker, ends in local execution") {
    for (const char* code : {"INVALID_INPUT", "FFMPEG_MISSING", "OPENCLAW_MISSING", "UI_SESSION_REQUIRED",
                             "STEP_UNSUPPORTED", "GPU_REQUIRED", "POSE_RUNNER_MISSING"}) {
      PythonWorkerStandIn py("py", code);
      write_nodes(t.path, {{"py", py.port()}});
      const std::string job = std::string("j-") + code;
      const auto r = run_controller(t.path, submit_args("r", job, "FFMPEG_PROBE", {{"media_path", video.string()}, {"c", code}}));
      CHECK_MESSAGE(r.doc["mode"] == "local", code);
      CHECK(r.exit_code == 0);
      CHECK_MESSAGE(r.doc["message"].get<std::string>().rfind("remote failed (py: " + std::string(code) + ": the stand-in", 0) == 0,
                    r.doc["message"]);
      CHECK(r.doc["message"].get<std::string>().find("; used local fallback") != std::string::npos);
    }
  }
  SUBCASE("a path no node has: INVALID_INPUT everywhere, the local failure says CODE: message") {
    write_nodes(t.path, {{"full", full.port()}});
    const auto r = run_controller(t.path, submit_args("r", "missing", "FFMPEG_PROBE", {{"media_path", "/no/such/file.mp4"}}, {"--no-stage"}));
    CHECK(r.exit_code == 2);
    CHECK(r.doc["mode"] == "local");
    CHECK(r.doc["status"] == "failed");
    const std::string m = r.doc["message"].get<std::string>();
    CHECK(m.rfind("INVALID_INPUT: payload.media_path is not a file on this worker: /no/such/file.mp4", 0) == 0);
    CHECK_MESSAGE(m.find("remote failed (full: INVALID_INPUT: payload.media_path") != std::string::npos, m);
    CHECK(m.find("; used local fallback") != std::string::npos);
  }
  SUBCASE("a step's verdict on the content stays final on the node") {
    PythonWorkerStandIn py("py", "COMMAND_FAILED");
    // One free slot each (a Python node reports one), so the nodes file's order puts py first.
    WorkerProcess one(t.path, "one", WorkerOptions{"s3cret", "", {"--slots", "1"}});
    write_nodes(t.path, {{"py", py.port()}, {"one", one.port()}});
    const auto r = run_controller(t.path, submit_args("r", "verdict", "FFMPEG_PROBE", {{"media_path", video.string()}}));
    CHECK(r.exit_code == 2);
    CHECK(r.doc["mode"] == "remote");
    CHECK(r.doc["node_id"] == "py");
    CHECK(r.doc["attempts"].size() == 1);
    CHECK(r.doc["error_code"] == "COMMAND_FAILED");
  }
}

// Item 8: a succeeded local result is reused, a failed one never is.
TEST_CASE("drop-in 8: local fallback reuses success but never failure - with the Python phrases") {
  TempDir t;
  write_nodes(t.path, {{"dead", kDeadPort}});
  // A file that is no media: ffprobe's verdict, COMMAND_FAILED, which is not a node fault, so
  // only the controller's own rule can make the next submission run again.
  const fs::path media = t.path / "later.mp4";
  REQUIRE(util::write_file_atomic(media, "not a video yet").ok());
  const json payload{{"media_path", media.string()}};

  const auto first = run_controller(t.path, submit_args("r", "j", "FFMPEG_PROBE", payload));
  CHECK(first.exit_code == 2);
  CHECK(first.doc["mode"] == "local");
  CHECK(first.doc["status"] == "failed");
  CHECK(first.doc["message"].get<std::string>().rfind("COMMAND_FAILED: ffprobe exited with code", 0) == 0);
  CHECK(first.doc["message"].get<std::string>().find("No worker satisfies requirements (dead: cannot reach") !=
        std::string::npos);
  CHECK_FALSE(fs::exists(t.path / "state/cluster/local_cache"));

  // The input is fixed (the file is a video now): the same submission runs again.
  const fs::path video = make_video(t.path, 1);
  fs::copy_file(video, media, fs::copy_options::overwrite_existing);
  const auto second = run_controller(t.path, submit_args("r", "j", "FFMPEG_PROBE", payload));
  CHECK(second.exit_code == 0);
  CHECK(second.doc["mode"] == "local");
  CHECK(second.doc["status"] == "succeeded");
  CHECK(second.doc["message"].get<std::string>().rfind("No worker satisfies requirements (dead: cannot reach", 0) == 0);
  CHECK(second.doc["message"].get<std::string>().find("; used local fallback") != std::string::npos);

  // Same job id, another input: that input runs, not the old job's record.
  const auto other = run_controller(t.path, submit_args("r", "j", "FFMPEG_PROBE", {{"media_path", video.string()}}));
  CHECK(other.doc["status"] == "succeeded");
  CHECK(other.doc["mode"] == "local");
  CHECK(read_json(t.path / "state/cluster/receipts/r/j/job_receipt.json")["metrics"]["media_path"] == video.string());

  const auto third = run_controller(t.path, submit_args("r", "j3", "FFMPEG_PROBE", payload));
  CHECK(third.exit_code == 0);
  CHECK(third.doc["mode"] == "local_cached");

  SUBCASE("a requirement no node meets") {
    WorkerProcess w(t.path, "linux-box");
    write_nodes(t.path, {{"linux-box", w.port()}});
    const auto r = run_controller(t.path, submit_args("r", "win", "FFMPEG_PROBE", {{"media_path", video.string()}, {"w", 1}},
                                                      {"--requirements-json", R"({"os_in":["windows"]})"}));
    CHECK(r.doc["mode"] == "local");
    CHECK(r.doc["message"].get<std::string>().rfind(
              "No worker satisfies requirements (linux-box: does not fit: os linux not in os_in); used local fallback", 0) == 0);
  }
}

// Item 9: RECORD fields are never null; the steps' metrics and index hold the Python names.
TEST_CASE("drop-in 9: records without null - Python metrics and full frame paths") {
  TempDir t;
  const auto video = make_video(t.path, 4);
  WorkerProcess w(t.path, "w1");
  const json payload{{"media_path", video.string()}};
  const auto r = http_post(w.port(), "/job", job_body("r", "probe", "FFMPEG_PROBE", payload).dump());
  REQUIRE(r.status == 200);
  const json queued = r.json_body()["job"];
  CHECK(queued["status"] == "queued");
  for (const char* key : {"started_at", "finished_at", "error_code", "error_message", "cached_job_id"})
    CHECK_MESSAGE(queued[key] == "", key);
  CHECK(queued["exit_code"] == 0);
  CHECK_FALSE(has_null(queued));

  const json done = poll_job(w.port(), "r", "probe", protocol::inputs_hash(payload), terminal);
  CHECK(done["status"] == "succeeded");
  CHECK(done["metrics"]["media_path"] == video.string());
  CHECK(done["metrics"]["video_streams"] == 1);  // our extra metrics stay
  CHECK_FALSE(has_null(done));
  const json receipt = read_json(w.root() / "jobs/probe/job_receipt.json");
  CHECK(receipt["error_code"] == "");
  CHECK_FALSE(has_null(receipt));

  // An idempotent answer names the existing job.
  const auto again = http_post(w.port(), "/job", job_body("r2", "probe-again", "FFMPEG_PROBE", payload).dump());
  CHECK(again.json_body()["job"]["cached_job_id"] == "probe");

  const json frames = run_job(w, "r", "frames", "FRAME_SAMPLING", {{"video_path", video.string()}, {"every_sec", 2}});
  REQUIRE(frames["status"] == "succeeded");
  CHECK(frames["metrics"]["frames"] == 2);
  CHECK(frames["metrics"]["every_sec"] == 2);
  const json index = read_json(w.root() / "jobs/frames/artifacts/frames_index.json");
  REQUIRE(index["frames"].size() == 2);
  CHECK(index["count"] == 2);
  for (const auto& f : index["frames"]) {
    const fs::path p = f.get<std::string>();
    CHECK(p.is_absolute());
    CHECK(fs::is_regular_file(p));
    CHECK(p.parent_path() == w.root() / "jobs/frames/artifacts");
  }
}

// Item 10: caps platform is Python's short name; tts_provider the one a job without one gets.
TEST_CASE("drop-in 10: caps platform and tts_provider") {
  TempDir t;
  WorkerProcess plain(t.path, "plain");
  const json caps = http_get(plain.port(), "/health").json_body()["caps"];
  CHECK(caps["platform"] == "linux");
  // No provider configured: this worker's default, espeak-ng; the providers that work here are listed.
  CHECK(caps["tts_provider"] == "espeak-ng");
  CHECK(caps["tts_providers"].is_array());
  WorkerProcess configured(t.path, "eleven", WorkerOptions{"s3cret", "", {}, {{"TTS_PROVIDER", " ElevenLabs "}}});
  CHECK(http_get(configured.port(), "/health").json_body()["caps"]["tts_provider"] == "elevenlabs");
  WorkerProcess moss(t.path, "moss", WorkerOptions{"s3cret", "", {}, {{"TTS_PROVIDER", "MOSS"}}});
  CHECK(http_get(moss.port(), "/health").json_body()["caps"]["tts_provider"] == "moss_tts");
}

// Item 11: the worker trims as the Python worker does.
TEST_CASE("drop-in 11: secret and message_type and envelope values and paths are trimmed") {
  TempDir t;
  const auto video = make_video(t.path, 1);
  WorkerProcess w(t.path, "w1", WorkerOptions{" s3cret\t", "", {}, {{"HOME", t.path.string()}}});
  const json payload{{"media_path", "  " + video.string() + "  "}};
  json body = job_body("run-1", "job-1", "ffmpeg_probe", payload);
  body["message_type"] = " submit_job ";
  body["run_id"] = "  run-1 ";
  body["job_id"] = "job-1\n";
  const auto r = http_post(w.port(), "/job", body.dump());
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(r.json_body()["job"]["run_id"] == "run-1");
  CHECK(r.json_body()["job"]["job_id"] == "job-1");
  const std::string h = protocol::inputs_hash(payload);
  // A padded run_id in the query string finds the job.
  const json done = poll_job(w.port(), "run-1", "job-1", h, terminal);
  CHECK(done["status"] == "succeeded");
  CHECK(done["metrics"]["media_path"] == video.string());
  std::string padded_query = signed_query("run-1", "job-1", "JOB_STATUS", h);
  const auto q = http_get(w.port(), "/job/job-1?" + padded_query.replace(0, 12, "run_id=%20run-1%20"));
  CHECK(q.status == 200);
  CHECK(q.json_body()["job"]["job_id"] == "job-1");

  SUBCASE("a leading ~ is the home folder") {
    const json home_payload{{"media_path", "~/" + video.filename().string()}};
    const json job = run_job(w, "r", "home", "FFMPEG_PROBE", home_payload);
    CHECK(job["status"] == "succeeded");
    CHECK(job["metrics"]["media_path"] == (t.path / video.filename()).string());
  }
}

// Item 12: output_dir as the Python worker resolves it, inside the workspace.
TEST_CASE("drop-in 12: output_dir drops leading '/' and stays inside the workspace") {
  TempDir t;
  const auto video = make_video(t.path, 1);
  WorkerProcess w(t.path, "w1");
  int n = 0;
  auto run_with = [&](const json& out) {
    return run_job(w, "r", "out" + std::to_string(++n), "FFMPEG_PROBE", {{"media_path", video.string()}, {"output_dir", out}});
  };
  CHECK(run_with("/shots/a")["status"] == "succeeded");
  CHECK(fs::exists(w.root() / "workspace/shots/a/ffprobe.json"));
  CHECK(run_with("/tmp/x")["status"] == "succeeded");
  CHECK(fs::exists(w.root() / "workspace/tmp/x/ffprobe.json"));
  CHECK(run_with("  ///deep/er ")["status"] == "succeeded");
  CHECK(fs::exists(w.root() / "workspace/deep/er/ffprobe.json"));
  // "/" and "" mean the default folder.
  const int slash = n + 1;
  CHECK(run_with("/")["status"] == "succeeded");
  CHECK(fs::exists(w.root() / ("jobs/out" + std::to_string(slash)) / "artifacts/ffprobe.json"));
  const int empty = n + 1;
  CHECK(run_with("")["status"] == "succeeded");
  CHECK(fs::exists(w.root() / ("jobs/out" + std::to_string(empty)) / "artifacts/ffprobe.json"));
  for (const json& bad : {json("../../escape"), json("/a/../../escape"), json("C:\\escape"), json("c:escape"),
                          json(std::string("a\0b", 3)), json(5)}) {
    const json job = run_with(bad);
    CHECK_MESSAGE(job["error_code"] == "INVALID_OUTPUT_DIR", bad.dump());
    CHECK(job["exit_code"] == 2);
  }
  CHECK_FALSE(fs::exists(w.root() / "escape"));
  CHECK_FALSE(fs::exists(w.root().parent_path() / "escape"));
}

// Item 13: every_sec as the Python worker reads it.
TEST_CASE("drop-in 13: every_sec takes numbers and numeric strings - 0 or negatives or null mean 5") {
  TempDir t;
  const auto video = make_video(t.path, 4);
  WorkerProcess w(t.path, "w1");
  int n = 0;
  auto sample = [&](std::optional<json> every) {
    json payload{{"video_path", video.string()}};
    if (every) payload["every_sec"] = *every;
    return run_job(w, "r", "f" + std::to_string(++n), "FRAME_SAMPLING", payload);
  };
  const json two = sample(json("2"));
  CHECK(two["status"] == "succeeded");
  CHECK(two["metrics"]["every_sec"] == 2.0);
  CHECK(two["metrics"]["frames"] == 2);
  CHECK(sample(json(" 1.5 "))["metrics"]["every_sec"] == 1.5);
  for (const json& fallback : {json(0), json(-3), json("-1"), json(nullptr)}) {
    const json job = sample(fallback);
    CHECK_MESSAGE(job["status"] == "succeeded", fallback.dump());
    CHECK(job["metrics"]["every_sec"] == 5.0);
  }
  CHECK(sample(std::nullopt)["metrics"]["every_sec"] == 5.0);
  for (const json& bad : {json("abc"), json(true), json("NaN"), json(86400.5), json("1e9"), json::array({1}), json("0x10")}) {
    const json job = sample(bad);
    CHECK_MESSAGE(job["error_code"] == "INVALID_INPUT", bad.dump());
  }
}

// Item 14: ids of up to 128 printable characters, with folders that neither escape nor collide.
TEST_CASE("drop-in 14: ids with spaces and colons and non-ASCII get folders derived safely") {
  TempDir t;
  const auto video = make_video(t.path, 1);
  WorkerProcess w(t.path, "w1");
  const std::string id = "take 1: Stra\xC3\x9F" "e";
  const json payload{{"media_path", video.string()}};
  const json done = run_job(w, "studio run", id, "FFMPEG_PROBE", payload);
  CHECK(done["status"] == "succeeded");
  CHECK(done["job_id"] == id);
  const fs::path folder = w.root() / "jobs" / protocol::id_folder_name(id);
  CHECK(fs::exists(folder / "job_receipt.json"));
  CHECK(folder.parent_path() == w.root() / "jobs");
  const std::string h = protocol::inputs_hash(payload);
  const auto logs = http_get(w.port(), "/job/" + enc(id) + "/logs?" + signed_query("studio run", id, "JOB_LOGS", h));
  CHECK(logs.status == 200);

  // Ids whose safe forms are alike still get folders of their own.
  const json other{{"media_path", video.string()}, {"n", 2}};
  CHECK(run_job(w, "r", "take 1; Stra\xC3\x9F" "e", "FFMPEG_PROBE", other)["status"] == "succeeded");
  CHECK(protocol::id_folder_name("take 1; Stra\xC3\x9F" "e") != protocol::id_folder_name(id));
  CHECK(fs::exists(w.root() / "jobs" / protocol::id_folder_name("take 1; Stra\xC3\x9F" "e") / "job_receipt.json"));

  const std::string long_ok(128, 'x');
  CHECK(run_job(w, "r", long_ok, "FFMPEG_PROBE", {{"media_path", video.string()}, {"n", 3}})["status"] == "succeeded");
  // Ids that differ only in case get folders that differ in more than case (Windows and macOS
  // fold case).
  CHECK(run_job(w, "r", "Take5", "FFMPEG_PROBE", {{"media_path", video.string()}, {"n", 5}})["status"] == "succeeded");
  CHECK(run_job(w, "r", "take5", "FFMPEG_PROBE", {{"media_path", video.string()}, {"n", 6}})["status"] == "succeeded");
  CHECK(util::ascii_lower(protocol::id_folder_name("Take5")) != "take5");
  CHECK(fs::exists(w.root() / "jobs" / protocol::id_folder_name("Take5") / "job_receipt.json"));
  CHECK(fs::exists(w.root() / "jobs/take5/job_receipt.json"));
  for (const std::string& bad : {std::string("a/b"), std::string("a\\b"), std::string("."), std::string(".."),
                                std::string("tab\there"), std::string("nul\x01"), std::string(129, 'x')}) {
    const auto r = http_post(w.port(), "/job", job_body("r", bad, "FFMPEG_PROBE", {{"media_path", "/x"}, {"b", bad}}).dump());
    CHECK_MESSAGE(r.status == 400, bad);
    CHECK(r.detail().rfind("job_id ", 0) == 0);
  }
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(w.root() / "jobs")) ++entries;
  CHECK(entries == 5);  // the two takes, the 128-character id, Take5 and take5; nothing else

  SUBCASE("through the controller, receipts in folders derived the same way") {
    write_nodes(t.path, {{"w1", w.port()}});
    const auto r = run_controller(t.path, submit_args(" studio run ", "shot 01: intro", "FFMPEG_PROBE",
                                                      {{"media_path", video.string()}, {"n", 4}}));
    CHECK(r.exit_code == 0);
    CHECK(r.doc["run_id"] == "studio run");
    const fs::path rdir = t.path / "state/cluster/receipts" / protocol::id_folder_name("studio run") /
                          protocol::id_folder_name("shot 01: intro");
    CHECK(fs::exists(rdir / "artifacts/ffprobe.json"));
    const auto s = run_controller(t.path, {"sync-artifacts", "--run-id", "studio run", "--job-id", "shot 01: intro"});
    CHECK(s.exit_code == 0);
    const auto bad = run_controller(t.path, submit_args("r", "../escape", "FFMPEG_PROBE", {{"media_path", video.string()}}));
    CHECK(bad.exit_code == 2);
    CHECK_FALSE(fs::exists(t.path / "state/cluster/escape"));
  }
}
