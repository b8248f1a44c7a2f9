// Signing for v0.5 workers, which predate the envelope: an HMAC over the values of the body's
// keys in key order joined by '|', where a dict value is written as Python's str() writes it.
#pragma once

#include <string>
#include <string_view>

#include "protocol/json.hpp"

namespace rayvault::protocol::legacy {

// Python's str()/repr() text of a JSON value as json.loads would have built it: dicts in
// document order ({'a': 1, 'b': [True, None]}), strings in repr quoting. Printability of
// non-ASCII follows Python for Latin-1, format, separator and private-use characters;
// unassigned code points are written raw.
std::string python_str(const ordered_json& value);

// The message the token signs: values of every key but auth_token, sorted by key, joined by '|';
// strings raw, everything else as python_str.
std::string signing_message(const ordered_json& body);

// Adds auth_token to body, signed with secret.
void sign(ordered_json& body, std::string_view secret);

// The caps probe body for a v0.5 worker (unsigned).
ordered_json caps_body(std::string_view run_id, std::string_view node_id);

// The job body for a v0.5 worker (unsigned): step_name lower-case, job_type, params = payload.
ordered_json job_body(std::string_view run_id, std::string_view job_id, std::string_view step,
                      const ordered_json& payload);

inline constexpr std::string_view kCompatModeHmac = "legacy_hmac_v05";
inline constexpr std::string_view kCompatModePlain = "legacy_plain_token";

}  // namespace rayvault::protocol::legacy
