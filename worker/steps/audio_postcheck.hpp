// AUDIO_POSTCHECK {video_path, render_config, expected_duration_sec, thresholds}: broadcast QA of
// a file's audio. One ffmpeg pass measures integrated loudness, loudness range and true peak
// (ebur128), silent gaps (silencedetect) and clipping (astats); ffprobe gives the durations.
// The report audio_postcheck.json gives every gate's value, threshold and verdict; a failed gate
// fails the job (a verdict, not a fault: error_code stays "").
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "worker/step.hpp"

namespace rayvault::worker::steps {

class AudioPostcheck final : public Step {
 public:
  std::string_view name() const override;
  Result<StepOutput> run(const StepContext& ctx) const override;
};

struct Interval {
  double start = 0, end = 0;
};

// What the one ffmpeg pass printed, read from its messages.
struct AudioMeasurements {
  std::optional<double> integrated_lufs, loudness_range_lu, true_peak_dbtp;
  std::vector<Interval> silences;  // an open silence at the end has end < 0 until closed
  double sample_peak_dbfs = -1e9;  // the highest channel's sample peak
  long long clipping_events = 0;   // runs at full scale (peak count of channels that reach it)
};

// Reads ebur128's summary, silencedetect's lines and astats' per-channel lines; a channel whose
// sample peak reaches clip_level_dbfs adds its peak count to the clipping events.
AudioMeasurements parse_audio_measurements(const std::vector<std::string>& lines, double clip_level_dbfs = -0.1);

// Voice-over segments of a render_config (an object): `voiceover_segments` / `vo_segments`
// [{start|start_sec, end|end_sec}], or `segments` whose type/kind/role is voiceover, voice_over,
// vo or narration. Error (INVALID_INPUT) for a segment without numbers or with end <= start.
Result<std::vector<Interval>> voiceover_segments(const protocol::json& render_config);

}  // namespace rayvault::worker::steps
