// Canonical JSON must be byte-identical to Python's json.dumps(sort_keys=True,
// separators=(",", ":"), ensure_ascii=False); expected texts were produced by Python 3.11.
#include <doctest/doctest.h>

#include "protocol/job_record.hpp"
#include "protocol/json.hpp"

using namespace rayvault::protocol;

namespace {
std::string canon(std::string_view text) {
  auto parsed = parse_json(text);
  REQUIRE_MESSAGE(parsed.ok(), (parsed.ok() ? "" : parsed.error().message));
  return canonical_json(*parsed);
}
}  // namespace

TEST_CASE("protocol::canonical_json") {
  SUBCASE("keys sorted at every level, no spaces, empty containers") {
    CHECK(canon(R"({"b":1,"a":[true,false,null],"c":{"z":{},"y":[]}})") ==
          R"({"a":[true,false,null],"b":1,"c":{"y":[],"z":{}}})");
  }
  SUBCASE("non-ASCII written raw, control characters escaped in lowercase, keys by code point") {
    CHECK(canon(R"({"é":"ü","a":"日本","Z":"\u0001\u001f\n\r\t\b\f\"\\/","\u007f":"x"})") ==
          "{\"Z\":\"\\u0001\\u001f\\n\\r\\t\\b\\f\\\"\\\\/\",\"a\":\"\xe6\x97\xa5\xe6\x9c\xac\",\"\x7f\":\"x\","
          "\"\xc3\xa9\":\"\xc3\xbc\"}");
  }
  SUBCASE("surrogate pairs become raw UTF-8; U+2028 is not escaped") {
    CHECK(canon(R"({"😀":"\ud83d\ude00","b":"\u2028"})") ==
          "{\"b\":\"\xe2\x80\xa8\",\"\xf0\x9f\x98\x80\":\"\xf0\x9f\x98\x80\"}");
  }
  SUBCASE("floats as Python's repr, integers of any size exact") {
    CHECK(canon("[1.0,0.5,1e-05,1e16,1e15,0.0001,-0.0,123456789012345678901234567890,-98765432109876543210,"
                "1.5e300,3.141592653589793,100.0,2.5e-7,0.1,1E2]") ==
          "[1.0,0.5,1e-05,1e+16,1000000000000000.0,0.0001,-0.0,123456789012345678901234567890,"
          "-98765432109876543210,1.5e+300,3.141592653589793,100.0,2.5e-07,0.1,100.0]");
    CHECK(canon(R"({"k":18446744073709551615,"m":18446744073709551616,"n":-9223372036854775808})") ==
          R"({"k":18446744073709551615,"m":18446744073709551616,"n":-9223372036854775808})");
  }
  SUBCASE("deep nesting keeps order inside arrays") {
    CHECK(canon(R"({"a":[{"d":1,"c":[3,2,1]},[{}]]})") == R"({"a":[{"c":[3,2,1],"d":1},[{}]]})");
  }
}

TEST_CASE("protocol::python_float_repr") {
  // The switch to exponent form happens where Python's repr switches.
  CHECK(python_float_repr(1e-4) == "0.0001");
  CHECK(python_float_repr(1e-5) == "1e-05");
  CHECK(python_float_repr(1e16) == "1e+16");
  CHECK(python_float_repr(9999999999999998.0) == "9999999999999998.0");
  CHECK(python_float_repr(0.1 + 0.2) == "0.30000000000000004");
  CHECK(python_float_repr(-1.5e-300) == "-1.5e-300");
  CHECK(python_float_repr(5e-324) == "5e-324");
  CHECK(python_float_repr(1.7976931348623157e308) == "1.7976931348623157e+308");
  CHECK(python_float_repr(0.0) == "0.0");
}

