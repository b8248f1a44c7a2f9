// Every job step for real, through a worker and through the controller's local fallback:
// TTS_RENDER_CHUNKS with espeak-ng, piper (stand-in binary), ElevenLabs (HTTPS stand-in) and
// MOSS-TTS (HTTP stand-in); AUDIO_POSTCHECK on synthetic signals of known level.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <sstream>
#include <thread>
#include <tuple>

#include "platform/process.hpp"
#include "platform/system_info.hpp"
#include "protocol/blobs.hpp"
#include "protocol/steps.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/service_standins.hpp"
#include "util/crypto.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"
#include "worker/steps/tts_render_chunks.hpp"

using namespace rayvault;
using namespace rayvault::test;

namespace {

// ffprobe's view of an audio file's first stream and its duration.
struct AudioFacts {
  std::string codec;
  int sample_rate = 0, channels = 0;
  double seconds = 0;
};

AudioFacts probe_audio(const fs::path& file) {
  platform::ProcessSpec spec;
  spec.argv = {"ffprobe", "-v", "error", "-show_streams", "-show_format", "-print_format", "json", file.string()};
  spec.timeout = std::chrono::seconds(30);
  auto r = platform::run_process(spec);
  REQUIRE(r.ok());
  auto doc = protocol::parse_json(r->stdout_text);
  REQUIRE(doc.ok());
  AudioFacts f;
  const json& s = (*doc)["streams"][0];
  f.codec = s.value("codec_name", "");
  f.sample_rate = std::stoi(s.value("sample_rate", "0"));
  f.channels = s.value("channels", 0);
  f.seconds = std::stod((*doc)["format"].value("duration", "0"));
  return f;
}

json read_json(const fs::path& file) {
  auto text = util::read_file(file);
  REQUIRE(text.ok());
  auto doc = protocol::parse_json(*text);
  REQUIRE(doc.ok());
  return *doc;
}

// Submits a job straight to a worker and waits for its end; the final record.
json run_on_worker(const WorkerProcess& w, const std::string& job_id, const std::string& step, const json& payload,
                   std::chrono::seconds within = std::chrono::seconds(90)) {
  const auto reply = http_post(w.port(), "/job", job_body("steps", job_id, step, payload).dump());
  REQUIRE_MESSAGE(reply.status == 200, reply.body);
  return poll_job(w.port(), "steps", job_id, protocol::inputs_hash(payload),
                  [](const json& j) { return j["status"] == "succeeded" || j["status"] == "failed"; }, within);
}

std::string job_log(const WorkerProcess& w, const std::string& job_id, const json& payload) {
  return http_get(w.port(), "/job/" + job_id + "/logs?" +
                                signed_query("steps", job_id, protocol::steps::kJobLogs, protocol::inputs_hash(payload)))
      .body;
}

std::vector<fs::path> files_in(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  if (fs::is_directory(dir, ec))
    for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path());
  return out;
}

void check_contract_wav(const fs::path& wav) {
  CAPTURE(wav);
  REQUIRE(fs::is_regular_file(wav));
  const auto f = probe_audio(wav);
  CHECK(f.codec == "pcm_s16le");
  CHECK(f.sample_rate == 48000);
  CHECK(f.channels == 1);
  CHECK(f.seconds > 0.2);
}

}  // namespace

TEST_CASE("steps: TTS_RENDER_CHUNKS with espeak-ng through the controller and the chunk cache") {
  TempDir t;
  WorkerProcess w(t.path, "w1");
  write_nodes(t.path, {{"w1", w.port()}});
  const json chunks = json::array({{{"chunk_id", "intro"}, {"text", "  Hello from the studio.  "}},
                                   {{"text", "The second line has no id."}},
                                   {{"chunk_id", "line 3"}, {"text", "And a third."}}});
  const auto first = run_controller(t.path, {"submit", "--run-id", "run1", "--job-id", "tts1", "--step-name",
                                             "TTS_RENDER_CHUNKS", "--payload-json", json{{"chunks", chunks}}.dump()});
  REQUIRE_MESSAGE(first.exit_code == 0, first.out);
  CHECK(first.doc["mode"] == "remote");
  const fs::path rdir = t.path / "state/cluster/receipts/run1/tts1";
  const json manifest = read_json(rdir / "artifacts/tts_chunks_manifest.json");
  CHECK(manifest["run_id"] == "run1");
  CHECK(manifest["job_id"] == "tts1");
  CHECK(manifest["step_name"] == "TTS_RENDER_CHUNKS");
  REQUIRE(manifest["chunks"].size() == 3);
  const std::vector<std::string> ids = {"intro", "chunk_02", "line 3"};
  const std::vector<std::string> texts = {"Hello from the studio.", "The second line has no id.", "And a third."};
  std::vector<std::string> digests;
  for (std::size_t i = 0; i < 3; ++i) {
    const json& c = manifest["chunks"][i];
    CHECK(c["chunk_id"] == ids[i]);
    CHECK(c["cache_hit"] == false);
    // The contract's key, over the trimmed text.
    CHECK(c["inputs_hash"] == worker::steps::chunk_cache_key("espeak-ng", "", "default", "", texts[i], json::object()));
    const fs::path on_worker = c["path"].get<std::string>();
    CHECK(on_worker.parent_path() == w.root() / "jobs/tts1/artifacts");
    const fs::path here = rdir / "artifacts" / on_worker.filename();
    check_contract_wav(here);
    CHECK(sha256_of(here) == c["sha256"]);
    CHECK(fs::file_size(here) == c["size_bytes"].get<std::uintmax_t>());
    digests.push_back(c["sha256"]);
  }
  CHECK(fs::exists(rdir / "artifacts/intro.wav"));
  CHECK(fs::exists(rdir / "artifacts/chunk_02.wav"));
  const json receipt = read_json(rdir / "job_receipt.json");
  CHECK(receipt["job_status"]["metrics"]["chunks"] == 3);
  CHECK(receipt["job_status"]["metrics"]["provider"] == "espeak-ng");
  CHECK(receipt["job_status"]["metrics"]["voice_id"] == "default");

  // The same chunks in another job come from the cache: same bytes, nothing rendered.
  const auto second = run_controller(t.path, {"submit", "--run-id", "run1", "--job-id", "tts2", "--step-name",
                                              "TTS_RENDER_CHUNKS", "--payload-json",
                                              json{{"chunks", chunks}, {"output_dir", "tts/second"}}.dump()});
  REQUIRE(second.exit_code == 0);
  const json again = read_json(t.path / "state/cluster/receipts/run1/tts2/artifacts/tts_chunks_manifest.json");
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(again["chunks"][i]["cache_hit"] == true);
    CHECK(again["chunks"][i]["sha256"] == digests[i]);
  }
  CHECK(read_json(t.path / "state/cluster/receipts/run1/tts2/job_receipt.json")["job_status"]["metrics"]["cache_hits"] == 3);

  // force renders every chunk again.
  const auto forced = run_controller(t.path, {"submit", "--run-id", "run1", "--job-id", "tts3", "--step-name",
                                              "TTS_RENDER_CHUNKS", "--payload-json",
                                              json{{"chunks", chunks}, {"output_dir", "tts/third"}, {"force", true}}.dump()});
  REQUIRE(forced.exit_code == 0);
  const json third = read_json(t.path / "state/cluster/receipts/run1/tts3/artifacts/tts_chunks_manifest.json");
  for (std::size_t i = 0; i < 3; ++i) CHECK(third["chunks"][i]["cache_hit"] == false);
}

TEST_CASE("steps: TTS_RENDER_CHUNKS joins its chunks in order into one mix, with the gap asked between them") {
  TempDir t;
  WorkerProcess w(t.path, "w1");
  const json payload = {{"chunks", json::array({{{"chunk_id", "one"}, {"text", "The first line of the narration."}},
                                                {{"chunk_id", "two"}, {"text", "And the second, a little longer than it."}}})},
                        {"mix", {{"name", "narration.wav"}, {"gap_sec", 0.5}}}};
  const json rec = run_on_worker(w, "mix", "TTS_RENDER_CHUNKS", payload);
  REQUIRE_MESSAGE(rec["status"] == "succeeded", rec.dump());
  const fs::path dir = w.root() / "jobs/mix/artifacts";
  std::vector<std::string> names;
  for (const auto& f : files_in(dir)) names.push_back(f.filename().string());
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"narration.wav", "one.wav", "tts_chunks_manifest.json", "two.wav"});
  check_contract_wav(dir / "narration.wav");
  const double one = probe_audio(dir / "one.wav").seconds, two = probe_audio(dir / "two.wav").seconds;
  CHECK(one > 0.5);
  CHECK(two > 0.5);
  CHECK(probe_audio(dir / "narration.wav").seconds == doctest::Approx(one + 0.5 + two).epsilon(0.001));
  const json manifest = read_json(dir / "tts_chunks_manifest.json");
  CHECK(manifest["mix"]["path"] == (dir / "narration.wav").string());
  CHECK(manifest["mix"]["sha256"] == sha256_of(dir / "narration.wav"));
  CHECK(manifest["mix"]["chunks"] == 2);
  CHECK(manifest["chunks"].size() == 2);
  CHECK(rec["metrics"]["mix"] == "narration.wav");
  // The mix's samples are the chunks' own, in order: a stretch of speech from the middle of each
  // chunk is in it, chunk one's before chunk two's.
  const std::string mixed = util::read_file(dir / "narration.wav").value();
  const std::string first = util::read_file(dir / "one.wav").value(), second = util::read_file(dir / "two.wav").value();
  REQUIRE(first.size() > 4044);
  REQUIRE(second.size() > 4044);
  const auto at_one = mixed.find(first.substr(first.size() / 2, 4000)), at_two = mixed.find(second.substr(second.size() / 2, 4000));
  CHECK(at_one != std::string::npos);
  CHECK(at_two != std::string::npos);
  CHECK(at_one < at_two);

  // mix: true joins them without a gap into mix.wav.
  const json plain = {{"chunks", payload["chunks"]}, {"mix", true}};
  const json rec2 = run_on_worker(w, "mix-plain", "TTS_RENDER_CHUNKS", plain);
  REQUIRE_MESSAGE(rec2["status"] == "succeeded", rec2.dump());
  const fs::path mix2 = w.root() / "jobs/mix-plain/artifacts/mix.wav";
  CHECK(probe_audio(mix2).seconds == doctest::Approx(one + two).epsilon(0.001));
}

