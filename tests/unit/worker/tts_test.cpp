// TTS and audio post-check: the chunk cache key as the contract defines it (values from Python's hashlib and json),
// chunk file names, provider names and the Windows SAPI command line.
#include <doctest/doctest.h>

#include <algorithm>

#include "platform/system_info.hpp"
#include "protocol/json.hpp"
#include "worker/steps/audio_postcheck.hpp"
#include "worker/steps/tts_render_chunks.hpp"
#include "worker/tts/provider.hpp"

using namespace rayvault;
using protocol::json;
namespace steps = worker::steps;
namespace tts = worker::tts;

TEST_CASE("tts: python_json_dumps writes what json.dumps(sort_keys=True) writes") {
  const json v = json::parse(R"({"stability":0.3,"b":[1,2.5,true,null],"a":{"z":"\u00e9\ud83d\ude00\u007f","y":1e-05}})");
  CHECK(protocol::python_json_dumps(v) ==
        R"({"a": {"y": 1e-05, "z": "\u00e9\ud83d\ude00\u007f"}, "b": [1, 2.5, true, null], "stability": 0.3})");
  CHECK(protocol::python_json_dumps(json::object()) == "{}");
  CHECK(protocol::python_json_dumps(json::array()) == "[]");
}

TEST_CASE("tts: chunk cache key") {
  // hashlib.sha256("provider=...|model=...|voice=...|ref=...|text=...[|settings=json.dumps(...)]")[:24]
  CHECK(steps::chunk_cache_key("espeak-ng", "", "default", "", "Hello from the studio.", json::object()) ==
        "81a05b81fda272b4628675e8");
  const json settings = json::parse(R"({"stability":0.3,"b":[1,2.5,true,null],"a":{"z":"\u00e9","y":1e-05}})");
  CHECK(steps::chunk_cache_key("elevenlabs", "eleven_multilingual_v2", "21m00Tcm4TlvDq8ikWAM", "",
                               "Caf\xc3\xa9 \xe2\x80\x94 \xc3\xbcn\xc3\xaf" "code \xe2\x9c\x93 \xf0\x9f\x98\x80", settings) ==
        "4011bc5c1d3abc7d35f11d65");
  // Empty settings add nothing; a reference file's SHA-1 is part of the key.
  CHECK(steps::chunk_cache_key("moss_tts", "", "v", "da39a3ee5e6b4b0d3255bfef95601890afd80709", "x", json::object()) ==
        "1f2ba1bbcf88ec23778a45e2");
  CHECK(steps::chunk_cache_key("moss_tts", "", "v", "", "x", json::object()) !=
        steps::chunk_cache_key("moss_tts", "", "v", "da39a3ee5e6b4b0d3255bfef95601890afd80709", "x", json::object()));
}

TEST_CASE("tts: chunk file names") {
  CHECK(steps::chunk_file_name("intro") == "intro.wav");
  CHECK(steps::chunk_file_name("Scene_01-a") == "Scene_01-a.wav");
  // A Windows device name, a space, non-ASCII, a leading dot: safe form + 16 hex of the id's digest.
  for (const std::string id : {"con", "line 1", "sc\xc3\xa8ne", ".hidden"}) {
    const std::string f = steps::chunk_file_name(id);
    CAPTURE(f);
    CHECK(f.size() > 21);
    CHECK(f.substr(f.size() - 4) == ".wav");
    CHECK(f[0] != '.');
    CHECK(f.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == std::string::npos);
  }
  CHECK(steps::chunk_file_name("line 1") != steps::chunk_file_name("line_1"));
}

TEST_CASE("tts: provider names, aliases and availability") {
  CHECK(tts::canonical_name(" MOSS ") == "moss_tts");
  CHECK(tts::canonical_name("eSpeak") == "espeak-ng");
  CHECK(tts::canonical_name("ElevenLabs") == "elevenlabs");
  CHECK(tts::canonical_name("Mock") == "mock");
  for (const auto& n : tts::known_providers()) {
    const auto p = tts::make_provider(n);
    REQUIRE(p != nullptr);
    CHECK(p->name() == n);
  }
  CHECK(tts::make_provider("festival") == nullptr);
  CHECK(tts::mock_seconds("one") == 1.0);
  CHECK(tts::mock_seconds(std::string(300, 'a') + " b\n\tc ") == doctest::Approx(1.2));  // 3 words
  std::string words;
  for (int i = 0; i < 300; ++i) words += "w ";
  CHECK(tts::mock_seconds(words) == doctest::Approx(120.0));

  worker::StepConfig config;
  const auto sapi = tts::make_provider("sapi")->unavailable_reason(config);
  const auto say = tts::make_provider("say")->unavailable_reason(config);
  if (platform::os_name() == "windows") {
    CHECK((sapi.empty() || sapi.find("powershell") != std::string::npos));
    CHECK(say.find("macOS") != std::string::npos);
  } else {
    CHECK(sapi.find("Windows") != std::string::npos);
  }
  // Keys and endpoints come from the environment or the worker's file; without them the
  // service providers say what is missing, never a value.
  config.env_file = "no-such-worker.env";
  const auto eleven = tts::make_provider("elevenlabs")->unavailable_reason(config);
  if (platform::getenv_string("ELEVENLABS_API_KEY").empty()) CHECK(eleven.find("ELEVENLABS_API_KEY") != std::string::npos);
  if (platform::getenv_string("MOSS_TTS_ENDPOINT").empty())
    CHECK(tts::make_provider("moss_tts")->unavailable_reason(config).find("MOSS_TTS_ENDPOINT") != std::string::npos);
}

