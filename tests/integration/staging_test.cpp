// Staging (protocol extension "blobs"): the worker's blob store over its HTTP API (uploads,
// resumes, digests, quota, pins), and the controller sending a job's input files to a worker that
// cannot see them (its own mount namespace on the test tailnet). Real workers, real controller.
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <future>
#include <thread>

#include "protocol/blobs.hpp"
#include "tests/integration/tailnet.hpp"
#include "util/crypto.hpp"
#include "util/files.hpp"

namespace rayvault::test {
namespace {

using namespace std::chrono_literals;

std::string blob_query(std::string_view step, const std::string& digest, const std::string& secret = "s3cret") {
  return signed_query("blobs", "blob", step, digest, secret) + "&job_id=blob";
}

// PUT /blobs/{digest} of bytes [offset, offset + body.size()) of a blob of `size` bytes, raw.
HttpReply put_blob(int port, const std::string& digest, const std::string& body, std::uint64_t offset, std::uint64_t size,
                   const std::string& secret = "s3cret") {
  RawConnection c(port, "127.0.0.1");
  REQUIRE(c.connected());
  const std::string head = "PUT /blobs/" + digest + "?" + blob_query(protocol::kBlobPut, digest, secret) +
                           "&offset=" + std::to_string(offset) + "&size=" + std::to_string(size) +
                           " HTTP/1.1\r\nHost: w\r\nConnection: close\r\nContent-Length: " + std::to_string(body.size()) +
                           "\r\n\r\n";
  c.send(head + body);
  const std::string raw = c.read_until_closed(10s);
  HttpReply r;
  if (raw.size() > 12) r.status = std::atoi(raw.substr(9, 3).c_str());
  if (const auto at = raw.find("\r\n\r\n"); at != std::string::npos) r.body = raw.substr(at + 4);
  return r;
}

json blob_state(int port, const std::string& digest) {
  const auto r = http_get(port, "/blobs/" + digest + "?" + blob_query(protocol::kBlobStat, digest));
  REQUIRE_MESSAGE(r.status == 200, r.body);
  return r.json_body();
}

std::string bytes(std::size_t n, char seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + static_cast<char>(i * 7 % 251));
  return s;
}

// Files in the blob store's folder (held blobs and partial uploads), by relative path.
std::vector<std::string> store_files(const fs::path& root) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root / "blobs", ec); !ec && it != fs::recursive_directory_iterator(); ++it)
    if (it->is_regular_file()) out.push_back(fs::relative(it->path(), root / "blobs").generic_string());
  std::sort(out.begin(), out.end());
  return out;
}