TEST_CASE("steps: TTS_RENDER_CHUNKS through local fallback and the mock provider") {
  TempDir t;
  write_nodes_file(t.path, R"({"nodes": []})");
  const json payload = {{"chunks", json::array({{{"chunk_id", "a"}, {"text", "Spoken on the controller itself."}}})}};
  const auto local = run_controller(t.path, {"submit", "--run-id", "r", "--job-id", "local-tts", "--step-name",
                                             "TTS_RENDER_CHUNKS", "--payload-json", payload.dump()});
  REQUIRE_MESSAGE(local.exit_code == 0, local.out);
  CHECK(local.doc["mode"] == "local");
  check_contract_wav(t.path / "state/cluster/receipts/r/local-tts/artifacts/a.wav");

  // mock: silence of max(1, words / 150 * 60) seconds; 3 words are 1.2 s.
  const json mock = {{"provider", "MOCK"}, {"chunks", json::array({{{"chunk_id", "m"}, {"text", "three short words"}}})}};
  const auto m = run_controller(t.path, {"submit", "--run-id", "r", "--job-id", "mock", "--step-name", "TTS_RENDER_CHUNKS",
                                         "--payload-json", mock.dump()});
  REQUIRE(m.exit_code == 0);
  const auto facts = probe_audio(t.path / "state/cluster/receipts/r/mock/artifacts/m.wav");
  CHECK(facts.sample_rate == 48000);
  CHECK(facts.seconds == doctest::Approx(1.2).epsilon(0.02));
}

TEST_CASE("steps: TTS_RENDER_CHUNKS refuses bad input with the contract's codes and publishes nothing") {
  TempDir t;
  WorkerProcess w(t.path, "w1");
  const auto text_chunk = [](const char* id, const char* text) { return json{{"chunk_id", id}, {"text", text}}; };
  const std::vector<std::tuple<std::string, json, std::string, std::string>> cases = {
      {"empty-text", {{"chunks", json::array({text_chunk("a", "ok"), text_chunk("b", "   ")})}}, "INVALID_INPUT", "empty text"},
      {"no-chunks", {{"chunks", json::array()}}, "INVALID_INPUT", "non-empty list"},
      {"not-a-list", {{"chunks", "hello"}}, "INVALID_INPUT", "non-empty list"},
      {"duplicate", {{"chunks", json::array({text_chunk("Intro", "one"), text_chunk("intro", "two")})}}, "INVALID_INPUT",
       "given twice"},
      {"escape", {{"chunks", json::array({text_chunk("../x", "one")})}}, "INVALID_INPUT", "chunk_id"},
      {"text-type", {{"chunks", json::array({{{"chunk_id", "a"}, {"text", 5}}})}}, "INVALID_INPUT", "must be a string"},
      {"unknown-provider", {{"provider", "festival"}, {"chunks", json::array({text_chunk("a", "one")})}},
       "TTS_PROVIDER_UNAVAILABLE", "not known to this node"},
      {"sapi-on-linux", {{"provider", "sapi"}, {"chunks", json::array({text_chunk("a", "one")})}}, "TTS_PROVIDER_UNAVAILABLE",
       "Windows"},
      {"piper-unconfigured", {{"provider", "piper"}, {"chunks", json::array({text_chunk("a", "one")})}},
       "TTS_PROVIDER_UNAVAILABLE", "piper"},
      {"settings-type", {{"settings", "fast"}, {"chunks", json::array({text_chunk("a", "one")})}}, "INVALID_INPUT",
       "settings"},
      {"mix-escape", {{"mix", "../x.wav"}, {"chunks", json::array({text_chunk("a", "one")})}}, "INVALID_INPUT",
       "payload.mix.name must be a plain file name"},
      {"mix-not-wav", {{"mix", {{"name", "all.mp3"}}}, {"chunks", json::array({text_chunk("a", "one")})}}, "INVALID_INPUT",
       "ending in .wav"},
      {"mix-gap", {{"mix", {{"gap_sec", 11}}}, {"chunks", json::array({text_chunk("a", "one")})}}, "INVALID_INPUT",
       "payload.mix.gap_sec"},
      {"mix-clash", {{"mix", "A.wav"}, {"chunks", json::array({text_chunk("a", "one")})}}, "INVALID_INPUT",
       "is the file of chunk a"},
      {"mix-type", {{"mix", 5}, {"chunks", json::array({text_chunk("a", "one")})}}, "INVALID_INPUT", "payload.mix must be"},
      {"mix-key", {{"mix", {{"fade", 1}}}, {"chunks", json::array({text_chunk("a", "one")})}}, "INVALID_INPUT",
       "payload.mix.fade is not known"},
  };
  for (const auto& [job, payload, code, words] : cases) {
    CAPTURE(job);
    const json rec = run_on_worker(w, job, "TTS_RENDER_CHUNKS", payload);
    CHECK(rec["status"] == "failed");
    CHECK(rec["error_code"] == code);
    CHECK(rec["exit_code"] == 2);
    CHECK(rec["error_message"].get<std::string>().find(words) != std::string::npos);
    CHECK(rec["artifacts"].empty());
    CHECK(files_in(w.root() / "jobs" / job / "artifacts").empty());
    CHECK(job_log(w, job, payload).find(code) != std::string::npos);
  }
}

TEST_CASE("steps: TTS chunks render in parallel up to the allowance (piper stand-in)") {
  TempDir t;
  // A stand-in for the piper binary: checks its arguments, reads the text from stdin as piper
  // does, records when it ran, and writes a 22.05 kHz WAV as piper's voices do.
  const fs::path bin = t.path / "bin";
  fs::create_directories(bin);
  const fs::path model = t.path / "en_US-test-medium.onnx";
  REQUIRE(util::write_file_atomic(model, "not a real model").ok());
  const fs::path runs = t.path / "piper_runs.log";
  const std::string script = "#!/bin/sh\n"
                             "[ \"$1\" = --model ] && [ -f \"$2\" ] && [ \"$3\" = --output_file ] || { echo bad args: \"$@\" >&2; exit 64; }\n"
                             "text=$(cat)\n"
                             "echo \"start $(date +%s%N) $text\" >> '" + runs.string() + "'\n"
                             "sleep 0.4\n"
                             "ffmpeg -v error -nostdin -y -f lavfi -i sine=frequency=300:duration=0.5:sample_rate=22050 \"$4\" || exit 1\n"
                             "echo \"end $(date +%s%N)\" >> '" + runs.string() + "'\n";
  REQUIRE(util::write_file_atomic(bin / "piper", script).ok());
  fs::permissions(bin / "piper", fs::perms::owner_all);

  const auto max_overlap = [&] {
    std::istringstream in(*util::read_file(runs));
    std::vector<std::pair<long long, int>> events;
    std::string kind;
    long long ns = 0;
    std::string rest;
    while (in >> kind >> ns) {
      std::getline(in, rest);
      events.emplace_back(ns, kind == "start" ? 1 : -1);
    }
    std::sort(events.begin(), events.end());
    int now = 0, most = 0;
    for (const auto& [when, d] : events) most = std::max(most, now += d);
    return most;
  };
  json chunks = json::array();
  for (int i = 1; i <= 6; ++i) chunks.push_back({{"chunk_id", "p" + std::to_string(i)}, {"text", "Piper line " + std::to_string(i)}});
  const json payload = {{"provider", "piper"}, {"chunks", chunks}};
  const std::vector<std::pair<std::string, std::optional<std::string>>> env = {{"PIPER_BIN", (bin / "piper").string()},
                                                                               {"PIPER_MODEL", model.string()}};
  {
    WorkerProcess w(t.path, "two", WorkerOptions{"s3cret", "", {"--tts-parallel", "2"}, env});
    const json rec = run_on_worker(w, "piper2", "TTS_RENDER_CHUNKS", payload);
    REQUIRE_MESSAGE(rec["status"] == "succeeded", rec.dump());
    for (int i = 1; i <= 6; ++i) check_contract_wav(w.root() / "jobs/piper2/artifacts" / ("p" + std::to_string(i) + ".wav"));
    const std::string log = *util::read_file(runs);
    for (int i = 1; i <= 6; ++i) CHECK(log.find("Piper line " + std::to_string(i) + "\n") != std::string::npos);
    CHECK(max_overlap() == 2);
  }
  fs::remove(runs);
  {
    WorkerProcess w(t.path, "one", WorkerOptions{"s3cret", "", {"--tts-parallel", "1"}, env});
    json forced = payload;
    forced["force"] = true;
    const json rec = run_on_worker(w, "piper1", "TTS_RENDER_CHUNKS", forced);
    REQUIRE(rec["status"] == "succeeded");
    CHECK(max_overlap() == 1);
  }
}

