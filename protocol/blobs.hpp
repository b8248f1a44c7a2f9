// Staged input files (protocol extension "blobs"): how a payload names a blob instead of a path,
// and which payload fields of each step name input files.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "protocol/json.hpp"
#include "util/error.hpp"

namespace rayvault::protocol {

// Step names of the blob requests' envelopes: GET /blobs/{sha256} and PUT /blobs/{sha256}, whose
// inputs_hash is the blob's digest.
inline constexpr std::string_view kBlobStat = "BLOB_STAT";
inline constexpr std::string_view kBlobPut = "BLOB_PUT";

// A payload field that names a blob: {"blob": "<sha256>", "name": "final.mp4"}. The worker gives
// the step a path to its copy of the blob under that file name.
struct BlobRef {
  std::string field;   // the top-level payload field
  std::string digest;  // 64 lowercase hex digits
  std::string name;    // the file name the step sees
};

json blob_ref_json(const std::string& digest, const std::string& name);

// True for a value shaped as a reference: an object with a "blob" member.
bool is_blob_ref(const json& value);

// The payload's top-level fields that are references, each checked: the digest is 64 lowercase
// hex digits, the name a plain file name (is_blob_file_name), no other members. Error
// (invalid_input) naming the field that is wrong.
Result<std::vector<BlobRef>> find_blob_refs(const json& payload);

// A file name a blob may take on any worker: 1 to 255 bytes of UTF-8, no path separator, no
// control or Windows-reserved character (<>:"|?*), not "." or "..", no trailing dot or space, not a
// Windows device name (CON, NUL, COM1...).
bool is_blob_file_name(std::string_view name);

// A local file's name made into one (reserved characters become '_'; an empty result "input").
std::string blob_file_name_for(std::string_view name);

// The payload fields of a step that name input files (a render_config only when it is a string).
const std::vector<std::string>& step_input_fields(std::string_view step);

}  // namespace rayvault::protocol
