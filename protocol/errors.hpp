// Wire error codes, and the one place where an ErrorKind becomes an HTTP status or exit code.
#pragma once

#include <string_view>

#include "util/error.hpp"

namespace rayvault::protocol {

namespace codes {
inline constexpr std::string_view kInvalidInput = "INVALID_INPUT";
inline constexpr std::string_view kFfmpegMissing = "FFMPEG_MISSING";
inline constexpr std::string_view kCommandFailed = "COMMAND_FAILED";
inline constexpr std::string_view kInvalidOutputDir = "INVALID_OUTPUT_DIR";
inline constexpr std::string_view kFrameSamplingEmpty = "FRAME_SAMPLING_EMPTY";
inline constexpr std::string_view kOpenclawMissing = "OPENCLAW_MISSING";
inline constexpr std::string_view kUiSessionRequired = "UI_SESSION_REQUIRED";
inline constexpr std::string_view kStepUnsupported = "STEP_UNSUPPORTED";
inline constexpr std::string_view kUnhandledException = "UNHANDLED_EXCEPTION";
// Extensions of this project.
inline constexpr std::string_view kWorkerRestarted = "WORKER_RESTARTED";
inline constexpr std::string_view kTimeout = "TIMEOUT";
inline constexpr std::string_view kStorageFailed = "STORAGE_FAILED";  // the worker could not write (disk full)
inline constexpr std::string_view kGpuRequired = "GPU_REQUIRED";
// A job names a blob (a staged input file) the worker does not hold (extension "blobs").
inline constexpr std::string_view kBlobMissing = "BLOB_MISSING";
inline constexpr std::string_view kPoseRunnerMissing = "POSE_RUNNER_MISSING";
// TTS: the provider cannot run on this node (not installed, not configured, no key: a node fault);
// it ran and failed (a tool's error, an HTTP error after retries); the service kept answering 429.
inline constexpr std::string_view kTtsProviderUnavailable = "TTS_PROVIDER_UNAVAILABLE";
inline constexpr std::string_view kTtsProviderFailed = "TTS_PROVIDER_FAILED";
inline constexpr std::string_view kTtsRateLimited = "TTS_RATE_LIMITED";
// Cancelled on request (POST /job/{id}/cancel): the job's status is `cancelled`.
inline constexpr std::string_view kCancelled = "CANCELLED";
// The Slurm launch mode. Node faults (the controller tries elsewhere): Slurm's commands are not
// installed, slurmctld does not answer, it refused the submission (a partition or option of this
// node's configuration), it lost the job, the job's node failed, the job was preempted or cancelled
// by someone else. The job's own: it failed, hit its time limit or ran out of memory.
inline constexpr std::string_view kSlurmMissing = "SLURM_MISSING";
inline constexpr std::string_view kSlurmUnavailable = "SLURM_UNAVAILABLE";
inline constexpr std::string_view kSlurmSubmitFailed = "SLURM_SUBMIT_FAILED";
inline constexpr std::string_view kSlurmJobLost = "SLURM_JOB_LOST";
inline constexpr std::string_view kSlurmNodeFail = "SLURM_NODE_FAIL";
inline constexpr std::string_view kSlurmPreempted = "SLURM_PREEMPTED";
inline constexpr std::string_view kSlurmCancelled = "SLURM_CANCELLED";
inline constexpr std::string_view kSlurmJobFailed = "SLURM_JOB_FAILED";
inline constexpr std::string_view kSlurmTimeout = "SLURM_TIMEOUT";
inline constexpr std::string_view kSlurmOutOfMemory = "SLURM_OUT_OF_MEMORY";
}  // namespace codes

// HTTP status for an error answered by the worker.
int http_status(ErrorKind kind);

// Process exit code for an error ending a CLI command: 2 for input and job failures (as the
// contract's submit does), 3 for configuration, 4 for I/O, 5 for unreachable peers, 1 otherwise.
int exit_code(ErrorKind kind);

// True when a failed job's error_code says this node cannot run the job (a path it does not have,
// a missing tool, no desktop session or GPU, a stopped worker), so the controller runs the job
// elsewhere and a worker runs it again when it is submitted again. A step's verdict on the
// content (an empty error_code) is never a node fault.
bool is_node_fault(std::string_view error_code);

}  // namespace rayvault::protocol
