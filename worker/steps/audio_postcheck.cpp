// AUDIO_POSTCHECK: measure once, then judge each gate against its threshold.
#include "worker/steps/audio_postcheck.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <mutex>

#include "protocol/errors.hpp"
#include "protocol/steps.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"
#include "worker/steps/ffmpeg_probe.hpp"

namespace rayvault::worker::steps {
namespace {

using protocol::codes::kInvalidInput;

Error invalid(std::string message) { return Error(ErrorKind::invalid_input, std::move(message), std::string(kInvalidInput)); }

// The gates' thresholds, the contract's by default; payload.thresholds may set any of them.
struct Thresholds {
  std::map<std::string, double> v = {
      {"loudness_min_lufs", -15.0},    {"loudness_max_lufs", -13.0},  {"true_peak_max_dbtp", -1.0},
      {"true_peak_warn_dbtp", -1.3},   {"duration_tolerance_sec", 0.2}, {"silence_gap_sec", 0.3},
      {"silence_threshold_db", -50.0}, {"clipping_warn_events", 1.0},  {"clipping_fail_events", 50.0},
      {"clipping_level_dbfs", -0.1},
  };
  std::optional<double> loudness_range_max_lu;  // no gate unless set
  double operator[](const char* key) const { return v.at(key); }
};

Result<Thresholds> read_thresholds(const json& payload) {
  Thresholds t;
  const auto it = payload.find("thresholds");
  if (it == payload.end() || it->is_null()) return t;
  if (!it->is_object()) return invalid("payload.thresholds must be an object");
  for (const auto& [key, value] : it->items()) {
    std::optional<double> number;
    if (value.is_number()) number = value.get<double>();
    else if (value.is_string()) number = util::parse_number_text(value.get_ref<const std::string&>());
    if (!number || !std::isfinite(*number)) return invalid("payload.thresholds." + key + " must be a number");
    if (key == "loudness_range_max_lu") {
      t.loudness_range_max_lu = *number;
    } else if (t.v.count(key)) {
      t.v[key] = *number;
    } else {
      std::string known = "loudness_range_max_lu";
      for (const auto& [k, _] : t.v) known += ", " + k;
      return invalid("payload.thresholds." + key + " is not a threshold of this step (known: " + known + ")");
    }
  }
  if (t["loudness_min_lufs"] > t["loudness_max_lufs"]) return invalid("payload.thresholds: loudness_min_lufs > loudness_max_lufs");
  if (t["silence_gap_sec"] <= 0 || t["silence_gap_sec"] > 3600) return invalid("payload.thresholds.silence_gap_sec must be in (0, 3600]");
  if (t["silence_threshold_db"] >= 0 || t["silence_threshold_db"] < -200)
    return invalid("payload.thresholds.silence_threshold_db must be a level in dB below 0");
  return t;
}

// The number after `label` in line, when line holds it.
std::optional<double> number_after(const std::string& line, std::string_view label) {
  const auto pos = line.find(label);
  if (pos == std::string::npos) return std::nullopt;
  const char* start = line.c_str() + pos + label.size();
  char* end = nullptr;
  const double v = std::strtod(start, &end);
  if (end == start) return std::nullopt;
  return v;
}

std::optional<double> number_field(const json& j, std::initializer_list<const char*> keys) {
  for (const char* k : keys) {
    const auto it = j.find(k);
    if (it == j.end()) continue;
    if (it->is_number()) return it->get<double>();
    if (it->is_string()) return util::parse_number_text(it->get_ref<const std::string&>());
  }
  return std::nullopt;
}

double round3(double v) { return std::round(v * 1000.0) / 1000.0; }

struct Durations {
  double audio = -1, video = -1, container = -1;
};

// ffprobe: the first audio stream's duration, the first video stream's, and the container's.
Result<Durations> probe_durations(const StepContext& ctx, const std::string& media) {
  auto res = ctx.run_tool({"ffprobe", "-v", "error", "-show_entries", "stream=codec_type,duration:format=duration",
                           "-print_format", "json", media},
                          protocol::codes::kFfmpegMissing, true);
  if (!res) return res.error();
  auto doc = protocol::parse_json(res->stdout_text);
  if (!doc || !doc->is_object()) return invalid("ffprobe gave no readable description of " + media);
  Durations d;
  const auto seconds = [](const json& j) {
    const auto v = number_field(j, {"duration"});
    return v && std::isfinite(*v) ? *v : -1.0;
  };
  d.container = seconds(doc->value("format", json::object()));
  bool has_audio = false;
  for (const auto& s : doc->value("streams", json::array())) {
    const std::string type = protocol::string_field(s, "codec_type");
    if (type == "audio" && !has_audio) {
      has_audio = true;
      d.audio = seconds(s);
    } else if (type == "video" && d.video < 0) {
      d.video = seconds(s);
    }
  }
  if (!has_audio) return invalid(media + " has no audio stream");
  if (d.audio < 0) d.audio = d.container;  // containers that keep no per-stream duration
  return d;
}

// render_config as given: an object, or the path of a JSON file holding one.
Result<json> read_render_config(const json& payload) {
  const auto it = payload.find("render_config");
  if (it == payload.end() || it->is_null()) return json::object();
  if (it->is_object()) return *it;
  if (!it->is_string()) return invalid("payload.render_config must be an object or the path of a JSON file");
  if (util::trim(it->get_ref<const std::string&>()).empty()) return json::object();
  auto path = required_path(payload, "render_config");
  if (!path) return path.error();
  if (auto st = check_media_file(*path, "render_config"); !st) return st.error();
  auto text = util::read_file(util::path_from_utf8(*path), 16u << 20);
  if (!text) return invalid("cannot read payload.render_config: " + text.error().message);
  auto doc = protocol::parse_json(*text);
  if (!doc || !doc->is_object()) return invalid("payload.render_config " + *path + " is not a JSON object");
  return *doc;
}

}  // namespace

AudioMeasurements parse_audio_measurements(const std::vector<std::string>& lines, double clip_level_dbfs) {
  AudioMeasurements m;
  bool in_summary = false;
  double channel_peak = 0;  // a plain double: GCC 12 misreads an optional here
  bool have_peak = false;
  long long channel_count = 0;
  const auto close_channel = [&] {
    if (have_peak) {
      m.sample_peak_dbfs = std::max(m.sample_peak_dbfs, channel_peak);
      if (channel_peak >= clip_level_dbfs) m.clipping_events += channel_count;
    }
    have_peak = false;
    channel_count = 0;
  };
  // astats reports per channel: "Channel: N", then "Peak level dB: x" and "Peak count: n".
  for (const auto& line : lines) {
    if (line.find("Summary:") != std::string::npos && line.find("ebur128") != std::string::npos) in_summary = true;
    if (in_summary) {
      if (const auto v = number_after(line, " I:")) m.integrated_lufs = v;
      else if (const auto lra = number_after(line, " LRA:")) m.loudness_range_lu = lra;
      else if (const auto pk = number_after(line, " Peak:")) m.true_peak_dbtp = pk;
      if (line.find("[Parsed_astats") != std::string::npos) in_summary = false;
    }
    // Only the filter's own lines: the input's metadata (printed at -v info) could hold anything.
    if (line.rfind("[silencedetect @", 0) == 0) {
      if (const auto start = number_after(line, "silence_start:")) m.silences.push_back({std::max(0.0, *start), -1});
      if (const auto end = number_after(line, "silence_end:"); end && !m.silences.empty() && m.silences.back().end < 0)
        m.silences.back().end = *end;
    }
    if (line.find("[Parsed_astats") != std::string::npos) {
      if (line.find("] Channel:") != std::string::npos) close_channel();
      if (const auto v = number_after(line, "Peak level dB:")) {
        channel_peak = *v;
        have_peak = true;
      }
      if (const auto v = number_after(line, "Peak count:")) channel_count = static_cast<long long>(*v);
    }
  }
  close_channel();
  return m;
}

Result<std::vector<Interval>> voiceover_segments(const json& rc) {
  std::vector<Interval> out;
  if (!rc.is_object()) return out;
  const auto add = [&](const json& seg, const std::string& where) -> Status {
    if (!seg.is_object()) return invalid(where + " must be an object {start, end}");
    const auto start = number_field(seg, {"start_sec", "start"});
    const auto end = number_field(seg, {"end_sec", "end"});
    if (!start || !end || !std::isfinite(*start) || !std::isfinite(*end) || *end <= *start || *start < 0)
      return invalid(where + " needs numeric start and end seconds with end after start");
    out.push_back({*start, *end});
    return Ok{};
  };
  for (const char* key : {"voiceover_segments", "vo_segments"}) {
    const auto it = rc.find(key);
    if (it == rc.end() || it->is_null()) continue;
    if (!it->is_array()) return invalid(std::string("render_config.") + key + " must be a list");
    for (std::size_t i = 0; i < it->size(); ++i)
      if (auto st = add((*it)[i], std::string("render_config.") + key + "[" + std::to_string(i) + "]"); !st) return st.error();
  }
  if (const auto it = rc.find("segments"); it != rc.end() && it->is_array()) {
    for (std::size_t i = 0; i < it->size(); ++i) {
      const json& seg = (*it)[i];
      std::string kind;
      for (const char* k : {"type", "kind", "role"})
        if (kind.empty()) kind = util::ascii_lower(util::trim(protocol::string_field(seg, k)));
      if (kind == "voiceover" || kind == "voice_over" || kind == "vo" || kind == "narration")
        if (auto st = add(seg, "render_config.segments[" + std::to_string(i) + "]"); !st) return st.error();
    }
  }
  return out;
}

std::string_view AudioPostcheck::name() const { return protocol::steps::kAudioPostcheck; }

Result<StepOutput> AudioPostcheck::run(const StepContext& ctx) const {
  const json& p = ctx.payload;
  const char* media_key = p.contains("video_path") ? "video_path" : p.contains("audio_path") ? "audio_path" : "video_path";
  auto media = required_path(p, media_key);
  if (!media) return media.error();
  if (auto st = check_media_file(*media, media_key); !st) return st.error();
  auto thresholds = read_thresholds(p);
  if (!thresholds) return thresholds.error();
  const Thresholds& t = *thresholds;
  auto expected_given = optional_seconds(p, "expected_duration_sec", -1.0, 7.0 * 86400);
  if (!expected_given) return expected_given.error();
  auto render_config = read_render_config(p);
  if (!render_config) return render_config.error();
  auto vo = voiceover_segments(*render_config);
  if (!vo) return vo.error();

  auto durations = probe_durations(ctx, *media);
  if (!durations) return durations.error();

  // One pass over the audio: ebur128 passes the samples on to silencedetect, and that to astats.
  std::vector<std::string> lines;
  std::mutex lines_mu;
  platform::ProcessSpec spec;
  const std::string filters = "ebur128=peak=true:framelog=verbose,silencedetect=n=" +
                              protocol::python_float_repr(t["silence_threshold_db"]) + "dB:d=" +
                              protocol::python_float_repr(t["silence_gap_sec"]) +
                              ",astats=measure_overall=none:measure_perchannel=Peak_level+Peak_count";
  spec.argv = {"ffmpeg", "-hide_banner", "-nostats", "-nostdin", "-v", "info", "-i", *media, "-map", "0:a:0", "-vn",
               "-af", filters, "-f", "null", "-"};
  spec.capture_stdout = false;
  spec.on_output_line = [&](std::string_view line) {
    std::lock_guard lock(lines_mu);
    if (lines.size() < 200000) lines.emplace_back(line);
  };
  auto res = ctx.run_tool(std::move(spec), protocol::codes::kFfmpegMissing);
  if (!res) return res.error();
  AudioMeasurements m = parse_audio_measurements(lines, t["clipping_level_dbfs"]);
  if (!m.integrated_lufs || !m.true_peak_dbtp)
    return Error(ErrorKind::invalid_input, "ffmpeg's loudness meter gave no summary for " + *media,
                 std::string(protocol::codes::kCommandFailed));
  const double audio_sec = durations->audio;
  for (auto& s : m.silences)
    if (s.end < 0) s.end = audio_sec;  // silence that runs to the end

  json gates = json::object();
  std::vector<std::string> failed, warned;
  const auto judge = [&](const std::string& gate, const std::string& verdict, json entry, const std::string& why) {
    entry["verdict"] = verdict;
    gates[gate] = std::move(entry);
    if (verdict == "fail") failed.push_back(gate + ": " + why);
    if (verdict == "warn") warned.push_back(gate + ": " + why);
  };

  const double lufs = *m.integrated_lufs;
  const bool loud_ok = lufs >= t["loudness_min_lufs"] && lufs <= t["loudness_max_lufs"];
  judge("integrated_loudness", loud_ok ? "pass" : "fail",
        {{"value", lufs}, {"unit", "LUFS"}, {"threshold", {{"min", t["loudness_min_lufs"]}, {"max", t["loudness_max_lufs"]}}}},
        protocol::python_float_repr(lufs) + " LUFS outside [" + protocol::python_float_repr(t["loudness_min_lufs"]) + ", " +
            protocol::python_float_repr(t["loudness_max_lufs"]) + "]");

  const double tp = *m.true_peak_dbtp;
  judge("true_peak", tp > t["true_peak_max_dbtp"] ? "fail" : tp > t["true_peak_warn_dbtp"] ? "warn" : "pass",
        {{"value", tp}, {"unit", "dBTP"}, {"threshold", {{"max", t["true_peak_max_dbtp"]}, {"warn_above", t["true_peak_warn_dbtp"]}}}},
        protocol::python_float_repr(tp) + " dBTP above " +
            protocol::python_float_repr(tp > t["true_peak_max_dbtp"] ? t["true_peak_max_dbtp"] : t["true_peak_warn_dbtp"]));

  if (m.loudness_range_lu) {
    json entry = {{"value", *m.loudness_range_lu}, {"unit", "LU"}};
    if (t.loudness_range_max_lu) {
      entry["threshold"] = {{"max", *t.loudness_range_max_lu}};
      judge("loudness_range", *m.loudness_range_lu > *t.loudness_range_max_lu ? "fail" : "pass", entry,
            protocol::python_float_repr(*m.loudness_range_lu) + " LU above " + protocol::python_float_repr(*t.loudness_range_max_lu));
    } else {
      judge("loudness_range", "info", entry, "");
    }
  }

  // Expected: the payload's, else the picture's length (a video), else the container's.
  const bool given = *expected_given > 0;
  const double expected = given ? *expected_given : durations->video > 0 ? durations->video : durations->container;
  const double off = std::abs(audio_sec - expected);
  judge("duration", off > t["duration_tolerance_sec"] ? "fail" : "pass",
        {{"value", round3(audio_sec)},
         {"unit", "s"},
         {"expected", round3(expected)},
         {"expected_from", given ? "payload" : durations->video > 0 ? "video_stream" : "container"},
         {"threshold", {{"tolerance", t["duration_tolerance_sec"]}}}},
        "audio lasts " + protocol::python_float_repr(round3(audio_sec)) + " s, expected " +
            protocol::python_float_repr(round3(expected)) + " s");

  const long long clips = m.clipping_events;
  judge("clipping", clips >= t["clipping_fail_events"] ? "fail" : clips >= t["clipping_warn_events"] ? "warn" : "pass",
        {{"value", clips},
         {"unit", "events"},
         {"sample_peak_dbfs", m.sample_peak_dbfs > -1e8 ? json(round3(m.sample_peak_dbfs)) : json(nullptr)},
         {"threshold", {{"warn_at", t["clipping_warn_events"]}, {"fail_at", t["clipping_fail_events"]}, {"level_dbfs", t["clipping_level_dbfs"]}}}},
        std::to_string(clips) + " runs of samples at full scale");

  json gaps = json::array();
  for (const auto& s : m.silences) gaps.push_back({{"start", round3(s.start)}, {"end", round3(s.end)}, {"duration", round3(s.end - s.start)}});
  judge("silence_gaps", m.silences.empty() ? "pass" : "warn",
        {{"value", m.silences.size()}, {"unit", "gaps"}, {"gaps", gaps},
         {"threshold", {{"min_gap_sec", t["silence_gap_sec"]}, {"level_db", t["silence_threshold_db"]}}}},
        std::to_string(m.silences.size()) + " silent gaps of " + protocol::python_float_repr(t["silence_gap_sec"]) + " s or more");

  if (!vo->empty()) {
    json hits = json::array();
    for (const auto& seg : *vo)
      for (const auto& s : m.silences) {
        const double overlap = std::min(seg.end, s.end) - std::max(seg.start, s.start);
        if (overlap >= t["silence_gap_sec"])
          hits.push_back({{"segment", {{"start", seg.start}, {"end", seg.end}}},
                          {"silence", {{"start", round3(s.start)}, {"end", round3(s.end)}}},
                          {"overlap", round3(overlap)}});
      }
    judge("voiceover_silence", hits.empty() ? "pass" : "fail",
          {{"value", hits.size()}, {"unit", "silences"}, {"segments", vo->size()}, {"hits", hits},
           {"threshold", {{"max_silence_sec", t["silence_gap_sec"]}}}},
          std::to_string(hits.size()) + " silences inside voice-over segments");
  }

  const std::string verdict = !failed.empty() ? "fail" : !warned.empty() ? "warn" : "pass";
  json thresholds_used = json::object();
  for (const auto& [k, v] : t.v) thresholds_used[k] = v;
  if (t.loudness_range_max_lu) thresholds_used["loudness_range_max_lu"] = *t.loudness_range_max_lu;
  const json report = {{"run_id", ctx.run_id},   {"job_id", ctx.job_id},    {"step_name", name()},
                       {"media_path", *media},   {"verdict", verdict},      {"failed", failed},
                       {"warnings", warned},     {"gates", gates},          {"thresholds", thresholds_used}};
  if (auto st = util::write_file_atomic(ctx.staging_dir / "audio_postcheck.json", protocol::dump_json(report, 2)); !st)
    return Error(st.error().kind, st.error().message, std::string(protocol::codes::kStorageFailed));

  StepOutput out;
  out.artifacts = {"audio_postcheck.json"};
  out.metrics = {{"verdict", verdict},       {"media_path", *media},          {"integrated_lufs", lufs},
                 {"true_peak_dbtp", tp},     {"duration_sec", round3(audio_sec)}, {"clipping_events", clips},
                 {"silence_gaps", m.silences.size()}, {"failed_gates", failed.size()}, {"warnings", warned.size()}};
  out.verdict_failed = !failed.empty();
  std::string summary;
  for (const auto& f : failed) summary += (summary.empty() ? "" : "; ") + f;
  out.message = failed.empty() ? "audio post-check " + verdict + " (" + std::to_string(warned.size()) + " warnings)"
                               : "audio post-check failed: " + summary;
  return out;
}

}  // namespace rayvault::worker::steps