TEST_CASE("steps: TTS with ElevenLabs over HTTPS (stand-in): request, retries, errors and the key kept secret") {
  TempDir t;
  const std::string key = "xi-test-key-5d41402abc4b2a76";
  SpeechServiceStandIn service(SpeechServiceStandIn::Kind::elevenlabs, t.path / "service", key);
  // The key and endpoint come from the worker's KEY=VALUE file, not from the environment.
  const fs::path env_file = t.path / "worker.env";
  REQUIRE(util::write_file_atomic(env_file, "# TTS\nELEVENLABS_API_KEY=" + key + "\nELEVENLABS_BASE_URL=" +
                                                service.base_url() + "\nELEVENLABS_VOICE_ID=voiceABC\nRAYVAULT_TTS_CA_FILE=" +
                                                service.ca_file().string() + "\n")
              .ok());
  WorkerProcess w(t.path, "eleven", WorkerOptions{"s3cret", "", {"--env-file", env_file.string()}});
  const auto caps = http_get(w.port(), "/health").json_body()["caps"];
  const auto listed = caps["tts_providers"];
  CHECK(std::find(listed.begin(), listed.end(), "elevenlabs") != listed.end());

  const json ok_payload = {{"provider", "elevenlabs"},
                           {"settings", {{"stability", 0.2}}},
                           {"chunks", json::array({{{"chunk_id", "e1"}, {"text", "First."}}, {{"chunk_id", "e2"}, {"text", "Second."}}})}};
  const json rec = run_on_worker(w, "eleven-ok", "TTS_RENDER_CHUNKS", ok_payload);
  REQUIRE_MESSAGE(rec["status"] == "succeeded", rec.dump());
  CHECK(service.requests() == 2);
  CHECK(service.problems().empty());
  for (const auto& path : service.paths()) CHECK(path == "/v1/text-to-speech/voiceABC");
  for (const auto& body : service.bodies()) {
    CHECK(body["model_id"] == "eleven_multilingual_v2");
    CHECK(body["voice_settings"]["stability"] == 0.2);
    CHECK(body["voice_settings"]["similarity_boost"] == 0.75);
    CHECK(body["voice_settings"]["use_speaker_boost"] == true);
  }
  check_contract_wav(w.root() / "jobs/eleven-ok/artifacts/e1.wav");
  CHECK(rec["metrics"]["voice_id"] == "voiceABC");

  const auto one_chunk = [](const std::string& text) {
    return json{{"provider", "elevenlabs"}, {"chunks", json::array({{{"chunk_id", "c"}, {"text", text}}})}};
  };
  SUBCASE("429 twice, then audio: retried with backoff and Retry-After") {
    service.script({429, 429});
    const int before = service.requests();
    const json r = run_on_worker(w, "eleven-429", "TTS_RENDER_CHUNKS", one_chunk("Busy service."));
    CHECK(r["status"] == "succeeded");
    CHECK(service.requests() - before == 3);
    // Retry-After: 1 was honoured (not the 0.5 s first backoff).
    CHECK(job_log(w, "eleven-429", one_chunk("Busy service.")).find("retrying in 1000 ms") != std::string::npos);
  }
  SUBCASE("500 on every attempt: TTS_PROVIDER_FAILED after 4 attempts, nothing published") {
    service.script({500, 500, 500, 500});
    const json r = run_on_worker(w, "eleven-500", "TTS_RENDER_CHUNKS", one_chunk("Broken service."));
    CHECK(r["status"] == "failed");
    CHECK(r["error_code"] == "TTS_PROVIDER_FAILED");
    CHECK(r["error_message"].get<std::string>().find("HTTP 500") != std::string::npos);
    CHECK(r["error_message"].get<std::string>().find("4 attempts") != std::string::npos);
    CHECK(files_in(w.root() / "jobs/eleven-500/artifacts").empty());
  }
  SUBCASE("429 on every attempt: TTS_RATE_LIMITED") {
    service.script({429, 429, 429, 429}, "0");
    const json r = run_on_worker(w, "eleven-limit", "TTS_RENDER_CHUNKS", one_chunk("Limited."));
    CHECK(r["error_code"] == "TTS_RATE_LIMITED");
  }
  SUBCASE("401: the key is refused at once, without retries, and never shown") {
    service.script({401});
    const int before = service.requests();
    const json r = run_on_worker(w, "eleven-401", "TTS_RENDER_CHUNKS", one_chunk("Refused."));
    CHECK(r["error_code"] == "TTS_PROVIDER_FAILED");
    CHECK(r["error_message"].get<std::string>().find("refused the API key") != std::string::npos);
    CHECK(service.requests() - before == 1);
    CHECK(r.dump().find(key) == std::string::npos);
    CHECK(job_log(w, "eleven-401", one_chunk("Refused.")).find(key) == std::string::npos);
  }
  SUBCASE("a certificate the worker does not trust is refused") {
    const fs::path untrusting = t.path / "untrusting.env";
    REQUIRE(util::write_file_atomic(untrusting, "ELEVENLABS_API_KEY=" + key + "\nELEVENLABS_BASE_URL=" + service.base_url() + "\n").ok());
    WorkerProcess u(t.path, "untrusting", WorkerOptions{"s3cret", "", {"--env-file", untrusting.string()}});
    const int before = service.requests();
    const json r = run_on_worker(u, "eleven-tls", "TTS_RENDER_CHUNKS", one_chunk("Who are you?"));
    CHECK(r["error_code"] == "TTS_PROVIDER_FAILED");
    CHECK(service.requests() == before);  // no request reached the handler
  }
  SUBCASE("no key on the node: TTS_PROVIDER_UNAVAILABLE, a fault of this node") {
    WorkerProcess bare(t.path, "bare");
    const json r = run_on_worker(bare, "eleven-nokey", "TTS_RENDER_CHUNKS", one_chunk("No key."));
    CHECK(r["error_code"] == "TTS_PROVIDER_UNAVAILABLE");
    CHECK(r["error_message"].get<std::string>().find("ELEVENLABS_API_KEY") != std::string::npos);
  }
  CHECK(job_log(w, "eleven-ok", ok_payload).find(key) == std::string::npos);
}

TEST_CASE("steps: TTS with a MOSS-TTS server (stand-in) and a voice-cloning reference") {
  TempDir t;
  SpeechServiceStandIn service(SpeechServiceStandIn::Kind::moss_tts, t.path / "service", "");
  const fs::path reference = t.path / "reference.wav";
  platform::ProcessSpec make;
  make.argv = {"ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", "sine=frequency=220:duration=0.3",
               reference.string()};
  make.timeout = std::chrono::seconds(30);
  REQUIRE(platform::run_process(make)->exit_code == 0);
  WorkerProcess w(t.path, "moss", WorkerOptions{"s3cret", "", {}, {{"MOSS_TTS_ENDPOINT", service.base_url()}}});
  const json payload = {{"provider", "moss"},
                        {"voice_id", "narrator"},
                        {"reference_audio", reference.string()},
                        {"settings", {{"speed", 1.1}}},
                        {"chunks", json::array({{{"chunk_id", "m1"}, {"text", "Cloned voice."}}})}};
  const json rec = run_on_worker(w, "moss1", "TTS_RENDER_CHUNKS", payload);
  REQUIRE_MESSAGE(rec["status"] == "succeeded", rec.dump());
  CHECK(service.problems().empty());
  REQUIRE(service.bodies().size() == 1);
  const json body = service.bodies()[0];
  CHECK(body["model_id"] == "moss-tts-8b-delay");
  CHECK(body["voice_id"] == "narrator");
  CHECK(body["speed"] == 1.1);
  CHECK(body["reference_audio_b64"] == util::base64(*util::read_file(reference)));
  check_contract_wav(w.root() / "jobs/moss1/artifacts/m1.wav");
  const json manifest = read_json(w.root() / "jobs/moss1/artifacts/tts_chunks_manifest.json");
  CHECK(manifest["provider"] == "moss_tts");
  CHECK(manifest["chunks"][0]["inputs_hash"] ==
        worker::steps::chunk_cache_key("moss_tts", "", "narrator", *util::sha1_file_hex(reference), "Cloned voice.",
                                       json{{"speed", 1.1}}));

  // Any other file of the worker as a "reference" is refused before anything is sent.
  const fs::path secret_file = t.path / "id_ed25519";
  REQUIRE(util::write_file_atomic(secret_file, "-----BEGIN OPENSSH PRIVATE KEY-----\nnot for the service\n").ok());
  json leak = payload;
  leak["reference_audio"] = secret_file.string();
  const json refused = run_on_worker(w, "moss-leak", "TTS_RENDER_CHUNKS", leak);
  CHECK(refused["error_code"] == "INVALID_INPUT");
  CHECK(refused["error_message"].get<std::string>().find("must be a WAV") != std::string::npos);
  CHECK(service.bodies().size() == 1);
}

namespace {

// A synthetic signal made by ffmpeg's lavfi sources, as a WAV (or any container by extension).
fs::path make_signal(const fs::path& dir, const std::string& name, const std::vector<std::string>& input_args) {
  const fs::path out = dir / name;
  platform::ProcessSpec spec;
  spec.argv = {"ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y"};
  spec.argv.insert(spec.argv.end(), input_args.begin(), input_args.end());
  spec.argv.push_back(out.string());
  spec.timeout = std::chrono::seconds(60);
  auto r = platform::run_process(spec);
  REQUIRE(r.ok());
  REQUIRE(r->exit_code == 0);
  return out;
}

// ffmpeg's own loudness meter, a second implementation (loudnorm's first-pass analysis).
double loudnorm_integrated(const fs::path& file) {
  platform::ProcessSpec spec;
  spec.argv = {"ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-i", file.string(), "-af",
               "loudnorm=print_format=json", "-f", "null", "-"};
  spec.timeout = std::chrono::seconds(60);
  std::string text;
  spec.on_output_line = [&](std::string_view l) { text += std::string(l) + "\n"; };
  auto r = platform::run_process(spec);
  REQUIRE(r.ok());
  const auto open = text.rfind('{');
  REQUIRE(open != std::string::npos);
  auto doc = protocol::parse_json(text.substr(open, text.rfind('}') - open + 1));
  REQUIRE(doc.ok());
  return std::stod((*doc)["input_i"].get<std::string>());
}

}  // namespace

