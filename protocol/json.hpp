// JSON text in and out exactly as the wire contract (and the Python reference) writes it.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

#include "util/error.hpp"

namespace rayvault::protocol {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

// Binary subtype marking an integer too large for 64 bits; its bytes are the decimal digits.
inline constexpr std::uint8_t kBigIntSubtype = 0x42;

// Limits that keep a hostile document from exhausting the stack or memory.
inline constexpr std::size_t kMaxJsonDepth = 64;

// Parses JSON text. Integers beyond 64 bits are kept exactly (as kBigIntSubtype binaries) so
// that hashing matches Python's arbitrary-precision ints. Error (invalid_input) on bad text,
// nesting deeper than kMaxJsonDepth, or numbers out of double range.
Result<json> parse_json(std::string_view text);
Result<ordered_json> parse_json_ordered(std::string_view text);

// Canonical JSON: keys sorted by code point, "," and ":" separators, raw UTF-8, Python's escapes
// and float text. Deterministic; used for inputs_hash and signing.
std::string canonical_json(const json& value);
// Appends one string as canonical_json writes it (quoted, escaped).
void append_canonical_string(std::string& out, const std::string& text);

// Python's json.dumps(value, sort_keys=True) in its default form: ", " and ": " separators,
// non-ASCII escaped as \uXXXX. Used where the contract hashes text a Python node wrote that way
// (the TTS chunk cache key).
std::string python_json_dumps(const json& value);

// JSON text for answers, receipts, logs and the stores. Text from tools may hold bytes that are
// not UTF-8; they are written as U+FFFD instead of throwing. indent < 0: one line.
std::string dump_json(const json& value, int indent = -1);

// Python's repr(float): the shortest text that reads back to the same double, always with a '.'
// or an exponent ("1.0", "1e-05", "1e+16"), "nan"/"inf" spelled as json.dumps writes them.
std::string python_float_repr(double v);

// The text at j[key]; "" when j is not an object, or key is absent or not a string. For reading
// peers' documents, whose fields may be missing or of any type.
std::string string_field(const json& j, std::string_view key);

// Lowercase hex SHA-256 of the canonical JSON of a payload: the wire's inputs_hash.
std::string inputs_hash(const json& payload);

}  // namespace rayvault::protocol
