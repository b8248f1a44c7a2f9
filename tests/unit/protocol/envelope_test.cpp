// Envelope signing matches the contract's vector, and verification runs its checks in order
// with its exact messages.
#include <doctest/doctest.h>

#include "protocol/envelope.hpp"
#include "protocol/steps.hpp"
#include "util/strings.hpp"

using namespace rayvault;
using namespace rayvault::protocol;

namespace {
const std::string kHash = "048215575136cd8f464d5f6662ad02080b945302fe64affca09f1f77b783568c";

Envelope vector_envelope() {
  Envelope e{"cluster_smoke_001", "ffprobe_001", "FFMPEG_PROBE", kHash, "2026-02-19T12:00:00Z", ""};
  e.auth_token = sign_envelope(e, "s3cret");
  return e;
}

VerifyPolicy policy_at(const std::string& now, std::vector<std::string> secrets = {"s3cret"}) {
  return VerifyPolicy{steps::job_steps(), std::move(secrets), *util::parse_iso8601(now), kMaxSkewSeconds};
}

std::string failure(const Envelope& e, const VerifyPolicy& p) {
  auto r = verify_envelope(e, p);
  if (r.ok()) return "ok";
  CHECK(r.error().kind == ErrorKind::unauthorized);
  return r.error().message;
}
}  // namespace

TEST_CASE("protocol::sign_envelope") {
  const auto e = vector_envelope();
  CHECK(signing_message(e) ==
        "{\"inputs_hash\":\"" + kHash +
            "\",\"job_id\":\"ffprobe_001\",\"run_id\":\"cluster_smoke_001\",\"step_name\":\"FFMPEG_PROBE\","
            "\"timestamp\":\"2026-02-19T12:00:00Z\"}");
  CHECK(e.auth_token == "2a251bebb80884830364162ec14bcec469fa7d3adb0990627dfd0b7db0f71b91");
  SUBCASE("fields are trimmed and the step upper-cased before signing") {
    Envelope loose = e;
    loose.run_id = "  cluster_smoke_001 ";
    loose.step_name = " ffmpeg_probe";
    CHECK(sign_envelope(loose, "s3cret") == e.auth_token);
  }
  SUBCASE("the message is canonical_json of the five fields, whatever they hold") {
    Envelope odd = e;
    odd.run_id = "r\u00e9sum\u00e9 \"quoted\" \\ back";
    odd.job_id = std::string("tab\there\x01ctl\x7f") + "\xf0\x9f\x8e\xac";
    odd.inputs_hash = "\n";
    const json as_object = {{"run_id", util::trim(odd.run_id)},
                            {"job_id", util::trim(odd.job_id)},
                            {"step_name", steps::normalize(odd.step_name)},
                            {"inputs_hash", util::trim(odd.inputs_hash)},
                            {"timestamp", util::trim(odd.timestamp)}};
    CHECK(signing_message(odd) == canonical_json(as_object));
  }
}

TEST_CASE("protocol::verify_envelope") {
  const auto p = policy_at("2026-02-19T12:01:00Z");
  SUBCASE("the vector verifies; upper-case tokens too") {
    CHECK(failure(vector_envelope(), p) == "ok");
    auto upper = vector_envelope();
    for (auto& c : upper.auth_token) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    CHECK(failure(upper, p) == "ok");
  }
  SUBCASE("1. missing or blank fields, named in the contract's order") {
    auto e = vector_envelope();
    e.job_id = "";
    e.run_id = "   ";
    CHECK(failure(e, p) == "Missing envelope fields: run_id, job_id");
    CHECK(failure(Envelope{}, p) ==
          "Missing envelope fields: run_id, job_id, step_name, inputs_hash, timestamp, auth_token");
  }
  SUBCASE("2. a step of another endpoint, even with a valid token") {
    auto e = vector_envelope();
    e.step_name = "JOB_STATUS";
    e.auth_token = sign_envelope(e, "s3cret");
    CHECK(failure(e, p) ==
          "Unsupported step_name='JOB_STATUS'. Supported: AUDIO_POSTCHECK, FFMPEG_PROBE, FRAME_SAMPLING, "
          "OPENCLAW_TASK, POSE_ESTIMATE, TTS_RENDER_CHUNKS");
  }
  SUBCASE("3. unreadable and skewed timestamps, checked before the token") {
    auto e = vector_envelope();
    e.timestamp = "yesterday";
    CHECK(failure(e, p) == "invalid timestamp: 'yesterday'");
    CHECK(failure(vector_envelope(), policy_at("2026-02-19T12:05:01Z")) ==
          "timestamp outside allowed skew (301s > 300s)");
    CHECK(failure(vector_envelope(), policy_at("2026-02-19T11:54:00Z")) ==
          "timestamp outside allowed skew (360s > 300s)");
    CHECK(failure(vector_envelope(), policy_at("2026-02-19T12:05:00Z")) == "ok");
  }
  SUBCASE("4. short inputs_hash") {
    auto e = vector_envelope();
    e.inputs_hash = "abc123";
    e.auth_token = sign_envelope(e, "s3cret");
    CHECK(failure(e, p) == "inputs_hash too short");
  }
  SUBCASE("5. wrong secret or tampered field") {
    auto e = vector_envelope();
    e.auth_token = sign_envelope(e, "other");
    CHECK(failure(e, p) == "auth_token invalid");
    auto t = vector_envelope();
    t.job_id = "ffprobe_002";
    CHECK(failure(t, p) == "auth_token invalid");
  }
  SUBCASE("the previous secret is accepted during rotation, and reported as such") {
    auto r = verify_envelope(vector_envelope(), policy_at("2026-02-19T12:01:00Z", {"new-secret", "s3cret"}));
    REQUIRE(r.ok());
    CHECK(*r == 1);
  }
  SUBCASE("timestamps with offsets and fractions are read") {
    auto e = vector_envelope();
    e.timestamp = "2026-02-19T13:00:00.123456+01:00";
    e.auth_token = sign_envelope(e, "s3cret");
    CHECK(failure(e, p) == "ok");
  }
}

TEST_CASE("protocol::payload_hmac") {
  // Python: hmac.new(b"s3cret", (ts + "\n" + canonical(payload)).encode(), sha256).hexdigest()
  auto payload = parse_json(R"({"media_path":"/tmp/a.mp4"})");
  REQUIRE(payload.ok());
  CHECK(payload_hmac("s3cret", "2026-02-19T12:00:00Z", *payload) ==
        "fafefaffcc17bcaf16087661a74d1a703a7239c6a520ec6906f03e518ee6481c");
}