TEST_CASE("steps: AUDIO_POSTCHECK gates on synthetic signals of known level") {
  TempDir t;
  // A 1 kHz tone at -10.96 dBFS peak (-13.97 dBFS RMS): about -14 LUFS, inside the contract's window.
  const auto tone = make_signal(t.path, "tone.wav", {"-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000:duration=5,volume=7.1dB",
                                                     "-c:a", "pcm_s16le"});
  // The same tone pushed 20 dB into full scale: hard clipping.
  const auto clipped = make_signal(t.path, "clipped.wav", {"-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000:duration=5,volume=20dB",
                                                           "-c:a", "pcm_s16le"});
  // The tone with 800 ms of silence from 2.0 s.
  const auto gap = make_signal(t.path, "gap.wav", {"-f", "lavfi", "-i",
                                                   "aevalsrc=0.3*sin(2*PI*1000*t)*not(between(t\\,2\\,2.8)):s=48000:d=5",
                                                   "-c:a", "pcm_s16le"});
  // A 4 s picture whose sound stops after 3 s.
  const auto short_audio = make_signal(t.path, "short_audio.mp4",
                                       {"-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=4", "-f", "lavfi", "-i",
                                        "sine=frequency=1000:sample_rate=48000:duration=3,volume=7.1dB", "-c:v", "libx264",
                                        "-pix_fmt", "yuv420p", "-c:a", "aac"});
  const auto silent_video = make_signal(t.path, "no_audio.mp4", {"-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=2",
                                                                 "-c:v", "libx264", "-pix_fmt", "yuv420p"});
  WorkerProcess w(t.path, "qa");
  const auto check = [&](const std::string& job, const json& payload) {
    const json rec = run_on_worker(w, job, "AUDIO_POSTCHECK", payload);
    const fs::path report = w.root() / "jobs" / job / "artifacts/audio_postcheck.json";
    return std::make_pair(rec, fs::exists(report) ? read_json(report) : json());
  };

  {
    const auto [rec, report] = check("tone", {{"video_path", tone.string()}, {"expected_duration_sec", 5}});
    CHECK(rec["status"] == "succeeded");
    CHECK(report["verdict"] == "pass");
    const double measured = report["gates"]["integrated_loudness"]["value"];
    CHECK(std::abs(measured - loudnorm_integrated(tone)) <= 0.5);
    CHECK(std::abs(measured - -14.0) <= 0.5);
    for (const char* gate : {"integrated_loudness", "true_peak", "duration", "clipping", "silence_gaps"}) {
      CAPTURE(gate);
      CHECK(report["gates"][gate]["verdict"] == "pass");
      CHECK(report["gates"][gate].contains("value"));
    }
    CHECK(report["gates"]["integrated_loudness"]["threshold"]["min"] == -15.0);
    CHECK(rec["metrics"]["verdict"] == "pass");
  }
  {
    const auto [rec, report] = check("clipped", {{"video_path", clipped.string()}});
    CHECK(rec["status"] == "failed");
    CHECK(rec["error_code"] == "");  // a verdict, not a fault: the controller does not run it elsewhere
    CHECK(rec["exit_code"] == 1);
    CHECK(report["gates"]["clipping"]["verdict"] == "fail");
    CHECK(report["gates"]["clipping"]["value"].get<long long>() >= 50);
    CHECK(report["gates"]["true_peak"]["verdict"] == "fail");
    CHECK(rec["message"].get<std::string>().find("clipping") != std::string::npos);
  }
  {
    const auto [rec, report] = check("gap", {{"video_path", gap.string()}});
    CHECK(rec["status"] == "succeeded");
    CHECK(report["verdict"] == "warn");
    REQUIRE(report["gates"]["silence_gaps"]["gaps"].size() == 1);
    CHECK(report["gates"]["silence_gaps"]["gaps"][0]["start"].get<double>() == doctest::Approx(2.0).epsilon(0.02));
    CHECK(report["gates"]["silence_gaps"]["gaps"][0]["end"].get<double>() == doctest::Approx(2.8).epsilon(0.02));
    CHECK(report["gates"]["silence_gaps"]["verdict"] == "warn");
  }
  {
    const auto [rec, report] = check("wrong-duration", {{"video_path", tone.string()}, {"expected_duration_sec", 6}});
    CHECK(rec["status"] == "failed");
    CHECK(report["gates"]["duration"]["verdict"] == "fail");
    CHECK(report["gates"]["duration"]["expected"] == 6.0);
    CHECK(report["gates"]["duration"]["expected_from"] == "payload");
  }
  {
    // No expected duration: the picture's length is expected; the sound is 1 s short.
    const auto [rec, report] = check("short-audio", {{"video_path", short_audio.string()}});
    CHECK(rec["status"] == "failed");
    CHECK(report["gates"]["duration"]["expected_from"] == "video_stream");
    CHECK(report["gates"]["duration"]["expected"].get<double>() == doctest::Approx(4.0).epsilon(0.05));
    CHECK(report["gates"]["duration"]["verdict"] == "fail");
  }
  {
    // Voice-over segments from render_config: the gap inside one fails, outside it only warns.
    const json inside = {{"segments", json::array({{{"type", "voiceover"}, {"start", 1.5}, {"end", 3.5}}, {{"type", "music"}, {"start", 0}, {"end", 5}}})}};
    const auto [rec, report] = check("vo-inside", {{"video_path", gap.string()}, {"render_config", inside}});
    CHECK(rec["status"] == "failed");
    CHECK(report["gates"]["voiceover_silence"]["verdict"] == "fail");
    CHECK(report["gates"]["voiceover_silence"]["segments"] == 1);
    const fs::path rc_file = t.path / "render_config.json";
    REQUIRE(util::write_file_atomic(rc_file, json{{"voiceover_segments", json::array({{{"start_sec", 0.2}, {"end_sec", 1.9}}})}}.dump()).ok());
    const auto [ok_rec, ok_report] = check("vo-outside", {{"video_path", gap.string()}, {"render_config", rc_file.string()}});
    CHECK(ok_rec["status"] == "succeeded");
    CHECK(ok_report["gates"]["voiceover_silence"]["verdict"] == "pass");
  }
  {
    // Thresholds from the payload replace the contract's.
    const json lenient = {{"clipping_fail_events", 1e9}, {"true_peak_max_dbtp", 3}, {"true_peak_warn_dbtp", 3},
                          {"loudness_max_lufs", "0"}, {"loudness_min_lufs", -30}};
    const auto [rec, report] = check("lenient", {{"video_path", clipped.string()}, {"thresholds", lenient}});
    CHECK(rec["status"] == "succeeded");
    CHECK(report["gates"]["clipping"]["verdict"] == "warn");
    CHECK(report["thresholds"]["loudness_max_lufs"] == 0.0);
  }
  // Bad input: the contract's INVALID_INPUT with a readable message, no report published.
  const std::vector<std::tuple<std::string, json, std::string>> bad = {
      {"missing", {{"video_path", (t.path / "nope.wav").string()}}, "nope.wav"},
      {"no-audio", {{"video_path", silent_video.string()}}, "no audio stream"},
      {"bad-threshold", {{"video_path", tone.string()}, {"thresholds", {{"loudnes_min", -20}}}}, "not a threshold"},
      {"bad-segment", {{"video_path", tone.string()}, {"render_config", {{"vo_segments", json::array({{{"start", 3}, {"end", 1}}})}}}},
       "end after start"},
      {"bad-duration", {{"video_path", tone.string()}, {"expected_duration_sec", "soon"}}, "expected_duration_sec"},
  };
  for (const auto& [job, payload, words] : bad) {
    CAPTURE(job);
    const auto [rec, report] = check(job, payload);
    CHECK(rec["error_code"] == "INVALID_INPUT");
    CHECK(rec["error_message"].get<std::string>().find(words) != std::string::npos);
    CHECK(report.is_null());
  }

  // The controller's local fallback runs the same step.
  write_nodes_file(t.path, R"({"nodes": []})");
  const auto local = run_controller(t.path, {"submit", "--run-id", "r", "--job-id", "qa-local", "--step-name", "AUDIO_POSTCHECK",
                                             "--payload-json", json{{"video_path", tone.string()}}.dump()});
  CHECK(local.exit_code == 0);
  CHECK(local.doc["mode"] == "local");
  CHECK(read_json(t.path / "state/cluster/receipts/r/qa-local/artifacts/audio_postcheck.json")["verdict"] == "pass");
}

