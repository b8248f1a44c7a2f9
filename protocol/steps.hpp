// Step names of the wire contract: job steps, control steps and their legacy v0.5 spellings.
#pragma once

#include <set>
#include <string>
#include <string_view>

namespace rayvault::protocol::steps {

inline constexpr std::string_view kTtsRenderChunks = "TTS_RENDER_CHUNKS";
inline constexpr std::string_view kAudioPostcheck = "AUDIO_POSTCHECK";
inline constexpr std::string_view kFfmpegProbe = "FFMPEG_PROBE";
inline constexpr std::string_view kFrameSampling = "FRAME_SAMPLING";
inline constexpr std::string_view kOpenclawTask = "OPENCLAW_TASK";
inline constexpr std::string_view kPoseEstimate = "POSE_ESTIMATE";

inline constexpr std::string_view kRegisterCaps = "REGISTER_CAPS";
inline constexpr std::string_view kJobStatus = "JOB_STATUS";
inline constexpr std::string_view kJobLogs = "JOB_LOGS";
inline constexpr std::string_view kJobArtifacts = "JOB_ARTIFACTS";
// This project's extension: POST /job/{id}/cancel.
inline constexpr std::string_view kJobCancel = "JOB_CANCEL";
// This project's extension: POST /jobs/watch (many jobs followed with one long poll).
inline constexpr std::string_view kJobWatch = "JOB_WATCH";

// The steps POST /job accepts (sorted, as the contract's error message lists them).
const std::set<std::string>& job_steps();

// True for a job step (after normalize).
bool is_job_step(std::string_view name);

// Trims ASCII white space and upper-cases: the form a step name is compared and signed in.
std::string normalize(std::string_view name);

// The v0.5 job_type for a step: FFMPEG_PROBE -> ffprobe_analyze, others their lower-case name.
std::string legacy_job_type(std::string_view step);

}  // namespace rayvault::protocol::steps
