// The Windows worker (cross-built rayvault-worker.exe) under wine, driven by the Linux controller.
// Its external tool is the Windows ffprobe stand-in, put on the worker's PATH through WINEPATH,
// so the Windows child-process path (CreateProcessW, quoting, spaces, exit codes, output
// capture, job-object kill) runs for real.
#include <doctest/doctest.h>

#include <algorithm>

#include "platform/process.hpp"
#include "tests/integration/harness.hpp"
#include "util/files.hpp"

using namespace rayvault;
using namespace rayvault::test;

namespace {

std::string windows_path(const fs::path& linux_path) {
  std::string p = "Z:" + linux_path.string();
  for (auto& c : p)
    if (c == '/') c = '\\';
  return p;
}

WorkerOptions wine_worker() {
  WorkerOptions o;
  o.launcher = {"wine", RAYVAULT_WINE_WORKER_EXE};
  o.env = {{"WINEDEBUG", "-all"}, {"WINEPATH", windows_path(RAYVAULT_WINE_STANDINS)}};
  o.ready_within = std::chrono::seconds(120);
  return o;
}

// True while a process whose command line contains `text` exists (wine shows Windows command lines).
bool process_exists(const std::string& text) {
  platform::ProcessSpec spec;
  spec.argv = {"pgrep", "-f", text};
  spec.timeout = std::chrono::seconds(10);
  auto r = platform::run_process(spec);
  return r.ok() && r->exit_code == 0;
}

}  // namespace