namespace {

// A real X display for the desktop-session tests: Xvfb on a free display number, optionally
// requiring an MIT-MAGIC-COOKIE-1 from an Xauthority file. Stopped when it goes out of scope.
class Xvfb {
 public:
  explicit Xvfb(const fs::path& dir, const std::string& cookie = "") {
    if (platform::find_executable("Xvfb").empty()) return;
    for (int n = 91; n < 120 && number_ < 0; ++n) {
      // A live server has its lock file and its socket. A socket without a lock is left from a
      // server that was killed: removed, so that its presence means the new server is up. (A
      // stale lock Xvfb clears by itself.)
      const fs::path socket = "/tmp/.X11-unix/X" + std::to_string(n);
      const bool locked = fs::exists("/tmp/.X" + std::to_string(n) + "-lock");
      if (fs::exists(socket) && locked) continue;
      std::error_code ec;
      fs::remove(socket, ec);
      platform::ProcessSpec spec;
      spec.argv = {"Xvfb", ":" + std::to_string(n), "-screen", "0", "320x240x24", "-nolisten", "tcp"};
      if (!cookie.empty()) {
        auth_ = dir / ("xauth-" + std::to_string(n));
        REQUIRE(util::write_file_atomic(auth_, record(n, cookie)).ok());
        spec.argv.insert(spec.argv.end(), {"-auth", auth_.string()});
      }
      auto child = platform::Child::spawn(spec, dir / ("xvfb-" + std::to_string(n) + ".log"));
      REQUIRE(child.ok());
      // Ready when its socket exists; a display number another server took ends this one.
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
      while (std::chrono::steady_clock::now() < until && child->running() && !fs::exists("/tmp/.X11-unix/X" + std::to_string(n)))
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      if (child->running() && fs::exists("/tmp/.X11-unix/X" + std::to_string(n))) {
        number_ = n;
        child_.emplace(std::move(*child));
      }
    }
  }
  ~Xvfb() {
    if (child_) child_->terminate(std::chrono::seconds(5));  // SIGTERM: Xvfb removes its socket and lock
  }
  Xvfb(const Xvfb&) = delete;
  Xvfb& operator=(const Xvfb&) = delete;
  bool running() const { return number_ >= 0; }
  std::string display() const { return ":" + std::to_string(number_); }
  const fs::path& auth_file() const { return auth_; }
  // An Xauthority record for display n on this host (FamilyLocal), as xauth writes it.
  static std::string record(int n, const std::string& cookie) {
    std::string out;
    const auto put = [&out](const std::string& s) {
      out.push_back(static_cast<char>(s.size() >> 8));
      out.push_back(static_cast<char>(s.size() & 0xff));
      out += s;
    };
    out += std::string("\x01\x00", 2);  // 256: FamilyLocal
    put(platform::hostname());
    put(std::to_string(n));
    put("MIT-MAGIC-COOKIE-1");
    put(cookie);
    return out;
  }

 private:
  int number_ = -1;
  fs::path auth_;
  std::optional<platform::Child> child_;
};

// The stand-in openclaw CLI: checks its arguments as the real CLI takes them, records them, and
// behaves as its message says ("fail", "sleep", "json"; anything else: prints a reply).
std::string openclaw_standin(const fs::path& dir) {
  return path_with_standin(dir, "openclaw",
                           "[ \"$1\" = agent ] && [ \"$2\" = --agent ] && [ \"$4\" = --timeout ] && [ \"$6\" = --message ] "
                           "&& [ $# -eq 7 ] || { echo \"bad arguments: $*\" >&2; exit 64; }\n"
                           "printf '%s|%s|%s|%s\\n' \"$3\" \"$5\" \"$7\" \"$DISPLAY\" >> '" + (dir / "openclaw_calls.log").string() + "'\n"
                           "case \"$7\" in\n"
                           "  fail) echo 'agent crashed: no browser' >&2; exit 3 ;;\n"
                           "  sleep) sleep 60 ;;\n"
                           "  json) echo '{\"answer\": 42, \"sources\": [\"a\", \"b\"]}' ;;\n"
                           "  *) echo \"researched: $7\" ;;\n"
                           "esac\n");
}

}  // namespace

TEST_CASE("steps: FRAME_SAMPLING by seeking writes the fps filter's frames byte for byte and is chosen for sparse samples") {
  TempDir t;
  // Keyframes every second, so a seek decodes at most a second of video.
  const auto small = make_signal(t.path, "small.mp4", {"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "24",
                                                       "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p"});
  const auto big = make_signal(t.path, "big.mp4", {"-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25", "-t", "60", "-c:v",
                                                   "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p"});
  WorkerProcess w(t.path, "frames");
  // The frames a job published, name -> SHA-256.
  const auto frames_of = [&](const std::string& job) {
    std::map<std::string, std::string> out;
    for (const auto& f : files_in(w.root() / "jobs" / job / "artifacts")) {
      const std::string name = f.filename().string();
      if (name.rfind("frame_", 0) == 0) out[name] = *util::sha256_file_hex(f);
    }
    return out;
  };
  const auto sample = [&](const std::string& job, const fs::path& video, double every, const char* how) {
    json payload = {{"video_path", video.string()}, {"every_sec", every}};
    if (how != nullptr) payload["sampling"] = how;
    const json rec = run_on_worker(w, job, "FRAME_SAMPLING", payload);
    REQUIRE_MESSAGE(rec["status"] == "succeeded", rec.dump());
    return rec;
  };

  // Slot counts that round up, round down and land on a half (2.5 s into 24 s: 9.6 -> 10 slots).
  for (const double every : {3.0, 7.0, 2.5, 0.7}) {
    CAPTURE(every);
    const std::string tag = std::to_string(static_cast<int>(every * 10));
    const json by_filter = sample("filter-" + tag, small, every, "filter");
    const json by_seek = sample("seek-" + tag, small, every, "seek");
    CHECK(by_filter["metrics"]["sampling"] == "filter");
    CHECK(by_seek["metrics"]["sampling"] == "seek");
    const auto a = frames_of("filter-" + tag), b = frames_of("seek-" + tag);
    CHECK(a.size() == static_cast<std::size_t>(std::floor(24.0 / every + 0.5)));
    CHECK(by_seek["metrics"]["frames"] == a.size());
    CHECK(a == b);
    const json index = read_json(w.root() / "jobs" / ("seek-" + tag) / "artifacts/frames_index.json");
    CHECK(index["count"] == b.size());
  }

  // NTSC's 29.97 fps: in MP4 (time base 1/30000, 1001 ticks a frame) seeking finds the filter's
  // frames; in Matroska (milliseconds) a frame can sit on a slot's boundary, so the step keeps to
  // the filter even when asked to seek.
  const auto ntsc_mp4 = make_signal(t.path, "ntsc.mp4", {"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30000/1001", "-t",
                                                         "20", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-pix_fmt",
                                                         "yuv420p"});
  const auto ntsc_mkv = make_signal(t.path, "ntsc.mkv", {"-i", ntsc_mp4.string(), "-c", "copy"});
  // MPEG-TS (90 kHz, starting at 1.4 s), where ffmpeg's seeking does not land on the filter's
  // frames: the filter, whether its times are exact (from the MP4) or kept in milliseconds (from
  // the Matroska file).
  const auto ntsc_ts = make_signal(t.path, "ntsc.ts", {"-i", ntsc_mp4.string(), "-c", "copy"});
  const auto ms_ts = make_signal(t.path, "ms.ts", {"-i", ntsc_mkv.string(), "-c", "copy"});
  // Matroska at 25 fps: its milliseconds hold every frame exactly, so seeking is allowed.
  const auto pal_mkv = make_signal(t.path, "pal.mkv", {"-i", small.string(), "-c", "copy"});
  using Case = std::tuple<fs::path, std::string, std::string>;
  for (const auto& [video, tag, method] : {Case{ntsc_mp4, "mp4", "seek"}, Case{ntsc_mkv, "mkv", "filter"},
                                           Case{pal_mkv, "pal-mkv", "seek"},
                                           Case{ntsc_ts, "ts", "filter"}, Case{ms_ts, "ms-ts", "filter"}}) {
    CAPTURE(tag);
    const json by_filter = sample("ntsc-filter-" + tag, video, 2.5, "filter");
    const json by_seek = sample("ntsc-seek-" + tag, video, 2.5, "seek");
    CHECK(by_seek["metrics"]["sampling"] == method);
    CHECK(by_filter["metrics"]["frames"] == (tag == "pal-mkv" ? 10 : 8));
    CHECK(frames_of("ntsc-filter-" + tag) == frames_of("ntsc-seek-" + tag));
  }

  // Left to choose: seeking for two frames of a minute of 720p, the filter for one a second of a
  // small video (sixty runs would cost more than one decode of it).
  const json sparse = sample("auto-sparse", big, 30.0, nullptr);
  CHECK(sparse["metrics"]["sampling"] == "seek");
  CHECK(sparse["metrics"]["frames"] == 2);
  const json sparse_filter = sample("filter-sparse", big, 30.0, "filter");
  CHECK(frames_of("auto-sparse") == frames_of("filter-sparse"));
  const std::string log = job_log(w, "auto-sparse", {{"video_path", big.string()}, {"every_sec", 30.0}});
  CHECK(log.find("seeking to 2 frames") != std::string::npos);
  const json dense = sample("auto-dense", small, 1.0, nullptr);
  CHECK(dense["metrics"]["sampling"] == "filter");
  CHECK(dense["metrics"]["frames"] == 24);

  // A sample longer than the video: no slot, the contract's FRAME_SAMPLING_EMPTY either way.
  for (const char* how : {"seek", "auto"}) {
    const json none = run_on_worker(w, std::string("empty-") + how, "FRAME_SAMPLING",
                                    {{"video_path", small.string()}, {"every_sec", 49}, {"sampling", how}});
    CHECK(none["error_code"] == "FRAME_SAMPLING_EMPTY");
  }
  // Bad choices of method.
  int n = 0;
  for (const json& how : {json("fast"), json(3), json(true)}) {
    const std::string job = "bad-" + std::to_string(++n);
    const json bad = run_on_worker(w, job, "FRAME_SAMPLING", {{"video_path", small.string()}, {"sampling", how}});
    CHECK(bad["error_code"] == "INVALID_INPUT");
    CHECK(bad["error_message"].get<std::string>().find("payload.sampling") != std::string::npos);
    CHECK(frames_of(job).empty());
  }
}

