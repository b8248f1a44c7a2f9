// Staging a job's input files to the worker that runs it (protocol extension "blobs").
//
// Before a job is placed, the files its payload names (the step's input fields, and any field
// named with --input) are found on this machine and hashed. A worker that advertises "blobs" is
// sent the payload with each such field replaced by {"blob": sha256, "name": file name}, after
// every blob it lacks has been uploaded (resuming an interrupted upload); its inputs_hash then
// follows the files' bytes, not their paths. Other workers (v0.5 and older nodes), --no-stage and
// the local fallback get the payload with its paths as given.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "controller/worker_client.hpp"
#include "protocol/json.hpp"
#include "util/error.hpp"

namespace rayvault::controller {

struct StagedFile {
  std::string field;           // the payload field
  std::filesystem::path path;  // the file on this machine
  std::string digest;          // SHA-256 of its bytes
  std::uint64_t size = 0;
  std::string name;            // the file name the worker gives the step
};

struct StagedInputs {
  std::vector<StagedFile> files;
  protocol::json payload;   // the payload with blob references in place of the paths
  std::string inputs_hash;  // the hash of that payload (or the hash the caller gave)
};

// The job's input files: for each of the step's input fields (protocol::step_input_fields) that
// holds a non-empty path, and each field in `extra` (which must hold one), the file checked and
// hashed. None: an empty result. Error (invalid_input, exit 2) before anything is sent: a path
// that does not exist here, a folder or a special file where a file is expected, a file that
// cannot be read. `given_hash`: the inputs_hash the caller chose (kept), or empty.
Result<StagedInputs> find_job_inputs(std::string_view step, const protocol::json& payload,
                                     const std::vector<std::string>& extra, const std::string& given_hash);

struct UploadReport {
  std::uint64_t bytes_sent = 0;  // body bytes sent to the worker
  int uploaded = 0;              // blobs sent (whole or the rest of one)
  int held = 0;                  // blobs the worker already had
};

// Uploads each file the worker lacks (asking first, resuming a partial upload), then checks it
// is held. A file changed since it was hashed is error (invalid_input) naming it; a worker with no
// room is error (storage_full); a worker that cannot be reached, error (unavailable).
Result<UploadReport> upload_inputs(WorkerClient& client, const std::vector<StagedFile>& files);

}  // namespace rayvault::controller