TEST_CASE("tts: the SAPI provider's PowerShell command line and script") {
  tts::SpeechRequest r;
  r.text_file = "C:\\jobs\\a b\\text.txt";
  r.voice_id = "Microsoft Zira Desktop";
  r.settings = json{{"speed", 1.3}, {"volume", 80}};
  const auto argv = tts::sapi_arguments("C:\\jobs\\a b\\sapi_speak.ps1", r, "C:\\jobs\\a b\\sapi.wav");
  const std::vector<std::string> expected = {"powershell", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass",
                                             "-File", "C:\\jobs\\a b\\sapi_speak.ps1", "-TextFile", "C:\\jobs\\a b\\text.txt",
                                             "-OutFile", "C:\\jobs\\a b\\sapi.wav", "-Voice", "Microsoft Zira Desktop",
                                             "-Rate", "3", "-Volume", "80"};
  CHECK(argv == expected);
  // The text never travels on the command line; the default voice adds no -Voice.
  r.voice_id = "default";
  r.settings = json::object();
  const auto plain = tts::sapi_arguments("s.ps1", r, "o.wav");
  CHECK(std::find(plain.begin(), plain.end(), "-Voice") == plain.end());
  CHECK(plain.size() == 11);
  const std::string_view script = tts::sapi_script();
  CHECK(script.find("System.Speech") != std::string_view::npos);
  CHECK(script.find("SetOutputToWaveFile($OutFile)") != std::string_view::npos);
  CHECK(script.find("ReadAllText($TextFile") != std::string_view::npos);
}

TEST_CASE("audio post-check: reading ffmpeg's messages and render_config segments") {
  const std::vector<std::string> lines = {
      "[silencedetect @ 0x1] silence_start: 2",
      "[silencedetect @ 0x1] silence_end: 2.80002 | silence_duration: 0.800021",
      "[Parsed_ebur128_0 @ 0x2] Summary:",
      "",
      "  Integrated loudness:",
      "    I:         -21.1 LUFS",
      "    Threshold: -31.1 LUFS",
      "  Loudness range:",
      "    LRA:         3.5 LU",
      "  True peak:",
      "    Peak:       -0.4 dBFS",
      "[silencedetect @ 0x1] silence_start: 4.5",
      "[Parsed_astats_2 @ 0x3] Channel: 1",
      "[Parsed_astats_2 @ 0x3] Peak level dB: -0.000000",
      "[Parsed_astats_2 @ 0x3] Peak count: 120",
      "[Parsed_astats_2 @ 0x3] Channel: 2",
      "[Parsed_astats_2 @ 0x3] Peak level dB: -6.02",
      "[Parsed_astats_2 @ 0x3] Peak count: 9000",
  };
  const auto m = worker::steps::parse_audio_measurements(lines);
  REQUIRE(m.integrated_lufs.has_value());
  CHECK(*m.integrated_lufs == doctest::Approx(-21.1));
  CHECK(*m.loudness_range_lu == doctest::Approx(3.5));
  CHECK(*m.true_peak_dbtp == doctest::Approx(-0.4));
  REQUIRE(m.silences.size() == 2);
  CHECK(m.silences[0].end == doctest::Approx(2.80002));
  CHECK(m.silences[1].end < 0);  // runs to the end
  // Only the channel at full scale counts as clipping.
  CHECK(m.clipping_events == 120);
  CHECK(m.sample_peak_dbfs == doctest::Approx(0.0));

  const auto segs = worker::steps::voiceover_segments(json::parse(
      R"({"segments":[{"type":"VoiceOver","start":1,"end":2},{"kind":"music","start":0,"end":9}],"vo_segments":[{"start_sec":"3","end_sec":4.5}]})"));
  REQUIRE(segs.ok());
  REQUIRE(segs->size() == 2);
  CHECK((*segs)[0].start == 3.0);
  CHECK((*segs)[1].end == 2.0);
  CHECK_FALSE(worker::steps::voiceover_segments(json::parse(R"({"vo_segments":[{"start":2,"end":1}]})")).ok());
  CHECK_FALSE(worker::steps::voiceover_segments(json::parse(R"({"voiceover_segments":"0-5"})")).ok());
}