TEST_CASE("steps: OPENCLAW_TASK on a real X display (Xvfb) with a stand-in openclaw") {
  TempDir t;
  Xvfb x(t.path);
  if (!x.running()) {
    if (std::getenv("CI") != nullptr) FAIL("Xvfb is required in CI (tools/install_deps.sh installs it)");
    MESSAGE("skipped: Xvfb is not installed or did not start (tools/install_deps.sh installs it)");
    return;
  }
  const fs::path bin = t.path / "bin";
  fs::create_directories(bin);
  const std::string path = openclaw_standin(bin);
  WorkerProcess w(t.path, "desk", WorkerOptions{"s3cret", "", {"--job-timeout-sec", "4"}, {{"PATH", path}, {"DISPLAY", x.display()},
                                                                                          {"WAYLAND_DISPLAY", std::nullopt}}});
  const json caps = http_get(w.port(), "/health").json_body()["caps"];
  CHECK(caps["ui_session_active"] == true);
  CHECK(caps["openclaw_available"] == true);

  const json task = {{"message", "  find the stems  "}, {"agent", "editor"}, {"timeout_sec", 90}, {"screenshot", true}};
  const json rec = run_on_worker(w, "claw", "OPENCLAW_TASK", task);
  REQUIRE_MESSAGE(rec["status"] == "succeeded", rec.dump());
  const fs::path art = w.root() / "jobs/claw/artifacts";
  CHECK(*util::read_file(art / "openclaw_output.txt") == "researched: find the stems\n");
  CHECK(*util::read_file(bin / "openclaw_calls.log") == "editor|90|find the stems|" + x.display() + "\n");
  const json result = read_json(art / "openclaw_result.json");
  CHECK(result["agent"] == "editor");
  CHECK(result["exit_code"] == 0);
  CHECK(result["ui_session"] == "DISPLAY=" + x.display());
  CHECK(result["screenshot"] == "screenshot.png");
  // The screenshot is a picture of the whole Xvfb screen.
  platform::ProcessSpec probe;
  probe.argv = {"ffprobe", "-v", "error", "-show_entries", "stream=width,height", "-of", "csv=p=0", (art / "screenshot.png").string()};
  probe.timeout = std::chrono::seconds(30);
  CHECK(util::trim(platform::run_process(probe)->stdout_text) == "320,240");

  SUBCASE("a JSON answer is kept as the result's agent_output") {
    const json r = run_on_worker(w, "claw-json", "OPENCLAW_TASK", {{"message", "json"}});
    CHECK(r["status"] == "succeeded");
    CHECK(read_json(w.root() / "jobs/claw-json/artifacts/openclaw_result.json")["agent_output"]["answer"] == 42);
    CHECK(read_json(w.root() / "jobs/claw-json/artifacts/openclaw_result.json")["agent"] == "researcher");
  }
  SUBCASE("an agent that fails: COMMAND_FAILED with what it said") {
    const json r = run_on_worker(w, "claw-fail", "OPENCLAW_TASK", {{"message", "fail"}});
    CHECK(r["error_code"] == "COMMAND_FAILED");
    CHECK(r["error_message"].get<std::string>().find("no browser") != std::string::npos);
    CHECK(files_in(w.root() / "jobs/claw-fail/artifacts").empty());
  }
  SUBCASE("an agent that runs past the job's limit is stopped: TIMEOUT") {
    const auto started = std::chrono::steady_clock::now();
    const json r = run_on_worker(w, "claw-slow", "OPENCLAW_TASK", {{"message", "sleep"}});
    CHECK(r["error_code"] == "TIMEOUT");
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(30));
  }
  SUBCASE("bad input") {
    CHECK(run_on_worker(w, "claw-empty", "OPENCLAW_TASK", {{"message", "   "}})["error_code"] == "INVALID_INPUT");
    CHECK(run_on_worker(w, "claw-agent", "OPENCLAW_TASK", {{"message", "x"}, {"agent", "--evil"}})["error_code"] == "INVALID_INPUT");
    CHECK(run_on_worker(w, "claw-big", "OPENCLAW_TASK", {{"message", std::string(20000, 'x')}})["error_code"] == "INVALID_INPUT");
  }
  SUBCASE("the controller's local fallback runs it in its own session") {
    write_nodes_file(t.path, R"({"nodes": []})");
    const auto local = run_controller(t.path, {"submit", "--run-id", "r", "--job-id", "claw-local", "--step-name", "OPENCLAW_TASK",
                                               "--payload-json", json{{"message", "local task"}}.dump()},
                                      {{"PATH", path}, {"DISPLAY", x.display()}, {"WAYLAND_DISPLAY", std::nullopt}});
    CHECK(local.exit_code == 0);
    CHECK(local.doc["mode"] == "local");
    CHECK(*util::read_file(t.path / "state/cluster/receipts/r/claw-local/artifacts/openclaw_output.txt") ==
          "researched: local task\n");
  }
}

TEST_CASE("steps: OPENCLAW_TASK refuses without a desktop session or without openclaw") {
  TempDir t;
  const fs::path bin = t.path / "bin";
  fs::create_directories(bin);
  const std::string path = openclaw_standin(bin);
  const json task = {{"message", "anything"}};
  {
    WorkerProcess w(t.path, "headless", WorkerOptions{"s3cret", "", {}, {{"PATH", path}, {"DISPLAY", std::nullopt},
                                                                         {"WAYLAND_DISPLAY", std::nullopt}}});
    CHECK(http_get(w.port(), "/health").json_body()["caps"]["ui_session_active"] == false);
    const json r = run_on_worker(w, "no-session", "OPENCLAW_TASK", task);
    CHECK(r["error_code"] == "UI_SESSION_REQUIRED");
    CHECK(r["error_message"].get<std::string>().find("DISPLAY") != std::string::npos);
  }
  {
    // DISPLAY names a display nobody serves: set is not enough, the display must answer.
    WorkerProcess w(t.path, "stale", WorkerOptions{"s3cret", "", {}, {{"PATH", path}, {"DISPLAY", ":187"}, {"WAYLAND_DISPLAY", std::nullopt}}});
    const json r = run_on_worker(w, "dead-display", "OPENCLAW_TASK", task);
    CHECK(r["error_code"] == "UI_SESSION_REQUIRED");
    CHECK(r["error_message"].get<std::string>().find("no X server answers") != std::string::npos);
  }
  {
    WorkerProcess w(t.path, "no-claw", WorkerOptions{"s3cret", "", {}, {{"PATH", "/usr/bin:/bin"}, {"DISPLAY", ":187"}}});
    const json r = run_on_worker(w, "no-claw", "OPENCLAW_TASK", task);
    CHECK(r["error_code"] == "OPENCLAW_MISSING");
  }
  Xvfb x(t.path, "0123456789abcdef");
  if (!x.running()) {
    if (std::getenv("CI") != nullptr) FAIL("Xvfb is required in CI (tools/install_deps.sh installs it)");
    MESSAGE("skipped the Xauthority part: Xvfb is not installed or did not start");
    return;
  }
  {
    // A display that wants a cookie: the user's Xauthority has it, so the session is there.
    WorkerProcess w(t.path, "cookie", WorkerOptions{"s3cret", "", {}, {{"PATH", path}, {"DISPLAY", x.display()},
                                                                       {"XAUTHORITY", x.auth_file().string()}, {"WAYLAND_DISPLAY", std::nullopt}}});
    CHECK(run_on_worker(w, "with-cookie", "OPENCLAW_TASK", task)["status"] == "succeeded");
  }
  {
    const fs::path wrong = t.path / "wrong.xauth";
    REQUIRE(util::write_file_atomic(wrong, Xvfb::record(std::stoi(x.display().substr(1)), "fedcba9876543210")).ok());
    WorkerProcess w(t.path, "wrong-cookie", WorkerOptions{"s3cret", "", {}, {{"PATH", path}, {"DISPLAY", x.display()},
                                                                             {"XAUTHORITY", wrong.string()}, {"WAYLAND_DISPLAY", std::nullopt}}});
    const json r = run_on_worker(w, "wrong-cookie", "OPENCLAW_TASK", task);
    CHECK(r["error_code"] == "UI_SESSION_REQUIRED");
    CHECK(r["error_message"].get<std::string>().find("refused") != std::string::npos);
  }
}

namespace {

// nvidia-smi as the driver's tool answers the worker's query, for two GPUs.
std::string gpu_standin(const fs::path& dir) {
  return path_with_standin(dir, "nvidia-smi",
                           "case \"$1\" in\n"
                           "  --query-gpu=index,name,memory.total,driver_version)\n"
                           "    echo '0, NVIDIA GeForce RTX 4090, 24564, 550.54.14'\n"
                           "    echo '1, NVIDIA RTX A6000, 49140, 550.54.14' ;;\n"
                           "  --query-gpu=name,memory.total) echo 'NVIDIA GeForce RTX 4090, 24564'; echo 'NVIDIA RTX A6000, 49140' ;;\n"
                           "  *) echo \"unexpected query: $*\" >&2; exit 2 ;;\n"
                           "esac\n");
}

std::string pose_runner_command() { return "python3 " + std::string(RAYVAULT_TEST_STANDINS) + "/pose_runner_standin.py"; }

// The names and first .npy header of a .npz, read by Python's zipfile (a real archive check).
std::string npz_listing(const fs::path& npz) {
  platform::ProcessSpec spec;
  spec.argv = {"python3", "-c",
               "import sys, zipfile\n"
               "z = zipfile.ZipFile(sys.argv[1])\n"
               "assert z.testzip() is None\n"
               "names = sorted(z.namelist())\n"
               "head = z.read(names[0])[:6]\n"
               "print(','.join(names), head == b'\\x93NUMPY')\n",
               npz.string()};
  spec.timeout = std::chrono::seconds(30);
  auto r = platform::run_process(spec);
  REQUIRE(r.ok());
  return util::trim(r->stdout_text);
}

}  // namespace

