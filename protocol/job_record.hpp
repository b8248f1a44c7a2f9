// The job RECORD the worker answers with, and the artifact entries inside it.
#pragma once

#include <optional>
#include <string>

#include "protocol/json.hpp"

namespace rayvault::protocol {

namespace status {
inline constexpr std::string_view kQueued = "queued";
inline constexpr std::string_view kRunning = "running";
inline constexpr std::string_view kSucceeded = "succeeded";
inline constexpr std::string_view kFailed = "failed";
inline constexpr std::string_view kCancelled = "cancelled";
}  // namespace status

// True for succeeded, failed, cancelled, and the older workers' completed and error.
bool is_terminal_status(std::string_view s);

struct JobRecord {
  std::string run_id, job_id, step_name, inputs_hash;
  std::string status{status::kQueued};
  double progress = 0.0;
  std::string message;
  std::string created_at;
  std::optional<std::string> started_at, finished_at;
  std::optional<int> exit_code;
  json metrics = json::object();
  json artifacts = json::array();  // [{path, sha256, size_bytes, name}]
  std::string error_code, error_message;
  bool idempotent = false;
  std::string cached_job_id;
  std::string worker_id, log_path, receipt_path;
};

// The wire form: every RECORD field; unset text is "" and exit_code is 0 until the job ends.
json to_json(const JobRecord& r);

// dump_json(to_json(r)), byte for byte, written straight into text (the status poll's hot path:
// no JSON object is built for the record's own fields).
std::string record_json(const JobRecord& r);

// Reads a RECORD from a worker's answer, tolerating absent fields (older workers); "" and null
// timestamps read as unset.
JobRecord job_record_from_json(const json& j);

}  // namespace rayvault::protocol