int count_lines(const std::string& text, const std::string& needle) {
  int n = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("staging: the blob store verifies digests and resumes uploads and refuses what it must") {
  TempDir t;
  WorkerProcess w(t.path, "w1");
  const std::string data = bytes(1536u << 10, 'a');  // 1.5 MiB: the store writes 1 MiB at a time
  const std::string digest = util::sha256_hex(data);

  // Not held yet; the caps say what room there is.
  json st = blob_state(w.port(), digest);
  CHECK(st["held"] == false);
  CHECK(st["partial"] == 0);
  const auto health = http_get(w.port(), "/health").json_body();
  CHECK(health["caps"]["blob_store"]["quota_bytes"].get<std::uint64_t>() > 0);
  CHECK(health["caps"]["blob_store"]["free_disk_bytes"].get<std::uint64_t>() > 0);
  bool advertised = false;
  for (const auto& f : health["caps"]["protocol_features"]) advertised = advertised || f == "blobs";
  CHECK(advertised);

  SUBCASE("bytes that do not hash to the digest are refused and nothing is kept") {
    std::string wrong = data;
    wrong[1000] ^= 1;
    const auto r = put_blob(w.port(), digest, wrong, 0, wrong.size());
    CHECK(r.status == 400);
    CHECK(r.body.find("do not match the digest") != std::string::npos);
    CHECK(store_files(w.root()).empty());
    CHECK(blob_state(w.port(), digest)["held"] == false);
  }
  SUBCASE("bad envelopes and malformed requests") {
    CHECK(put_blob(w.port(), digest, data, 0, data.size(), "not-the-secret").status == 401);
    // A token for another blob does not store this one.
    const std::string other = util::sha256_hex("x");
    RawConnection c(w.port(), "127.0.0.1");
    c.send("PUT /blobs/" + digest + "?" + blob_query(protocol::kBlobPut, other) + "&size=" + std::to_string(data.size()) +
           " HTTP/1.1\r\nHost: w\r\nContent-Length: " + std::to_string(data.size()) + "\r\n\r\n" + data);
    CHECK(c.read_until_closed(10s).rfind("HTTP/1.1 401", 0) == 0);
    CHECK(put_blob(w.port(), "ABC", data, 0, data.size()).status == 400);
    CHECK(put_blob(w.port(), digest, data, 0, data.size() + 5).status == 400);  // Content-Length is not size - offset
    CHECK(put_blob(w.port(), digest, data, 7, 3).status == 400);                // offset past size
    CHECK(put_blob(w.port(), digest, data.substr(10), 10, data.size()).status == 409);  // nothing kept to resume from
    CHECK(http_get(w.port(), "/blobs/" + digest + "?" + blob_query(protocol::kBlobPut, digest)).status == 401);
    CHECK(store_files(w.root()).empty());
  }
  SUBCASE("an interrupted upload resumes from what arrived and a second one at once is refused") {
    {
      RawConnection c(w.port(), "127.0.0.1");
      c.send("PUT /blobs/" + digest + "?" + blob_query(protocol::kBlobPut, digest) + "&size=" + std::to_string(data.size()) +
             " HTTP/1.1\r\nHost: w\r\nContent-Length: " + std::to_string(data.size()) + "\r\n\r\n" + data.substr(0, 1200000));
      // While it is under way (its first MiB on disk), another upload of the same blob is told to wait.
      const auto deadline = std::chrono::steady_clock::now() + 10s;
      while (blob_state(w.port(), digest)["partial"].get<std::uint64_t>() < (1u << 20) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(10ms);
      REQUIRE(blob_state(w.port(), digest)["uploading"] == true);
      const auto busy = put_blob(w.port(), digest, data, 0, data.size());
      CHECK(busy.status == 409);
      CHECK(busy.body.find("under way") != std::string::npos);
    }  // the connection drops
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (blob_state(w.port(), digest)["uploading"] == true && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(10ms);
    st = blob_state(w.port(), digest);
    REQUIRE(st["held"] == false);
    const auto kept = st["partial"].get<std::uint64_t>();
    CHECK(kept >= (1u << 20));
    CHECK(kept <= 1200000);
    // A wrong offset is answered with the right one.
    const auto wrong = put_blob(w.port(), digest, data.substr(100), 100, data.size());
    CHECK(wrong.status == 409);
    CHECK(wrong.json_body()["partial"] == kept);
    const auto rest = put_blob(w.port(), digest, data.substr(kept), kept, data.size());
    CHECK(rest.status == 201);
    CHECK(rest.json_body()["received"] == data.size() - kept);
    st = blob_state(w.port(), digest);
    CHECK(st["held"] == true);
    CHECK(st["size"] == data.size());
    CHECK(store_files(w.root()) == std::vector<std::string>{digest.substr(0, 2) + "/" + digest});
    CHECK(util::read_file(w.root() / "blobs" / digest.substr(0, 2) / digest).value() == data);
    // Held: a second upload is not read.
    const auto again = put_blob(w.port(), digest, data, 0, data.size());
    CHECK(again.status == 200);
    CHECK(again.json_body()["stored"] == false);
    // Its file changed in place behind the store's back: it is no longer held, and can come again.
    { std::ofstream(w.root() / "blobs" / digest.substr(0, 2) / digest, std::ios::app) << "more"; }
    CHECK(blob_state(w.port(), digest)["held"] == false);
    CHECK(store_files(w.root()).empty());
    CHECK(put_blob(w.port(), digest, data, 0, data.size()).status == 201);
    CHECK(blob_state(w.port(), digest)["size"] == data.size());
  }
  SUBCASE("a job names blobs: missing ones and bad names are refused and held ones reach the step") {
    json payload{{"media_path", protocol::blob_ref_json(digest, "final.mp4")}};
    auto r = http_post(w.port(), "/job", job_body("r", "missing", "FFMPEG_PROBE", payload).dump());
    CHECK(r.status == 409);
    CHECK(r.detail() == "blob " + digest + " is not held by this worker: upload it first (PUT /blobs/" + digest + ")");
    for (const std::string bad : {"../final.mp4", "a/b.mp4", "a\\b.mp4", "", "..", "CON", "nul.txt", "x:y"}) {
      json p{{"media_path", protocol::blob_ref_json(digest, bad)}};
      r = http_post(w.port(), "/job", job_body("r", "bad", "FFMPEG_PROBE", p).dump());
      CHECK_MESSAGE(r.status == 400, bad);
      CHECK(r.detail() == "payload.media_path.name must be a plain file name (no path separators or reserved characters)");
    }
    json p{{"media_path", {{"blob", "1234"}, {"name", "a.mp4"}}}};
    CHECK(http_post(w.port(), "/job", job_body("r", "bad", "FFMPEG_PROBE", p).dump()).status == 400);
    p = json{{"media_path", {{"blob", digest}, {"name", "a.mp4"}, {"path", "/etc/passwd"}}}};
    CHECK(http_post(w.port(), "/job", job_body("r", "bad", "FFMPEG_PROBE", p).dump()).status == 400);

    // A real video as a blob: the step sees its own copy under the name given.
    const fs::path video = make_video(t.path, 1.0);
    const std::string vbytes = util::read_file(video).value();
    const std::string vdigest = util::sha256_hex(vbytes);
    REQUIRE(put_blob(w.port(), vdigest, vbytes, 0, vbytes.size()).status == 201);
    payload = json{{"media_path", protocol::blob_ref_json(vdigest, "final render.mp4")}};
    r = http_post(w.port(), "/job", job_body("r", "probe", "FFMPEG_PROBE", payload).dump());
    REQUIRE(r.status == 200);
    const json done = poll_job(w.port(), "r", "probe", protocol::inputs_hash(payload),
                               [](const json& j) { return j.value("status", "") == "succeeded" || j.value("status", "") == "failed"; });
    CHECK(done["status"] == "succeeded");
    const std::string seen = done["metrics"]["media_path"].get<std::string>();
    CHECK(fs::path(seen).filename() == "final render.mp4");
    CHECK(seen.rfind(w.root().string(), 0) == 0);
    CHECK(!fs::exists(seen));  // the job's link to the blob goes with the job
    CHECK(blob_state(w.port(), vdigest)["held"] == true);
  }
}

TEST_CASE("staging: the quota evicts the least recently used blobs and refuses when jobs need them all") {
  TempDir t;
  // Room for three blobs of 100 KB.
  char quota_gb[64];
  std::snprintf(quota_gb, sizeof quota_gb, "%.12f", 350000.0 / (1024.0 * 1024 * 1024));
  WorkerProcess w(t.path, "w1", WorkerOptions("s3cret", "", {"--blob-quota-gb", quota_gb}));
  const auto quota = http_get(w.port(), "/health").json_body()["caps"]["blob_store"]["quota_bytes"].get<std::uint64_t>();
  REQUIRE(quota >= 300000);
  REQUIRE(quota < 400000);
  std::vector<std::string> data, digest;
  for (char c : {'a', 'b', 'c', 'd', 'e'}) {
    data.push_back(bytes(100000, c));
    digest.push_back(util::sha256_hex(data.back()));
  }
  for (int i = 0; i < 3; ++i) REQUIRE(put_blob(w.port(), digest[i], data[i], 0, data[i].size()).status == 201);

  // A job uses blob 0: it is now the most recently used, so blob 1 goes first.
  json use0{{"media_path", protocol::blob_ref_json(digest[0], "a.bin")}};
  REQUIRE(http_post(w.port(), "/job", job_body("r", "use0", "FFMPEG_PROBE", use0).dump()).status == 200);
  (void)poll_job(w.port(), "r", "use0", protocol::inputs_hash(use0), [](const json& j) {
    return j.value("status", "") == "succeeded" || j.value("status", "") == "failed";
  });
  REQUIRE(put_blob(w.port(), digest[3], data[3], 0, data[3].size()).status == 201);
  CHECK(blob_state(w.port(), digest[0])["held"] == true);
  CHECK(blob_state(w.port(), digest[1])["held"] == false);
  CHECK(blob_state(w.port(), digest[2])["held"] == true);
  CHECK(blob_state(w.port(), digest[3])["held"] == true);
  CHECK(store_files(w.root()).size() == 3);

  // A running job pins every blob it names: with all three pinned, a fourth is refused (507) and
  // nothing of it is kept. The job runs while `hold` exists (an ffprobe stand-in on this worker's PATH).
  const fs::path hold = t.path / "hold";
  { std::ofstream(hold) << "x"; }
  WorkerProcess held(t.path, "w2", WorkerOptions("s3cret", "", {"--blob-quota-gb", quota_gb, "--slots", "1"},
                                                 {{"PATH", path_with_holding_standin(t.path / "bin", "ffprobe", hold)}}));
  for (int i = 0; i < 3; ++i) REQUIRE(put_blob(held.port(), digest[i], data[i], 0, data[i].size()).status == 201);
  json pins{{"media_path", protocol::blob_ref_json(digest[0], "a.bin")},
            {"second", protocol::blob_ref_json(digest[1], "b.bin")},
            {"third", protocol::blob_ref_json(digest[2], "c.bin")}};
  REQUIRE(http_post(held.port(), "/job", job_body("r", "pins", "FFMPEG_PROBE", pins).dump()).status == 200);
  (void)poll_job(held.port(), "r", "pins", protocol::inputs_hash(pins), [](const json& j) { return j.value("status", "") == "running"; });
  const auto full = put_blob(held.port(), digest[4], data[4], 0, data[4].size());
  CHECK(full.status == 507);
  CHECK(full.detail().find("needed by queued or running jobs") != std::string::npos);
  CHECK(store_files(held.root()).size() == 3);
  // Asked first (GET with ?size=S), the worker says so before any byte is sent: a controller
  // sends nothing and names the reason (a refusal of a large body under way may reach it only as
  // a cut connection).
  const json asked =
      http_get(held.port(), "/blobs/" + digest[4] + "?" + blob_query(protocol::kBlobStat, digest[4]) + "&size=100000").json_body();
  CHECK(asked["room"] == false);
  CHECK(asked["room_detail"].get<std::string>().find("needed by queued or running jobs") != std::string::npos);
  CHECK(http_get(held.port(), "/blobs/" + digest[4] + "?" + blob_query(protocol::kBlobStat, digest[4]) + "&size=10")
            .json_body()["room"] == true);
  REQUIRE(util::write_file_atomic(t.path / "e.bin", data[4]).ok());
  write_nodes(t.path, {{"w2", held.port()}});
  const auto refused = run_controller(t.path, {"submit", "--run-id", "r", "--job-id", "e", "--step-name", "FFMPEG_PROBE",
                                               "--no-local-fallback", "--payload-json",
                                               json{{"media_path", (t.path / "e.bin").string()}}.dump()});
  CHECK(refused.exit_code == 2);
  CHECK_MESSAGE(refused.out.find("the worker has no room for " + (t.path / "e.bin").string() + " (100000 bytes)") !=
                    std::string::npos,
                refused.out);
  CHECK(blob_state(held.port(), digest[4])["partial"] == 0);
  CHECK(store_files(held.root()).size() == 3);
  // Once the job has ended its blobs may go.
  fs::remove(hold);
  const json ended = poll_job(held.port(), "r", "pins", protocol::inputs_hash(pins), [](const json& j) {
    return j.value("status", "") == "succeeded" || j.value("status", "") == "failed";
  });
  CHECK(ended["finished_at"].is_string());
  CHECK(put_blob(held.port(), digest[4], data[4], 0, data[4].size()).status == 201);
  CHECK(store_files(held.root()).size() == 3);
  // Larger than the whole quota: refused at once, whatever is evictable.
  const std::string huge = bytes(400000, 'z');
  const auto too_big = put_blob(held.port(), util::sha256_hex(huge), huge, 0, huge.size());
  CHECK(too_big.status == 507);
  CHECK(too_big.detail().find("larger than this worker's blob quota") != std::string::npos);
  // A declared size no file has (sums of sizes must not wrap): 400, asked or sent.
  const std::string no_file = "1152921504606846976";  // 2^60
  const auto absurd = http_get(held.port(), "/blobs/" + util::sha256_hex(huge) + "?" +
                                                blob_query(protocol::kBlobStat, util::sha256_hex(huge)) + "&size=" + no_file);
  CHECK(absurd.json_body()["room"] == false);
  CHECK(absurd.json_body()["room_detail"] == "size is larger than any blob a worker takes");
  const std::uint64_t two_60 = std::uint64_t{1} << 60;
  const auto wrapped = put_blob(held.port(), util::sha256_hex(huge), "0123456789", two_60 - 10, two_60);
  CHECK(wrapped.status == 400);
  CHECK(wrapped.detail() == "size is larger than any blob a worker takes");
  CHECK(store_files(held.root()).size() == 3);
}

TEST_CASE("staging: the controller refuses input files it cannot send before anything is sent") {
  TempDir t;
  WorkerProcess w(t.path, "w1");
  write_nodes(t.path, {{"w1", w.port()}});
  fs::create_directories(t.path / "folder");
  auto submit = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> a{"submit", "--run-id", "r", "--job-id", "j", "--step-name", "FFMPEG_PROBE"};
    a.insert(a.end(), extra.begin(), extra.end());
    return run_controller(t.path, a);
  };
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases{
      {{"--payload-json", json{{"media_path", (t.path / "missing.mp4").string()}}.dump()}, "no such file on this machine"},
      {{"--payload-json", json{{"media_path", (t.path / "folder").string()}}.dump()}, "is a folder, not a file"},
      {{"--payload-json", json{{"media_path", "/dev/null"}}.dump()}, "is not a regular file"},
      {{"--payload-json", "{}", "--input", "clip"}, "--input takes FIELD=PATH"},
      {{"--payload-json", "{}", "--input", "clip=" + (t.path / "missing.mov").string()}, "payload.clip: no such file"},
  };
  for (const auto& c : cases) {
    const auto r = submit(c.args);
    CHECK_MESSAGE(r.exit_code == 2, r.err);
    CHECK_MESSAGE((r.out + r.err).find(c.says) != std::string::npos, (r.out + r.err));
  }
  // --no-stage sends the path as it is: the worker looks for it itself (and its one POST /job is
  // the first the worker logs: nothing was sent before).
  const auto plain = submit({"--no-stage", "--no-local-fallback", "--payload-json",
                             json{{"media_path", (t.path / "missing.mp4").string()}}.dump()});
  CHECK(plain.exit_code != 0);
  // The access log is written a block at a time: wait for the line.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (count_lines(w.output(), "POST /job") == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  CHECK(count_lines(w.output(), "POST /job") == 1);
  CHECK(count_lines(w.output(), "/blobs/") == 0);
}

TEST_CASE("staging: a Python worker gets the paths as given and the local fallback reads the files in place") {
  TempDir t;
  const fs::path video = make_video(t.path, 1.0);
  const json payload{{"media_path", video.string()}};
  auto submit = [&](const std::string& job) {
    return run_controller(t.path, {"submit", "--run-id", "r", "--job-id", job, "--step-name", "FFMPEG_PROBE",
                                   "--payload-json", payload.dump()});
  };
  {
    PythonWorkerStandIn py("py-worker");
    write_nodes(t.path, {{"py", py.port()}});
    const auto r = submit("py");
    CHECK(r.exit_code == 0);
    CHECK(r.doc["node_id"] == "py");
    CHECK_FALSE(r.doc.contains("staged"));
    // The stand-in checks the envelope against the payload it got: the one with the path.
    CHECK(r.doc["inputs_hash"] == protocol::inputs_hash(payload));
    CHECK(py.job_submissions() == 1);
  }
  // No worker answers: the controller runs the step on its own files.
  write_nodes(t.path, {{"gone", 1}});
  const auto local = submit("local");
  CHECK(local.exit_code == 0);
  CHECK(local.doc["mode"] == "local");
  CHECK(local.doc["status"] == "succeeded");
  CHECK(local.doc["inputs_hash"] == protocol::inputs_hash(payload));
  const json receipt = json::parse(util::read_file(t.path / "state/cluster/receipts/r/local/job_receipt.json").value());
  CHECK(receipt["metrics"]["media_path"] == video.string());
}

TEST_CASE("staging: a worker that cannot see the controller's files runs probe and frame sampling and audio check on them") {
  if (!Tailnet::usable()) return;
  TempDir t;
  const fs::path ctl = t.path / "ctl";  // the controller's machine: the worker cannot see it
  fs::create_directories(ctl / "render");
  Tailnet net(t.path / "net", 1);
  net.start(1, {}, "s3cret", "", {{"RAYVAULT_TAILNET_HIDE", ctl.string()}});
  net.write_nodes(ctl, {1});
  const fs::path video = make_video(ctl / "render", 2.0);
  const fs::path final_mp4 = ctl / "render" / "final.mp4";
  fs::rename(video, final_mp4);
  const auto size = fs::file_size(final_mp4);
  // The worker's namespace sees an empty folder where the controller's files are.
  CHECK(std::system(("nsenter -t " + std::to_string(net.pid(1)) + " -m ls -A " + ctl.string() + " | wc -l > " +
                     (t.path / "seen").string())
                        .c_str()) == 0);
  CHECK(util::read_file(t.path / "seen").value() == "0\n");

  auto submit = [&](const std::string& job, const std::string& step, const json& payload, std::vector<std::string> extra = {}) {
    std::vector<std::string> a{"submit", "--run-id", "stage", "--job-id", job, "--step-name", step,
                               "--payload-json", payload.dump(), "--no-local-fallback"};
    a.insert(a.end(), extra.begin(), extra.end());
    return net.controller(ctl, a);
  };
  // Uploads the worker logged (its access log is written a block at a time: waits up to 5 s for n).
  auto puts = [&](int n) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (count_lines(net.worker_log(1), "PUT /blobs/") < n && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(20ms);
    return count_lines(net.worker_log(1), "PUT /blobs/");
  };

  const auto first = submit("probe1", "FFMPEG_PROBE", {{"media_path", final_mp4.string()}});
  REQUIRE_MESSAGE(first.exit_code == 0, (first.out + first.err));
  CHECK(first.doc["mode"] == "remote");
  CHECK(first.doc["staged"]["bytes_sent"] == size);
  CHECK(first.doc["staged"]["uploaded"] == 1);
  CHECK(puts(1) == 1);

  // The same bytes under another path: the same job, nothing sent.
  fs::create_directories(ctl / "copy");
  fs::copy_file(final_mp4, ctl / "copy" / "final.mp4");
  const auto again = submit("probe2", "FFMPEG_PROBE", {{"media_path", (ctl / "copy" / "final.mp4").string()}});
  REQUIRE(again.exit_code == 0);
  CHECK(again.doc["staged"]["bytes_sent"] == 0);
  CHECK(again.doc["staged"]["held"] == 1);
  CHECK(again.doc["idempotent"] == true);
  CHECK(again.doc["inputs_hash"] == first.doc["inputs_hash"]);
  CHECK(puts(1) == 1);

  // Re-rendered under the same path: a new job, run again.
  const fs::path longer = make_video(ctl, 3.0);
  fs::rename(longer, final_mp4);
  const auto changed = submit("probe3", "FFMPEG_PROBE", {{"media_path", final_mp4.string()}});
  REQUIRE(changed.exit_code == 0);
  CHECK(changed.doc["idempotent"] == false);
  CHECK(changed.doc["inputs_hash"] != first.doc["inputs_hash"]);
  CHECK(changed.doc["staged"]["bytes_sent"] == fs::file_size(final_mp4));
  CHECK(puts(2) == 2);  // one for this file: none for the second submission
  const json probe = json::parse(util::read_file(ctl / "state/cluster/receipts/stage/probe3/job_receipt.json").value());
  CHECK(probe["metrics"]["duration_sec"].get<double>() > 2.5);

  const auto frames = submit("frames", "FRAME_SAMPLING", {{"video_path", final_mp4.string()}, {"fps", 1}});
  CHECK_MESSAGE(frames.exit_code == 0, (frames.out + frames.err));
  CHECK(frames.doc["mode"] == "remote");
  CHECK(frames.doc["staged"]["bytes_sent"] == 0);  // held since probe3
  CHECK(frames.doc["artifacts_downloaded"].get<int>() >= 2);

  // AUDIO_POSTCHECK with its render_config as a file: two inputs of one job.
  REQUIRE(util::write_file_atomic(ctl / "render" / "render.json", R"({"target_lufs": -16})").ok());
  const auto audio = submit("audio", "AUDIO_POSTCHECK",
                            {{"video_path", final_mp4.string()}, {"render_config", (ctl / "render" / "render.json").string()}});
  CHECK_MESSAGE(audio.doc["mode"] == "remote", (audio.out + audio.err));
  CHECK(audio.doc["error_code"] != "INVALID_INPUT");  // its verdict is the step's; its inputs were there
  const json checked = json::parse(util::read_file(ctl / "state/cluster/receipts/stage/audio/job_receipt.json").value());
  CHECK(checked["metrics"]["integrated_lufs"].is_number());
  CHECK(audio.doc["staged"]["files"] == 2);
  CHECK(audio.doc["staged"]["uploaded"] == 1);

  // Without staging the worker is sent the path, which it cannot see.
  const auto plain = submit("plain", "FFMPEG_PROBE", {{"media_path", final_mp4.string()}}, {"--no-stage"});
  CHECK(plain.exit_code != 0);
  CHECK(plain.doc["attempts"][0]["error"].get<std::string>().find("INVALID_INPUT") != std::string::npos);
}

TEST_CASE("staging: an upload cut halfway by a lost link or a killed controller resumes where it stopped") {
  if (!Tailnet::usable()) return;
  TempDir t;
  const fs::path ctl = t.path / "ctl";
  fs::create_directories(ctl);
  Tailnet net(t.path / "net", 1);
  net.start(1, {}, "s3cret", "", {{"RAYVAULT_TAILNET_HIDE", ctl.string()}});
  net.write_nodes(ctl, {1}, json{{"request_timeout_sec", 2}});
  // About 7 MB of video that does not compress (noise), over a link of 16 Mbit/s: about 4 s.
  const fs::path big = ctl / "big.mp4";
  {
    platform::ProcessSpec spec;
    spec.argv = {"ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25,noise=alls=60:allf=t",
                 "-t", "1", "-c:v", "mpeg4", "-q:v", "2", big.string()};
    spec.timeout = std::chrono::seconds(60);
    const auto made = platform::run_process(spec);
    REQUIRE(made.ok());
    REQUIRE(made->exit_code == 0);
  }
  const auto size = fs::file_size(big);
  const std::string digest = util::sha256_file_hex(big).value();
  const fs::path part = net.root(1) / "blobs" / ".incoming" / (digest + ".part");
  auto partial = [&] {
    std::error_code ec;
    const auto n = fs::file_size(part, ec);
    return ec ? std::uintmax_t{0} : n;
  };
  auto wait_partial = [&](std::uintmax_t at_least) {
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (partial() < at_least && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(20ms);
    return partial() >= at_least;
  };
  const json payload{{"media_path", big.string()}};
  auto submit = [&](const std::string& job) {
    return net.controller(ctl, {"submit", "--run-id", "cut", "--job-id", job, "--step-name", "FFMPEG_PROBE", "--payload-json",
                                payload.dump(), "--no-local-fallback"});
  };
  net.slow(1, 16000);

  // The link goes down halfway: the controller gives up on the node.
  auto cut_run = std::async(std::launch::async, [&] { return submit("cut1"); });
  REQUIRE(wait_partial(1u << 20));
  net.cut(1);
  const auto lost = cut_run.get();
  CHECK(lost.exit_code != 0);
  net.restore(1);
  // The link is back once the node answers again.
  const auto back_by = std::chrono::steady_clock::now() + 30s;
  while (net.controller(ctl, {"health"}).doc["workers"][0]["ok"] != true && std::chrono::steady_clock::now() < back_by) {
  }
  const auto kept_after_cut = partial();
  CHECK(kept_after_cut >= (1u << 20));
  CHECK(kept_after_cut < size);

  // The controller itself is killed halfway through the next try.
  auto kill_run = std::async(std::launch::async, [&] { return submit("cut2"); });
  const bool grew = wait_partial(kept_after_cut + (1u << 20));
  if (!grew) {
    std::system("pkill -KILL -f 'rayvault-controller submit --run-id cu[t] --job-id cut2'");
    const auto r = kill_run.get();
    FAIL("the upload did not resume: " << r.out << r.err << net.worker_log(1));
  }
  CHECK(std::system("pkill -KILL -f 'rayvault-controller submit --run-id cu[t] --job-id cut2'") == 0);
  (void)kill_run.get();
  // What arrived is kept (the next submit waits while the worker still holds the dropped upload).
  const auto kept = partial();
  CHECK(kept > kept_after_cut);
  net.clear(1);

  const auto resumed = submit("cut3");
  REQUIRE_MESSAGE(resumed.exit_code == 0, (resumed.out + resumed.err));
  CHECK(resumed.doc["staged"]["bytes_sent"].get<std::uint64_t>() <= size - kept);
  CHECK(resumed.doc["staged"]["bytes_sent"].get<std::uint64_t>() > 0);
  CHECK(resumed.doc["status"] == "succeeded");  // the step read the whole file
  CHECK(!fs::exists(part));
  CHECK(fs::exists(net.root(1) / "blobs" / digest.substr(0, 2) / digest));
}

}  // namespace rayvault::test

namespace rayvault::test {

TEST_CASE("staging: a batch refuses unknown needs and cycles before anything runs") {
  TempDir t;
  WorkerProcess w(t.path, "w1");
  write_nodes(t.path, {{"w1", w.port()}});
  const fs::path video = make_video(t.path, 1.0);
  auto job = [&](const std::string& id, const json& extra) {
    json j{{"job_id", id}, {"step_name", "FFMPEG_PROBE"}, {"payload", {{"media_path", video.string()}, {"note", id}}}};
    if (extra.is_object()) j.update(extra);
    return j;
  };
  struct Case {
    json jobs;
    std::string says;
  };
  const std::vector<Case> cases{
      {json::array({job("a", {}), job("b", {{"needs", {"nobody"}}})}), "batch job 2: needs job nobody, which is not in the batch"},
      {json::array({job("a", {{"needs", {"a"}}})}), "batch job 1: needs itself"},
      {json::array({job("a", {{"needs", {"c"}}}), job("b", {{"needs", {"a"}}}), job("c", {{"needs", {"b"}}}), job("d", {})}),
       "the batch's needs form a cycle: a -> c -> b -> a"},
      {json::array({job("a", {}), job("b", json::parse(R"({"payload": {"media_path": {"artifact": "x", "name": "y"}}})"))}),
       "batch job 2: needs job x, which is not in the batch"},
      {json::array({job("a", {}), job("b", json::parse(R"({"payload": {"media_path": {"artifact": "a"}}})"))}),
       "payload.media_path takes an artifact as"},
      {json::array({job("a", {{"needs", "b"}}), job("b", {})}), "needs must be a list of job ids of this batch"},
  };
  for (const auto& c : cases) {
    REQUIRE(util::write_file_atomic(t.path / "batch.json", c.jobs.dump()).ok());
    const auto r = run_controller(t.path, {"submit", "--batch", (t.path / "batch.json").string(), "--run-id", "b"});
    CHECK_MESSAGE(r.exit_code == 2, (r.out + r.err));
    CHECK_MESSAGE((r.out + r.err).find(c.says) != std::string::npos, (r.out + r.err));
  }
  // Nothing was sent: no job, no blob.
  const auto deadline = std::chrono::steady_clock::now() + 1s;
  while (std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(50ms);  // the access log's flush period
  CHECK(count_lines(w.output(), "POST /job") == 0);
  CHECK(count_lines(w.output(), "/blobs/") == 0);
}

TEST_CASE("staging: a chained batch runs in dependency order across two workers and a failed need stops what follows") {
  if (!Tailnet::usable()) return;
  TempDir t;
  const fs::path ctl = t.path / "ctl";
  fs::create_directories(ctl);
  Tailnet net(t.path / "net", 2);
  net.start(1, {"--tags", "voice"}, "s3cret", "", {{"RAYVAULT_TAILNET_HIDE", ctl.string()}});
  net.start(2, {"--tags", "qa"}, "s3cret", "", {{"RAYVAULT_TAILNET_HIDE", ctl.string()}});
  net.write_nodes(ctl, {1, 2});
  const fs::path video = make_video(ctl, 1.0);
  REQUIRE(util::write_file_atomic(ctl / "not-a-video.mp4", "this is text, not a video").ok());
  const json intro{{"artifact", "tts"}, {"name", "narration.wav"}};  // the mix of the chunks
  // Listed with the jobs that wait first: the order comes from their needs.
  const json jobs = json::array({
      {{"job_id", "check"}, {"step_name", "AUDIO_POSTCHECK"}, {"payload", {{"audio_path", intro}}},
       {"requirements", {{"tags", {"qa"}}}}},
      {{"job_id", "check-here"}, {"step_name", "AUDIO_POSTCHECK"}, {"payload", {{"audio_path", intro}, {"note", "same node"}}},
       {"requirements", {{"tags", {"voice"}}}}},
      {{"job_id", "after-bad"}, {"step_name", "FFMPEG_PROBE"}, {"needs", {"bad"}},
       {"payload", {{"media_path", video.string()}}}},
      {{"job_id", "after-after-bad"}, {"step_name", "FFMPEG_PROBE"}, {"needs", {"after-bad"}},
       {"payload", {{"media_path", video.string()}, {"note", "two down"}}}},
      {{"job_id", "tts"}, {"step_name", "TTS_RENDER_CHUNKS"},
       {"payload", {{"chunks", {{{"chunk_id", "intro"}, {"text", "Hello from the studio."}},
                                {{"chunk_id", "outro"}, {"text", "See you next week."}}}},
                    {"mix", {{"name", "narration.wav"}, {"gap_sec", 0.3}}}}},
       {"requirements", {{"tags", {"voice"}}}}},
      {{"job_id", "bad"}, {"step_name", "FFMPEG_PROBE"}, {"payload", {{"media_path", (ctl / "not-a-video.mp4").string()}}}},
  });
  REQUIRE(util::write_file_atomic(ctl / "chain.json", jobs.dump(2)).ok());
  const auto r = net.controller(ctl, {"submit", "--batch", (ctl / "chain.json").string(), "--run-id", "chain", "--no-local-fallback"});
  CHECK(r.exit_code == 2);  // `bad` and what needs it failed
  std::map<std::string, json> rows;
  for (const auto& row : r.doc["jobs"]) rows[row["job_id"].get<std::string>()] = row;
  REQUIRE_MESSAGE(rows.size() == 6, r.out);

  CHECK(rows["tts"]["ok"] == true);
  CHECK(rows["tts"]["node_id"] == "node1");
  // The artifact went from the controller's synced copy to the other worker...
  CHECK(rows["check"]["node_id"] == "node2");
  CHECK(rows["check"]["mode"] == "remote");
  CHECK(rows["check"]["error_code"] != "INVALID_INPUT");
  CHECK(rows["check"]["staged"]["uploaded"] == 1);
  CHECK(rows["check"]["staged"]["bytes_sent"].get<std::uint64_t>() > 0);
  // ...and not at all to the worker that made it.
  CHECK(rows["check-here"]["node_id"] == "node1");
  CHECK(rows["check-here"]["staged"]["held"] == 1);
  CHECK(rows["check-here"]["staged"]["bytes_sent"] == 0);
  // The checks started only once the chunks were done.
  auto receipt = [&](const std::string& job) {
    return json::parse(util::read_file(ctl / "state/cluster/receipts/chain" / job / "job_receipt.json").value());
  };
  const std::string tts_done = receipt("tts")["job_status"]["finished_at"].get<std::string>();
  CHECK(receipt("check")["job_status"]["started_at"].get<std::string>() >= tts_done);
  CHECK(receipt("check-here")["job_status"]["started_at"].get<std::string>() >= tts_done);
  CHECK(receipt("check")["metrics"]["integrated_lufs"].is_number());
  // What was checked is the mix: both chunks and the gap between them.
  const json tts_manifest = json::parse(util::read_file(ctl / "state/cluster/receipts/chain/tts/artifacts/tts_chunks_manifest.json").value());
  CHECK(fs::path(receipt("check")["metrics"]["media_path"].get<std::string>()).filename() == "narration.wav");
  CHECK(tts_manifest["mix"]["chunks"] == 2);
  CHECK(tts_manifest["mix"]["sha256"] == util::sha256_file_hex(ctl / "state/cluster/receipts/chain/tts/artifacts/narration.wav").value());
  CHECK(receipt("check")["metrics"]["duration_sec"].get<double>() > 1.0);
  CHECK(receipt("check")["metrics"]["duration_sec"] == receipt("check-here")["metrics"]["duration_sec"]);

  // A failed need: what follows fails without running, saying why.
  CHECK(rows["bad"]["ok"] == false);
  CHECK(rows["bad"]["error_code"] == "COMMAND_FAILED");
  for (const char* id : {"after-bad", "after-after-bad"}) {
    CHECK(rows[id]["status"] == "failed");
    CHECK(rows[id]["error_code"] == "NEEDS_FAILED");
  }
  CHECK(rows["after-bad"]["message"].get<std::string>().rfind("not run: it needs job bad, which did not succeed", 0) == 0);
  CHECK(rows["after-after-bad"]["message"].get<std::string>().rfind("not run: it needs job after-bad", 0) == 0);
  for (int node : {1, 2}) CHECK(net.worker_log(node).find("after-bad") == std::string::npos);
  CHECK(!fs::exists(ctl / "state/cluster/receipts/chain/after-bad"));
}

TEST_CASE("staging: a chained job an earlier run of the batch left running is followed where it runs, not sent again") {
  TempDir t;
  const fs::path video = make_video(t.path, 1.0);
  const fs::path hold = t.path / "hold";  // while it exists, espeak-ng waits: the chained job keeps running
  const std::string path = path_with_holding_standin(t.path / "bin", "espeak-ng", hold);
  WorkerProcess w1(t.path, "w1", WorkerOptions("s3cret", "", {}, {{"PATH", path}}));
  WorkerProcess w2(t.path, "w2", WorkerOptions("s3cret", "", {}, {{"PATH", path}}));
  const json speech{{"chunks", {{{"chunk_id", "line"}, {"text", "Still speaking when the controller went."}}}}};
  const json jobs = json::array({{{"job_id", "probe"}, {"step_name", "FFMPEG_PROBE"}, {"payload", {{"media_path", video.string()}}}},
                                 {{"job_id", "speak"}, {"step_name", "TTS_RENDER_CHUNKS"}, {"needs", {"probe"}}, {"payload", speech}}});
  const fs::path file = t.path / "chain.json";
  REQUIRE(util::write_file_atomic(file, jobs.dump(2)).ok());
  { std::ofstream(hold) << "x"; }
  // The first run knows only w2, and is killed while `speak` runs there.
  write_nodes(t.path, {{"w2", w2.port()}});
  platform::ProcessSpec spec;
  spec.argv = {RAYVAULT_CONTROLLER_BIN, "submit", "--batch", file.string(), "--run-id", "again"};
  spec.cwd = t.path;
  spec.env = {{"RAYVAULT_CLUSTER_SECRET", "s3cret"}};
  auto first = platform::Child::spawn(spec, t.path / "first.out");
  REQUIRE(first.ok());
  const json running = poll_job(w2.port(), "again", "speak", protocol::inputs_hash(speech),
                                [](const json& j) { return j.value("status", "") == "running"; });
  REQUIRE(running["status"] == "running");
  (void)first->kill();
  fs::remove(hold);
  // Run again with w1 listed first and as free as w2: `speak` is followed on w2, not sent to w1.
  write_nodes(t.path, {{"w1", w1.port()}, {"w2", w2.port()}});
  const auto again = run_controller(t.path, {"submit", "--batch", file.string(), "--run-id", "again"});
  CHECK_MESSAGE(again.exit_code == 0, again.out);
  std::map<std::string, json> rows;
  for (const auto& row : again.doc["jobs"]) rows[row["job_id"].get<std::string>()] = row;
  CHECK(rows["probe"]["skipped"] == true);
  CHECK(rows["speak"]["ok"] == true);
  CHECK(rows["speak"]["node_id"] == "w2");
  CHECK(times_queued(w1.root(), "speak") == 0);
  CHECK(times_queued(w2.root(), "speak") == 1);
}

}  // namespace rayvault::test