TEST_CASE("steps: POSE_ESTIMATE on a GPU slot with a stand-in runner (the model itself is not run here)") {
  TempDir t;
  const fs::path bin = t.path / "bin";
  fs::create_directories(bin);
  const std::string path = gpu_standin(bin);
  const auto video = make_video(t.path, 20);
  const fs::path mode = t.path / "runner_mode";
  const fs::path record = t.path / "runner_record.log";
  const std::vector<std::pair<std::string, std::optional<std::string>>> env = {
      {"PATH", path}, {"POSE_RUNNER", pose_runner_command()}, {"STANDIN_EXPECT_GPUS", "0,1"},
      {"STANDIN_MODE_FILE", mode.string()}, {"STANDIN_RECORD", record.string()}};
  auto with = [&](std::vector<std::pair<std::string, std::optional<std::string>>> more) {
    auto all = env;
    all.insert(all.end(), more.begin(), more.end());
    return all;
  };
  WorkerProcess w(t.path, "gpu", WorkerOptions{"s3cret", "", {"--slots", "1"}, with({{"STANDIN_EXPECT_MAX_SECONDS", "12"}})});
  const json caps = http_get(w.port(), "/health").json_body()["caps"];
  CHECK(caps["gpu_model"] == "NVIDIA GeForce RTX 4090");
  CHECK(caps["vram_gb"] == 23.99);
  REQUIRE(caps["gpus"].size() == 2);
  CHECK(caps["gpus"][1]["model"] == "NVIDIA RTX A6000");
  CHECK(caps["gpus"][1]["driver"] == "550.54.14");
  CHECK(caps["gpu_slots"] == 2);
  CHECK(caps["cpu_slots"] == 1);
  CHECK(caps["tool_versions"]["pose_runner"] == "configured");
  write_nodes(t.path, {{"gpu", w.port()}});

  // Through the controller, whose default requirements for the step (a GPU, 8 GB) this node meets.
  const json payload = {{"video_path", video.string()}, {"static_cam", true}, {"f_mm", 24}};
  const auto run = run_controller(t.path, {"submit", "--run-id", "shot", "--job-id", "pose1", "--step-name", "POSE_ESTIMATE",
                                           "--payload-json", payload.dump()});
  REQUIRE_MESSAGE(run.exit_code == 0, run.out);
  CHECK(run.doc["node_id"] == "gpu");
  const fs::path art = t.path / "state/cluster/receipts/shot/pose1/artifacts";
  CHECK(npz_listing(art / "pose.npz") ==
        "smpl_params_global_betas.npy,smpl_params_global_body_pose.npy,smpl_params_global_global_orient.npy,"
        "smpl_params_global_transl.npy True");
  const json meta = read_json(art / "pose_meta.json");
  CHECK(meta["fps"] == 15.0);
  CHECK(meta["frames"] == 180);  // 12 s at 15 fps, from a 20 s clip
  CHECK(meta["static_cam"] == true);
  CHECK(meta["use_dpvo"] == false);
  CHECK(meta["f_mm"] == 24.0);
  CHECK((meta["cuda_visible_devices"] == "0" || meta["cuda_visible_devices"] == "1"));
  CHECK(fs::file_size(art / "preview_0000.jpg") > 0);
  CHECK(util::read_file(art / "pose_runner.log")->find("loading gvhmr checkpoint on cuda:") != std::string::npos);
  const json receipt = read_json(t.path / "state/cluster/receipts/shot/pose1/job_receipt.json");
  CHECK(receipt["job_status"]["metrics"]["estimator"] == "gvhmr");
  CHECK(receipt["job_status"]["metrics"]["frames"] == 180);

  SUBCASE("GPU slots: one job per GPU, both GPUs used, CPU slots apart") {
    REQUIRE(util::write_file_atomic(mode, "ok").ok());
    fs::remove(record);
    WorkerProcess slow(t.path, "slow", WorkerOptions{"s3cret", "", {"--slots", "1"}, with({{"STANDIN_SLEEP", "1.5"}})});
    std::vector<json> payloads;
    for (int i = 0; i < 4; ++i) {
      payloads.push_back({{"video_path", video.string()}, {"f_mm", 20 + i}, {"max_seconds", 2}});
      REQUIRE(http_post(slow.port(), "/job", job_body("steps", "slot" + std::to_string(i), "POSE_ESTIMATE", payloads.back()).dump()).status == 200);
    }
    // A CPU job is not held up behind the GPU queue.
    const json probe_payload = {{"media_path", video.string()}};
    const json probe = run_on_worker(slow, "cpu-probe", "FFMPEG_PROBE", probe_payload);
    CHECK(probe["status"] == "succeeded");
    for (int i = 0; i < 4; ++i) {
      const json r = poll_job(slow.port(), "steps", "slot" + std::to_string(i), protocol::inputs_hash(payloads[i]),
                              [](const json& j) { return j["status"] == "succeeded" || j["status"] == "failed"; });
      CHECK(r["status"] == "succeeded");
      // The probe finished while pose jobs still ran (they take 1.5 s each, two at a time).
      CHECK(r["finished_at"].get<std::string>() > probe["finished_at"].get<std::string>());
    }
    // Per GPU, runs never overlap; both GPUs ran jobs.
    std::istringstream in(*util::read_file(record));
    std::map<std::string, int> running, most, runs;
    std::vector<std::tuple<long long, int, std::string>> events;
    std::string kind, gpu;
    long long ns = 0;
    while (in >> kind >> ns >> gpu) events.emplace_back(ns, kind == "start" ? 1 : -1, gpu);
    std::sort(events.begin(), events.end());
    for (const auto& [when, d, g] : events) {
      most[g] = std::max(most[g], running[g] += d);
      if (d > 0) ++runs[g];
    }
    CHECK(most["0"] == 1);
    CHECK(most["1"] == 1);
    CHECK(runs["0"] >= 1);
    CHECK(runs["1"] >= 1);
    CHECK(runs["0"] + runs["1"] == 4);
  }
  SUBCASE("a runner that fails, prints garbage, reports failure or names a file outside its folder") {
    const std::vector<std::tuple<std::string, std::string>> cases = {
        {"fail_exit", "out of memory"}, {"garbage", "no result line"}, {"ok_false", "no person found"}, {"escape", "not a file in its output folder"}};
    int n = 0;
    for (const auto& [how, words] : cases) {
      CAPTURE(how);
      REQUIRE(util::write_file_atomic(mode, how).ok());
      const std::string job = "bad" + std::to_string(n++);
      const json r = run_on_worker(w, job, "POSE_ESTIMATE", {{"video_path", video.string()}, {"f_mm", 100 + n}, {"max_seconds", 1}});
      CHECK(r["status"] == "failed");
      CHECK(r["error_code"] == "COMMAND_FAILED");
      CHECK(r["error_message"].get<std::string>().find(words) != std::string::npos);
      CHECK(files_in(w.root() / "jobs" / job / "artifacts").empty());
    }
  }
  SUBCASE("bad input") {
    CHECK(run_on_worker(w, "no-video", "POSE_ESTIMATE", {{"video_path", (t.path / "none.mp4").string()}})["error_code"] == "INVALID_INPUT");
    CHECK(run_on_worker(w, "bad-fps", "POSE_ESTIMATE", {{"video_path", video.string()}, {"target_fps", "fast"}})["error_code"] ==
          "INVALID_INPUT");
    CHECK(run_on_worker(w, "bad-fmm", "POSE_ESTIMATE", {{"video_path", video.string()}, {"f_mm", -3}})["error_code"] == "INVALID_INPUT");
  }
}

TEST_CASE("steps: POSE_ESTIMATE without a GPU or without a runner, and the controller's choice") {
  TempDir t;
  const fs::path bin = t.path / "bin";
  fs::create_directories(bin);
  const std::string gpu_path = gpu_standin(bin);
  const auto video = make_video(t.path, 2);
  const json payload = {{"video_path", video.string()}};
  // No nvidia-smi: no GPU slot, GPU_REQUIRED.
  WorkerProcess cpu_only(t.path, "cpu", WorkerOptions{"s3cret", "", {}, {{"POSE_RUNNER", pose_runner_command()}}});
  CHECK(http_get(cpu_only.port(), "/health").json_body()["caps"]["gpu_slots"] == 0);
  const json r1 = run_on_worker(cpu_only, "no-gpu", "POSE_ESTIMATE", payload);
  CHECK(r1["error_code"] == "GPU_REQUIRED");
  // A GPU but no runner: POSE_RUNNER_MISSING.
  WorkerProcess bare(t.path, "bare", WorkerOptions{"s3cret", "", {}, {{"PATH", gpu_path}, {"POSE_RUNNER", std::nullopt}}});
  CHECK(http_get(bare.port(), "/health").json_body()["caps"]["tool_versions"]["pose_runner"] == "not configured");
  const json r2 = run_on_worker(bare, "no-runner", "POSE_ESTIMATE", payload);
  CHECK(r2["error_code"] == "POSE_RUNNER_MISSING");

  // The controller does not send it to the CPU-only node (default requirements), and its own
  // machine has no GPU either: the answer says why, and no worker ran it.
  write_nodes(t.path, {{"cpu", cpu_only.port()}});
  const auto none = run_controller(t.path, {"submit", "--run-id", "r", "--job-id", "p-none", "--step-name", "POSE_ESTIMATE",
                                            "--payload-json", payload.dump()},
                                   {{"POSE_RUNNER", pose_runner_command()}});
  CHECK(none.exit_code == 2);
  CHECK(none.doc["message"].get<std::string>().find("No worker satisfies requirements") != std::string::npos);
  CHECK(none.doc["error_code"] == "GPU_REQUIRED");
  CHECK(none.doc["mode"] == "local");
  // Local fallback on a controller machine that has a GPU and a runner.
  const auto local = run_controller(t.path, {"submit", "--run-id", "r", "--job-id", "p-local", "--step-name", "POSE_ESTIMATE",
                                             "--payload-json", payload.dump()},
                                    {{"PATH", gpu_path}, {"POSE_RUNNER", pose_runner_command()}});
  CHECK(local.exit_code == 0);
  CHECK(local.doc["mode"] == "local");
  CHECK(fs::exists(t.path / "state/cluster/receipts/r/p-local/artifacts/pose.npz"));
}