TEST_CASE("protocol::parse_json") {
  SUBCASE("malformed text is an invalid_input error, never an exception") {
    for (const char* bad : {"", "{", "{\"a\":}", "[1,]", "nul", "{\"a\":1}x", "\"\\ud800\"", "1e400", "\xff"}) {
      auto r = parse_json(bad);
      CHECK_FALSE(r.ok());
      if (!r.ok()) CHECK(r.error().kind == rayvault::ErrorKind::invalid_input);
    }
  }
  SUBCASE("nesting is bounded") {
    std::string deep(kMaxJsonDepth + 1, '[');
    deep += std::string(kMaxJsonDepth + 1, ']');
    CHECK_FALSE(parse_json(deep).ok());
    std::string ok(kMaxJsonDepth, '[');
    ok += std::string(kMaxJsonDepth, ']');
    CHECK(parse_json(ok).ok());
  }
  SUBCASE("integers beyond a double's range are exact, up to Python's 4300 digits") {
    const std::string big = "1" + std::string(399, '7');
    const std::string text = R"({"a":")" + big + R"(","b":[)" + big + ",-" + big + R"(,"x"],"c":{"d":)" + big + "}}";
    auto r = parse_json(text);
    REQUIRE(r.ok());
    CHECK((*r)["a"] == big);  // a string of digits stays a string
    CHECK((*r)["b"][2] == "x");
    CHECK(canonical_json(*r) == text);
    CHECK(parse_json(std::string(4300, '9')).ok());
    auto over = parse_json(std::string(4301, '9'));
    REQUIRE_FALSE(over.ok());
    CHECK(over.error().message == "integer of more than 4300 digits (Python's limit)");
    CHECK_FALSE(parse_json("1" + std::string(400, '0') + ".5").ok());  // a float that large stays refused
  }
}

TEST_CASE("protocol::inputs_hash") {
  // The contract's vector.
  auto payload = parse_json(R"({"media_path":"/tmp/a.mp4"})");
  REQUIRE(payload.ok());
  CHECK(inputs_hash(*payload) == "048215575136cd8f464d5f6662ad02080b945302fe64affca09f1f77b783568c");
  // Python's hashes of the corner documents above.
  auto floats = parse_json("[1.0,0.5,1e-05,1e16,1e15,0.0001,-0.0,123456789012345678901234567890,"
                           "-98765432109876543210,1.5e300,3.141592653589793,100.0,2.5e-7,0.1,1E2]");
  REQUIRE(floats.ok());
  CHECK(inputs_hash(*floats) == "3a454db2add2adc9fac7970faf9afa833d2719f0c243d497af05ed61247d897a");
}

TEST_CASE("protocol::record_json writes what dump_json(to_json()) writes, byte for byte") {
  using rayvault::protocol::JobRecord;
  JobRecord r;
  CHECK(rayvault::protocol::record_json(r) == rayvault::protocol::dump_json(rayvault::protocol::to_json(r)));
  r.run_id = "shot 01: take \"2\"";
  r.job_id = "caf\xc3\xa9 \xe2\x9c\x93";
  r.step_name = "FFMPEG_PROBE";
  r.inputs_hash = std::string(64, 'a');
  r.status = "failed";
  r.progress = 0.1;
  r.message = "tool said:\n\tline\x01 and \\ a bad byte \xff\xfe end";
  r.created_at = "2026-11-25T08:00:00Z";
  r.started_at = "2026-11-25T08:00:01Z";
  r.exit_code = -3;
  r.metrics = {{"media_path", "C:\\media\\a.mp4"}, {"frames", 12}, {"ratio", 1.0 / 3}, {"nested", {{"a", nullptr}}}};
  r.artifacts = json::array({{{"name", "x.jpg"}, {"size_bytes", 10}}});
  r.error_code = "COMMAND_FAILED";
  r.error_message = "\x7f del";
  r.idempotent = true;
  r.cached_job_id = "prior";
  r.worker_id = "w1";
  r.log_path = "/var/lib/rv/jobs/x/worker.log";
  for (double p : {0.0, 0.1, 1.0, 0.33333333333333331}) {
    r.progress = p;
    CHECK(rayvault::protocol::record_json(r) == rayvault::protocol::dump_json(rayvault::protocol::to_json(r)));
  }
}