TEST_CASE("wine: the Windows worker serves the Linux controller") {
  TempDir t;
  // A media file in a folder with a space; the stand-in reports its size (12345 bytes).
  fs::create_directories(t.path / "media dir");
  const fs::path media = t.path / "media dir" / "take 1.mp4";
  REQUIRE(util::write_file_atomic(media, std::string(12345, 'x')).ok());
  auto worker = std::make_unique<WorkerProcess>(t.path, "winbox", wine_worker());
  write_nodes(t.path, {{"winbox", worker->port()}});

  const auto health = run_controller(t.path, {"health"});
  CHECK(health.doc["ok"] == true);
  CHECK(health.doc["workers"][0]["worker_id"] == "winbox");
  const auto caps = run_controller(t.path, {"caps"});
  CHECK(caps.exit_code == 0);
  CHECK(caps.doc["rows"][0]["caps"]["os"] == "windows");
  CHECK(caps.doc["rows"][0]["caps"]["capabilities"]["ffprobe"] == true);
  // Python's sys.platform, as a Python node on Windows reports it; the release text beside it.
  CHECK(caps.doc["rows"][0]["caps"]["capabilities"]["platform"] == "win32");
  CHECK(caps.doc["rows"][0]["caps"]["capabilities"]["platform_release"].get<std::string>().rfind("Windows-", 0) == 0);

  const std::string payload = json{{"media_path", media.string()}}.dump();
  const auto first = run_controller(t.path, {"submit", "--run-id", "winrun", "--job-id", "probe-1", "--step-name",
                                             "FFMPEG_PROBE", "--payload-json", payload});
  CHECK(first.exit_code == 0);
  CHECK(first.doc["mode"] == "remote");
  CHECK(first.doc["node_id"] == "winbox");
  CHECK(first.doc["status"] == "succeeded");
  CHECK(first.doc["idempotent"] == false);
  // The file went to the Windows worker's blob store, and the step read its copy there.
  CHECK(first.doc["staged"]["uploaded"] == 1);
  CHECK(first.doc["staged"]["bytes_sent"] == 12345);
  // The stand-in's stdout came back through the pipe, and the artifact was downloaded and verified.
  const fs::path rdir = t.path / "state/cluster/receipts/winrun/probe-1";
  const auto probe = protocol::parse_json(*util::read_file(rdir / "artifacts/ffprobe.json"));
  REQUIRE(probe.ok());
  CHECK((*probe)["format"]["size"] == "12345");
  CHECK((*probe)["format"]["format_name"] == "standin");
  CHECK((*probe)["format"]["filename"].get<std::string>().find("take 1.mp4") != std::string::npos);

  SUBCASE("resubmission is idempotent") {
    const auto again = run_controller(t.path, {"submit", "--run-id", "winrun2", "--job-id", "probe-2", "--step-name",
                                               "FFMPEG_PROBE", "--payload-json", payload});
    CHECK(again.doc["idempotent"] == true);
    CHECK(again.doc["remote_job_id"] == "probe-1");
    CHECK(fs::exists(t.path / "state/cluster/receipts/winrun2/probe-2/artifacts/ffprobe.json"));
  }
  SUBCASE("the job log holds the tool's stderr") {
    const auto logs = run_controller(t.path, {"logs", "--run-id", "winrun", "--job-id", "probe-1"});
    CHECK(logs.exit_code == 0);
    CHECK(logs.out.find("stand-in ffprobe: probing") != std::string::npos);
    CHECK(logs.out.find("job_succeeded") != std::string::npos);
  }
  SUBCASE("backslash and drive-letter paths in payloads") {
    // Z: is wine's drive for '/'; output_dir uses backslashes and stays inside the workspace. The
    // paths name files as the worker sees them: sent as they are (--no-stage).
    const json p{{"media_path", windows_path(media)}, {"output_dir", "shots\\take1"}};
    const auto r = run_controller(t.path, {"submit", "--run-id", "winrun", "--job-id", "winpath", "--step-name",
                                           "FFMPEG_PROBE", "--no-stage", "--payload-json", p.dump()});
    CHECK(r.doc["status"] == "succeeded");
    CHECK(fs::exists(worker->root() / "workspace/shots/take1/ffprobe.json"));
    const json out{{"media_path", windows_path(media)}, {"output_dir", "..\\..\\escape"}};
    const auto esc = run_controller(t.path, {"submit", "--run-id", "winrun", "--job-id", "winesc", "--step-name",
                                             "FFMPEG_PROBE", "--no-stage", "--payload-json", out.dump()});
    CHECK(esc.doc["error_code"] == "INVALID_OUTPUT_DIR");
  }
  SUBCASE("a tool's exit code fails the job with its last lines") {
    const fs::path bad = t.path / "media dir" / "fail me.mp4";
    REQUIRE(util::write_file_atomic(bad, "x").ok());
    const auto r = run_controller(t.path, {"submit", "--run-id", "winrun", "--job-id", "bad", "--step-name",
                                           "FFMPEG_PROBE", "--payload-json", json{{"media_path", bad.string()}}.dump()});
    CHECK(r.doc["status"] == "failed");
    CHECK(r.doc["error_code"] == "COMMAND_FAILED");
    CHECK(r.doc["message"].get<std::string>().find("exited with code 3") != std::string::npos);
    CHECK(r.doc["message"].get<std::string>().find("Invalid data found") != std::string::npos);
  }
  SUBCASE("a timeout ends the tool and the process it started") {
    const fs::path hang = t.path / "media dir" / "hang here.mp4";
    REQUIRE(util::write_file_atomic(hang, "x").ok());
    const auto r = run_controller(t.path, {"submit", "--run-id", "winrun", "--job-id", "hang", "--step-name",
                                           "FFMPEG_PROBE", "--payload-json",
                                           json{{"media_path", hang.string()}, {"timeout_sec", 3}}.dump()});
    CHECK(r.doc["status"] == "failed");
    CHECK(r.doc["error_code"] == "TIMEOUT");
    const auto logs = run_controller(t.path, {"logs", "--run-id", "winrun", "--job-id", "hang"});
    CHECK(logs.out.find("started grandchild") != std::string::npos);
    // The job object took the grandchild with it.
    CHECK_FALSE(process_exists("ffprobe.exe --sleep-forever"));
  }
  SUBCASE("the sapi TTS provider starts PowerShell with its script (wine's PowerShell is a stub)") {
    // Windows finds powershell.exe, so the node lists sapi; wine's stub speaks nothing, which the
    // provider reports instead of publishing an empty chunk.
    const json wcaps = caps.doc["rows"][0]["caps"]["capabilities"];
    const auto providers = wcaps["tts_providers"];
    CHECK(std::find(providers.begin(), providers.end(), "sapi") != providers.end());
    CHECK_FALSE(wcaps["ui_session_detail"].get<std::string>().empty());
    const std::string tts = json{{"provider", "SAPI"}, {"chunks", json::array({{{"chunk_id", "w1"}, {"text", "Hallo"}}})}}.dump();
    const auto r = run_controller(t.path, {"submit", "--run-id", "winrun", "--job-id", "sapi-1", "--step-name",
                                           "TTS_RENDER_CHUNKS", "--payload-json", tts, "--no-local-fallback"});
    CHECK(r.exit_code == 2);
    CHECK(r.doc["error_code"] == "TTS_PROVIDER_FAILED");
    CHECK(r.doc["message"].get<std::string>().find("sapi wrote no audio") != std::string::npos);
    CHECK_FALSE(fs::exists(t.path / "state/cluster/receipts/winrun/sapi-1/artifacts/w1.wav"));
  }
  SUBCASE("after a crash and a restart the worker still knows the job") {
    worker->crash();
    worker = std::make_unique<WorkerProcess>(t.path, "winbox", wine_worker());
    write_nodes(t.path, {{"winbox", worker->port()}});
    const auto st = run_controller(t.path, {"status", "--run-id", "winrun", "--job-id", "probe-1"});
    CHECK(st.exit_code == 0);
    CHECK(st.doc["job"]["status"] == "succeeded");
    CHECK(st.doc["job"]["worker_id"] == "winbox");
    const auto sync = run_controller(t.path, {"sync-artifacts", "--run-id", "winrun", "--job-id", "probe-1"});
    CHECK(sync.exit_code == 0);
  }
}