namespace {

// How many processes run with this exact command line fragment (pgrep -f).
int processes_matching(const std::string& pattern) {
  platform::ProcessSpec spec;
  spec.argv = {"pgrep", "-c", "-f", pattern};
  spec.timeout = std::chrono::seconds(10);
  auto r = platform::run_process(spec);
  if (!r) return -1;
  return std::atoi(util::trim(r->stdout_text).c_str());
}

// Polls until pred holds or the deadline passes.
bool eventually(const std::function<bool()>& pred, std::chrono::seconds within = std::chrono::seconds(20)) {
  const auto until = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return pred();
}

}  // namespace

TEST_CASE("steps: cancel a queued job and a running one (its whole process tree) through the controller") {
  TempDir t;
  const fs::path bin = t.path / "bin";
  fs::create_directories(bin);
  const fs::path started = t.path / "probe_started.log";
  // An ffprobe that never finishes and leaves a grandchild: cancelling must end both.
  const std::string path = path_with_standin(bin, "ffprobe",
                                             "echo \"$$ $*\" >> '" + started.string() + "'\n"
                                             "sleep 3017 &\nwait\n");
  const auto video = make_video(t.path, 1);
  WorkerProcess w(t.path, "w1", WorkerOptions{"s3cret", "", {"--slots", "1"}, {{"PATH", path}}});
  WorkerProcess other(t.path, "w2", WorkerOptions{"s3cret", "", {"--slots", "1"}, {{"PATH", path}}});
  CHECK(http_get(w.port(), "/health").json_body()["caps"]["protocol_features"].dump().find("\"cancel\"") != std::string::npos);
  write_nodes(t.path, {{"w1", w.port()}, {"w2", other.port()}});

  // The controller follows a job that will be cancelled; it must not run it elsewhere.
  const json running_payload = {{"media_path", video.string()}};
  CliResult submitted;
  std::thread follower([&] {
    submitted = run_controller(t.path, {"submit", "--run-id", "r", "--job-id", "long", "--step-name", "FFMPEG_PROBE",
                                        "--payload-json", running_payload.dump()});
  });
  REQUIRE(eventually([&] { return fs::exists(started) && processes_matching("sleep 3017") >= 1; }));
  // A second job waits behind it in the one slot.
  const json queued_payload = {{"media_path", video.string()}, {"note", "queued"}};
  REQUIRE(http_post(w.port(), "/job", job_body("r", "waiting", "FFMPEG_PROBE", queued_payload).dump()).status == 200);
  CHECK(poll_job(w.port(), "r", "waiting", protocol::inputs_hash(queued_payload), [](const json&) { return true; })["status"] ==
        "queued");

  const auto q = run_controller(t.path, {"cancel", "--run-id", "r", "--job-id", "waiting", "--node-id", "w1", "--inputs-hash",
                                         protocol::inputs_hash(queued_payload), "--reason", "superseded by take 2"});
  CHECK(q.exit_code == 0);
  CHECK(q.doc["status"] == "cancelled");
  CHECK(q.doc["job"]["error_code"] == "CANCELLED");
  CHECK(q.doc["message"].get<std::string>().find("superseded by take 2") != std::string::npos);

  // The running job: through the ledger (no node or hash given), its process tree ends.
  const auto c = run_controller(t.path, {"cancel", "--run-id", "r", "--job-id", "long", "--reason", "wrong take"});
  CHECK(c.exit_code == 0);
  CHECK(c.doc["status"] == "cancelled");
  CHECK(c.doc["node_id"] == "w1");
  CHECK(eventually([] { return processes_matching("sleep 3017") == 0; }));
  follower.join();
  CHECK(submitted.exit_code == 2);
  CHECK(submitted.doc["status"] == "cancelled");
  CHECK(submitted.doc["node_id"] == "w1");
  CHECK(submitted.doc["mode"] == "remote");
  CHECK(submitted.doc["error_code"] == "CANCELLED");
  CHECK(submitted.doc["message"] == "cancelled on request: wrong take");
  // Exactly one run of the long job, and the queued one never started; w2 got nothing.
  const std::string runs = *util::read_file(started);
  CHECK(std::count(runs.begin(), runs.end(), '\n') == 1);
  CHECK(http_get(other.port(), "/health").json_body()["queue_depth"] == 0);
  CHECK(files_in(w.root() / "jobs/long/artifacts").empty());
  const json receipt = read_json(w.root() / "jobs/long/job_receipt.json");
  CHECK(receipt["status"] == "cancelled");
  CHECK(receipt["error_message"].get<std::string>().find("wrong take") != std::string::npos);
  CHECK(job_log(w, "waiting", queued_payload).find("job_started") == std::string::npos);
  const auto st = run_controller(t.path, {"status", "--run-id", "r", "--job-id", "long"});
  CHECK(st.doc["ledger"]["status"] == "cancelled");

  SUBCASE("a finished job cannot be cancelled; a cancelled one runs again when submitted again") {
    const auto again = run_controller(t.path, {"cancel", "--run-id", "r", "--job-id", "long"});
    CHECK(again.exit_code == 0);  // already cancelled: answered as it is
    WorkerProcess plain(t.path, "w3");
    const json p = {{"media_path", video.string()}};
    const json done = run_on_worker(plain, "done", "FFMPEG_PROBE", p);
    REQUIRE(done["status"] == "succeeded");
    const auto late = run_controller(t.path, {"cancel", "--run-id", "steps", "--job-id", "done", "--node-id", "w1",
                                              "--inputs-hash", protocol::inputs_hash(p)});
    CHECK(late.exit_code == 2);  // not on w1
    CHECK(late.doc["error"].get<std::string>().find("not found") != std::string::npos);
    write_nodes(t.path, {{"w3", plain.port()}});
    const auto finished = run_controller(t.path, {"cancel", "--run-id", "steps", "--job-id", "done", "--node-id", "w3",
                                                  "--inputs-hash", protocol::inputs_hash(p)});
    CHECK(finished.exit_code == 2);
    CHECK(finished.doc["error"].get<std::string>().find("already ended: succeeded") != std::string::npos);
    // Resubmitting the cancelled queued job runs it (the stand-in ffprobe hangs again: cancel it too).
    REQUIRE(http_post(w.port(), "/job", job_body("r", "waiting", "FFMPEG_PROBE", queued_payload).dump()).status == 200);
    CHECK(poll_job(w.port(), "r", "waiting", protocol::inputs_hash(queued_payload),
                   [](const json& j) { return j["status"] == "running"; })["status"] == "running");
  }
  SUBCASE("hostile cancel requests") {
    // The controller staged the video: the worker knows the job by the hash of the payload that
    // names it by digest.
    const json staged{{"media_path", protocol::blob_ref_json(sha256_of(video), video.filename().string())}};
    const std::string hash = protocol::inputs_hash(staged);
    json body = job_body("r", "long", "JOB_CANCEL", json::object(), "s3cret", hash);
    body["message_type"] = "cancel_job";
    body.erase("payload");
    json wrong_secret = job_body("r", "long", "JOB_CANCEL", json::object(), "not-the-secret", hash);
    wrong_secret["message_type"] = "cancel_job";
    CHECK(http_post(w.port(), "/job/long/cancel", wrong_secret.dump()).status == 401);
    json wrong_step = job_body("r", "long", "FFMPEG_PROBE", json::object(), "s3cret", hash);
    wrong_step["message_type"] = "cancel_job";
    CHECK(http_post(w.port(), "/job/long/cancel", wrong_step.dump()).status == 401);
    json wrong_type = body;
    wrong_type["message_type"] = "submit_job";
    CHECK(http_post(w.port(), "/job/long/cancel", wrong_type.dump()).status == 400);
    CHECK(http_post(w.port(), "/job/other/cancel", body.dump()).status == 400);  // body names another job
    CHECK(http_get(w.port(), "/job/long/cancel").status == 405);
    json unknown = job_body("r", "nobody", "JOB_CANCEL", json::object(), "s3cret", hash);
    unknown["message_type"] = "cancel_job";
    CHECK(http_post(w.port(), "/job/nobody/cancel", unknown.dump()).status == 404);
    json mismatch = job_body("r", "long", "JOB_CANCEL", json::object(), "s3cret", std::string(64, 'a'));
    mismatch["message_type"] = "cancel_job";
    CHECK(http_post(w.port(), "/job/long/cancel", mismatch.dump()).status == 403);
    CHECK(http_post(w.port(), "/job/long/cancel", body.dump()).status == 200);  // already cancelled
  }
}

TEST_CASE("steps: the TTS chunk cache keeps to its size, dropping the least recently used chunks") {
  TempDir t;
  WorkerProcess w(t.path, "small-cache", WorkerOptions{"s3cret", "", {"--tts-cache-mb", "1"}});
  json chunks = json::array();
  for (int i = 0; i < 12; ++i)
    chunks.push_back({{"chunk_id", "c" + std::to_string(i)}, {"text", "Sentence number " + std::to_string(i) + " of the long read."}});
  const json rec = run_on_worker(w, "many", "TTS_RENDER_CHUNKS", {{"chunks", chunks}});
  REQUIRE(rec["status"] == "succeeded");
  std::uintmax_t total = 0, rendered = 0;
  for (const auto& f : files_in(w.root() / "cache/tts")) total += fs::file_size(f);
  for (const auto& f : files_in(w.root() / "jobs/many/artifacts"))
    if (f.extension() == ".wav") rendered += fs::file_size(f);
  CHECK(rendered > (1u << 20));  // more was rendered than the cache may keep
  CHECK(total <= (1u << 20));
  CHECK(total > 0);
  CHECK(job_log(w, "many", {{"chunks", chunks}}).find("least recently used") != std::string::npos);
}
