// v0.5 signing: the contract's vector, and Python's str() of dicts (checked against Python 3.11).
#include <doctest/doctest.h>

#include "protocol/legacy.hpp"
#include "protocol/steps.hpp"

using namespace rayvault::protocol;

TEST_CASE("protocol::legacy::signing_message") {
  auto body = legacy::caps_body("cluster_caps_probe", "windows-worker-1");
  CHECK(legacy::signing_message(body) == "rayvault|caps-windows-worker-1|caps|cluster_caps_probe|register_caps");
  legacy::sign(body, "s3cret");
  CHECK(body["auth_token"] == "94b7ab5f11fff79e6f1e672be94ac459a57c2a49bc0c2a7dc252648ca9e6a4ab");
  SUBCASE("auth_token itself is not signed") {
    CHECK(legacy::signing_message(body) == "rayvault|caps-windows-worker-1|caps|cluster_caps_probe|register_caps");
  }
}

TEST_CASE("protocol::legacy::python_str") {
  SUBCASE("dicts keep document order, Python literals and quoting") {
    auto v = parse_json_ordered(
        R"({"media_path":"/tmp/a.mp4","n":1,"f":1.5,"b":true,"z":null,"l":[1,"x"],"d":{"q":"it's"},)"
        R"("u":"é\u00a0\u007f\u2028😀\u0000"})");
    REQUIRE(v.ok());
    CHECK(legacy::python_str(*v) ==
          "{'media_path': '/tmp/a.mp4', 'n': 1, 'f': 1.5, 'b': True, 'z': None, 'l': [1, 'x'], "
          "'d': {'q': \"it's\"}, 'u': '\xc3\xa9\\xa0\\x7f\\u2028\xf0\x9f\x98\x80\\x00'}");
  }
  SUBCASE("a job body signs its params as str(dict)") {
    auto payload = parse_json_ordered(R"({"media_path":"/tmp/a.mp4"})");
    REQUIRE(payload.ok());
    auto body = legacy::job_body("run1", "job1", "FFMPEG_PROBE", *payload);
    CHECK(body["step_name"] == "ffmpeg_probe");
    CHECK(body["job_type"] == "ffprobe_analyze");
    CHECK(legacy::signing_message(body) == "job1|ffprobe_analyze|{'media_path': '/tmp/a.mp4'}|run1|ffmpeg_probe");
  }
  SUBCASE("job types") {
    CHECK(steps::legacy_job_type("FRAME_SAMPLING") == "frame_sampling");
    CHECK(steps::legacy_job_type(" ffmpeg_probe ") == "ffprobe_analyze");
  }
}
