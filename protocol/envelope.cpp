// Envelope signing and the contract's ordered verification.
#include "protocol/envelope.hpp"

#include <cmath>

#include "protocol/steps.hpp"
#include "util/crypto.hpp"
#include "util/strings.hpp"

namespace rayvault::protocol {
namespace {

using util::trim;

std::string field(const json& body, const char* name) { return trim(string_field(body, name)); }

}  // namespace

Envelope envelope_from_json(const json& body) {
  return Envelope{field(body, "run_id"),      field(body, "job_id"),    field(body, "step_name"),
                  field(body, "inputs_hash"), field(body, "timestamp"), field(body, "auth_token")};
}

void envelope_to_json(const Envelope& env, json& body) {
  body["run_id"] = env.run_id;
  body["job_id"] = env.job_id;
  body["step_name"] = env.step_name;
  body["inputs_hash"] = env.inputs_hash;
  body["timestamp"] = env.timestamp;
  body["auth_token"] = env.auth_token;
}

std::string signing_message(const Envelope& env) {
  // canonical_json of {run_id, job_id, step_name, inputs_hash, timestamp}, keys in its sorted order,
  // written straight (every signed request makes one).
  std::string out;
  out.reserve(160 + env.run_id.size() + env.job_id.size());
  out += "{\"inputs_hash\":";
  append_canonical_string(out, trim(env.inputs_hash));
  out += ",\"job_id\":";
  append_canonical_string(out, trim(env.job_id));
  out += ",\"run_id\":";
  append_canonical_string(out, trim(env.run_id));
  out += ",\"step_name\":";
  append_canonical_string(out, steps::normalize(env.step_name));
  out += ",\"timestamp\":";
  append_canonical_string(out, trim(env.timestamp));
  out += '}';
  return out;
}

std::string sign_envelope(const Envelope& env, std::string_view secret) {
  return util::hmac_sha256_hex(secret, signing_message(env));
}

Envelope make_signed_envelope(std::string run_id, std::string job_id, std::string step_name,
                              std::string inputs_hash, std::string_view secret, util::SystemTime now) {
  Envelope env{std::move(run_id), std::move(job_id), std::move(step_name), std::move(inputs_hash),
               util::format_utc(now), {}};
  env.auth_token = sign_envelope(env, secret);
  return env;
}

Result<std::size_t> verify_envelope(const Envelope& env, const VerifyPolicy& policy) {
  // 1. Missing fields, named in the contract's order.
  const std::pair<const char*, const std::string*> fields[] = {
      {"run_id", &env.run_id},           {"job_id", &env.job_id},
      {"step_name", &env.step_name},     {"inputs_hash", &env.inputs_hash},
      {"timestamp", &env.timestamp},     {"auth_token", &env.auth_token}};
  std::string missing;
  for (const auto& [name, value] : fields) {
    if (trim(*value).empty()) missing += (missing.empty() ? "" : ", ") + std::string(name);
  }
  if (!missing.empty()) return Error(ErrorKind::unauthorized, "Missing envelope fields: " + missing);

  // 2. The step must be this endpoint's.
  const std::string step = steps::normalize(env.step_name);
  if (policy.allowed_steps.count(step) == 0) {
    std::string supported;
    for (const auto& s : policy.allowed_steps) supported += (supported.empty() ? "" : ", ") + s;
    return Error(ErrorKind::unauthorized, "Unsupported step_name='" + step + "'. Supported: " + supported);
  }

  // 3. Timestamp readable and within the skew window.
  const std::string ts = trim(env.timestamp);
  const auto when = util::parse_iso8601(ts);
  if (!when) return Error(ErrorKind::unauthorized, "invalid timestamp: '" + ts + "'");
  const double skew = std::fabs(std::chrono::duration<double>(policy.now - *when).count());
  if (skew > policy.max_skew_seconds) {
    return Error(ErrorKind::unauthorized,
                 "timestamp outside allowed skew (" + std::to_string(static_cast<long long>(skew)) +
                     "s > " + std::to_string(policy.max_skew_seconds) + "s)");
  }

  // 4. A hash long enough to mean something.
  if (trim(env.inputs_hash).size() < kMinInputsHashLength)
    return Error(ErrorKind::unauthorized, "inputs_hash too short");

  // 5. The token, against every accepted secret; each comparison runs in constant time.
  const std::string message = signing_message(env);
  const std::string token = trim(env.auth_token);
  for (std::size_t i = 0; i < policy.secrets.size(); ++i) {
    if (policy.secrets[i].empty()) continue;
    if (util::hex_equal_constant_time(util::hmac_sha256_hex(policy.secrets[i], message), token)) return i;
  }
  return Error(ErrorKind::unauthorized, "auth_token invalid");
}

std::string normalize_hash(std::string_view hash) { return util::ascii_lower(util::trim(hash)); }

std::string payload_hmac(std::string_view secret, std::string_view timestamp, const json& payload) {
  std::string message(trim(timestamp));
  message += '\n';
  message += canonical_json(payload);
  return util::hmac_sha256_hex(secret, message);
}

}  // namespace rayvault::protocol
