// ErrorKind -> HTTP status / exit code, and which job failures are a node's fault.
#include "protocol/errors.hpp"

namespace rayvault::protocol {

int http_status(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::invalid_input: return 400;
    case ErrorKind::unauthorized: return 401;
    case ErrorKind::forbidden: return 403;
    case ErrorKind::conflict: return 409;
    case ErrorKind::not_found: return 404;
    case ErrorKind::too_large: return 413;
    case ErrorKind::range: return 416;
    case ErrorKind::unavailable: return 503;
    case ErrorKind::storage_full: return 507;
    case ErrorKind::config:
    case ErrorKind::io:
    case ErrorKind::internal: return 500;
  }
  return 500;
}

int exit_code(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::invalid_input:
    case ErrorKind::unauthorized:
    case ErrorKind::forbidden:
    case ErrorKind::conflict:
    case ErrorKind::not_found:
    case ErrorKind::too_large:
    case ErrorKind::range: return 2;
    case ErrorKind::config: return 3;
    case ErrorKind::io:
    case ErrorKind::storage_full: return 4;
    case ErrorKind::unavailable: return 5;
    case ErrorKind::internal: return 1;
  }
  return 1;
}

bool is_node_fault(std::string_view code) {
  return code == codes::kWorkerRestarted || code == codes::kStorageFailed || code == codes::kInvalidInput || code == codes::kFfmpegMissing ||
         code == codes::kOpenclawMissing || code == codes::kUiSessionRequired || code == codes::kStepUnsupported ||
         code == codes::kGpuRequired || code == codes::kBlobMissing || code == codes::kPoseRunnerMissing || code == codes::kTtsProviderUnavailable ||
         code == codes::kUnhandledException || code == codes::kSlurmMissing || code == codes::kSlurmUnavailable ||
         code == codes::kSlurmSubmitFailed || code == codes::kSlurmJobLost || code == codes::kSlurmNodeFail ||
         code == codes::kSlurmPreempted || code == codes::kSlurmCancelled;
}

}  // namespace rayvault::protocol
