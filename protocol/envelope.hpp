// The signed request envelope: five fields and an HMAC-SHA256 token over their canonical JSON.
//
// Every authenticated request names the run, the job, the step, the hash of the job's inputs and
// the time it was made; the token proves the sender holds the cluster secret. The worker checks
// the fields in a fixed order and answers 401 with the first failure's exact message, as the
// deployed Python nodes do. A token signs one step, and each endpoint accepts only its own step,
// so a token cannot be replayed against another endpoint; the 300 s skew window bounds replay in
// time, and the idempotency key makes a replayed job submission harmless.
#pragma once

#include <cstddef>
#include <set>
#include <string>
#include <vector>

#include "protocol/json.hpp"
#include "util/error.hpp"
#include "util/time.hpp"

namespace rayvault::protocol {

struct Envelope {
  std::string run_id;
  std::string job_id;
  std::string step_name;
  std::string inputs_hash;
  std::string timestamp;
  std::string auth_token;
};

inline constexpr int kMaxSkewSeconds = 300;
inline constexpr std::size_t kMinInputsHashLength = 16;

// Reads the envelope fields of a JSON object, trimmed as the Python worker does (a padded run_id
// finds its job); a field that is absent or not a string is empty.
Envelope envelope_from_json(const json& body);

// Writes the six fields into a JSON object (used for request bodies).
void envelope_to_json(const Envelope& env, json& body);

// The signed message: canonical JSON of the five fields, trimmed, step_name upper-cased.
std::string signing_message(const Envelope& env);

// The lowercase hex token for env under secret.
std::string sign_envelope(const Envelope& env, std::string_view secret);

// Fills timestamp (from now) and auth_token.
Envelope make_signed_envelope(std::string run_id, std::string job_id, std::string step_name,
                              std::string inputs_hash, std::string_view secret, util::SystemTime now);

struct VerifyPolicy {
  std::set<std::string> allowed_steps;  // upper-case names this endpoint accepts
  std::vector<std::string> secrets;     // current first, then previous
  util::SystemTime now;
  int max_skew_seconds = kMaxSkewSeconds;
};

// Runs the contract's checks in its order. On success, the index in policy.secrets of the secret
// that signed the token. On failure, an unauthorized Error whose message is the contract's.
Result<std::size_t> verify_envelope(const Envelope& env, const VerifyPolicy& policy);

// The form an inputs_hash is stored and compared in: trimmed and lower-cased, as it is signed.
std::string normalize_hash(std::string_view hash);

// payload_hmac: hex HMAC-SHA256(secret, timestamp + "\n" + canonical JSON of payload).
std::string payload_hmac(std::string_view secret, std::string_view timestamp, const json& payload);

}  // namespace rayvault::protocol
