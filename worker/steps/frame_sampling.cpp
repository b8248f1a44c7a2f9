// FRAME_SAMPLING: one JPEG every every_sec seconds, frame_%06d.jpg, listed in frames_index.json.
//
// Two ways to the same frames. The contract's way is one ffmpeg run with an fps filter, which
// decodes the whole video. For sparse samples of a long video it is much cheaper to seek to each
// sample and decode only from the keyframe before it, several ffmpeg runs at once. The step picks
// the cheaper one from ffprobe's view of the file (duration, rate, size, the keyframe before each
// sample) and writes, either way, the frames the fps filter writes, byte for byte: slot n holds the
// last frame before (n + 0.5) * every_sec, and there are round(duration / every_sec) slots.
#include "worker/steps/frame_sampling.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <optional>
#include <thread>

#include "protocol/errors.hpp"
#include "protocol/steps.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"
#include "worker/steps/ffmpeg_probe.hpp"

namespace rayvault::worker::steps {

namespace {

// Cost model, in seconds of one core, measured with ffmpeg 5.1 on H.264: decoding costs about
// 1.4 ns per pixel of each frame decoded; each ffmpeg run costs about 0.15 s before its first frame
// (start-up, reading the file's index). Real footage decodes slower per pixel than the test
// pattern the figures come from, which only makes seeking look better than this estimate.
constexpr double kDecodeSecPerPixel = 1.4e-9;
constexpr double kSeekRunSec = 0.15;
// Seeking is chosen only when its estimate is clearly below the filter's.
constexpr double kSeekMargin = 0.7;

// A number ffprobe writes as text ("12.5"); nothing when absent, "N/A" or not finite.
std::optional<double> number_text(const json& obj, const char* key) {
  const auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return std::nullopt;
  const auto v = util::parse_number_text(it->get_ref<const std::string&>());
  if (!v || !std::isfinite(*v)) return std::nullopt;
  return v;
}

// "num/den" as two positive integers.
std::optional<std::pair<long long, long long>> fraction(const json& v) {
  if (!v.is_string()) return std::nullopt;
  const std::string& s = v.get_ref<const std::string&>();
  const auto slash = s.find('/');
  if (slash == std::string::npos) return std::nullopt;
  long long num = 0, den = 0;
  const auto a = std::from_chars(s.data(), s.data() + slash, num);
  const auto b = std::from_chars(s.data() + slash + 1, s.data() + s.size(), den);
  if (a.ec != std::errc() || a.ptr != s.data() + slash || b.ec != std::errc() || b.ptr != s.data() + s.size() || num <= 0 ||
      den <= 0 || num > (1LL << 31) || den > (1LL << 31))
    return std::nullopt;
  return std::pair{num, den};
}

// What the choice needs to know of the video's first video stream.
struct VideoFacts {
  double duration = 0;  // seconds, to the end of the last frame
  double rate = 0;      // frames per second (a constant rate)
  double pixels = 0;    // width * height
  double start = 0;     // the stream's first time in the file (ffprobe's -read_intervals counts from 0)
};

// ffprobe's view, or nothing when the file is not one seeking can reproduce the filter on for
// sure: no constant frame rate, a stream that does not start with the file, no duration.
std::optional<VideoFacts> probe_video(const StepContext& ctx, const std::string& video) {
  auto res = ctx.run_tool({"ffprobe", "-v", "error", "-select_streams", "v:0", "-read_intervals", "%+#240", "-show_entries",
                           "stream=avg_frame_rate,r_frame_rate,time_base,start_time,start_pts,duration,width,height:"
                           "format=format_name,start_time,duration:packet=pts",
                           "-of", "json", video},
                          protocol::codes::kFfmpegMissing, /*capture_stdout=*/true);
  if (!res) return std::nullopt;
  auto doc = protocol::parse_json(res->stdout_text);
  if (!doc || !doc->is_object() || !doc->contains("streams") || !(*doc)["streams"].is_array() || (*doc)["streams"].empty())
    return std::nullopt;
  const json& s = (*doc)["streams"][0];
  const json fmt = doc->value("format", json::object());
  if (!s.is_object() || !fmt.is_object()) return std::nullopt;
  // Containers with an index, where ffmpeg's seek then decode lands on the very frame the filter
  // sees (in MPEG-TS it did not, measured with ffmpeg 5.1: every frame differed).
  const std::string format = fmt.value("format_name", "");
  if (format.rfind("mov,mp4", 0) != 0 && format.rfind("matroska", 0) != 0) return std::nullopt;
  // A constant rate: the average is the stream's base rate.
  const auto avg = fraction(s.value("avg_frame_rate", json()));
  const auto rate = fraction(s.value("r_frame_rate", json()));
  if (!avg || !rate || avg->first * rate->second != rate->first * avg->second) return std::nullopt;
  // Frames must sit exactly on the time base's ticks, one frame a whole number of ticks: a
  // container that rounds times (Matroska's milliseconds at 29.97 fps) can put a frame on either
  // side of a slot's boundary, where a seek and the filter would disagree.
  const auto base = fraction(s.value("time_base", json()));
  if (!base) return std::nullopt;
  // ticks per frame = (1 / rate) / time_base = (rate.den * base.den) / (rate.num * base.num)
  const long long ticks_num = rate->second * base->second, ticks_den = rate->first * base->first;
  if (ticks_num % ticks_den != 0) return std::nullopt;
  // ... and the file's own times must say so too (a stated rate can be a guess: MPEG-TS): the
  // first packets' times are whole frames from the start.
  const long long ticks = ticks_num / ticks_den;
  const auto first = s.find("start_pts");
  const auto packets = doc->find("packets");
  if (first == s.end() || !first->is_number_integer() || packets == doc->end() || !packets->is_array() || packets->empty())
    return std::nullopt;
  for (const auto& p : *packets) {
    const auto pts = p.find("pts");
    if (pts == p.end() || !pts->is_number_integer() || (pts->get<long long>() - first->get<long long>()) % ticks != 0)
      return std::nullopt;
  }
  const auto stream_start = number_text(s, "start_time");
  const auto file_start = number_text(fmt, "start_time");
  if (!stream_start || !file_start || std::abs(*stream_start - *file_start) > 1e-6) return std::nullopt;
  auto duration = number_text(s, "duration");
  if (!duration) duration = number_text(fmt, "duration");
  const double w = s.value("width", 0.0), h = s.value("height", 0.0);
  if (!duration || *duration <= 0 || w <= 0 || h <= 0) return std::nullopt;
  return VideoFacts{*duration, static_cast<double>(rate->first) / static_cast<double>(rate->second), w * h, *stream_start};
}

// The keyframe a seek to each of these times (from the stream's start) starts decoding from, as
// ffprobe finds them, in the same reckoning; empty when unknown.
std::vector<double> keyframes_before(const StepContext& ctx, const std::string& video, const std::vector<double>& times,
                                     double start) {
  std::string intervals;
  char buf[48];
  for (const double t : times) {
    std::snprintf(buf, sizeof buf, "%s%.6f%%+#1", intervals.empty() ? "" : ",", t + start);
    intervals += buf;
  }
  auto res = ctx.run_tool({"ffprobe", "-v", "error", "-select_streams", "v:0", "-read_intervals", intervals, "-show_entries",
                           "packet=pts_time,flags", "-of", "csv=p=0", video},
                          protocol::codes::kFfmpegMissing, /*capture_stdout=*/true);
  std::vector<double> keys;
  if (!res) return keys;
  for (const auto& line : util::nonempty_lines(res->stdout_text)) {  // "12.345,K_"
    const auto comma = line.find(',');
    if (comma == std::string::npos || line.find('K', comma) == std::string::npos) continue;
    if (const auto t = util::parse_number_text(std::string_view(line).substr(0, comma)); t && std::isfinite(*t))
      keys.push_back(*t - start);
  }
  std::sort(keys.begin(), keys.end());
  return keys;
}

// The time a seek must ask for to land on the frame the fps filter puts in each slot: the last
// frame k before (n + 0.5) * every (a frame exactly there goes to the next slot), asked for
// half a frame before it, so no rounding of the time to ffmpeg's microseconds can miss it.
std::vector<double> seek_times(const VideoFacts& v, double every, std::size_t slots) {
  std::vector<double> times;
  times.reserve(slots);
  for (std::size_t n = 0; n < slots; ++n) {
    const double q = (static_cast<double>(n) + 0.5) * every * v.rate;  // the boundary, in frames
    const double whole = std::round(q);
    const double k = (std::abs(q - whole) < 1e-6 ? whole : std::ceil(q)) - 1;
    times.push_back(std::max(0.0, (k - 0.5) / v.rate));
  }
  return times;
}

constexpr std::size_t kMaxProbed = 256;

struct Plan {
  bool seek = false;
  std::vector<double> times;  // when seeking
  double filter_est = 0, seek_est = 0;
};

Plan choose(const StepContext& ctx, const std::string& video, double every, const std::string& asked) {
  Plan plan;
  if (asked == "filter") return plan;
  const auto facts = probe_video(ctx, video);
  if (!facts) return plan;
  const double slots_d = std::floor(facts->duration / every + 0.5);
  if (slots_d < 1 || slots_d > 1e6) return plan;  // no frame (the filter says so) or absurdly many
  const auto slots = static_cast<std::size_t>(slots_d);
  plan.filter_est = kSeekRunSec + facts->duration * facts->rate * facts->pixels * kDecodeSecPerPixel;
  plan.seek_est = static_cast<double>(slots) * kSeekRunSec;
  if (asked != "seek" && plan.seek_est >= kSeekMargin * plan.filter_est) return plan;
  std::vector<double> times = seek_times(*facts, every, slots);
  if (asked != "seek") {
    // At most kMaxProbed times, spread evenly, are probed (a short command line); the seconds of
    // video their seeks decode are scaled to all of them.
    std::vector<double> probed;
    const std::size_t step = (times.size() + kMaxProbed - 1) / kMaxProbed;
    for (std::size_t i = 0; i < times.size(); i += step) probed.push_back(times[i]);
    const auto keys = keyframes_before(ctx, video, probed, facts->start);
    if (keys.empty()) return plan;
    double decoded = 0;
    for (const double t : probed) {
      auto it = std::upper_bound(keys.begin(), keys.end(), t + 1e-6);
      decoded += it == keys.begin() ? t : t - *std::prev(it);
    }
    decoded *= static_cast<double>(times.size()) / static_cast<double>(probed.size());
    plan.seek_est += (decoded + static_cast<double>(slots) / facts->rate) * facts->rate * facts->pixels * kDecodeSecPerPixel;
    if (plan.seek_est >= kSeekMargin * plan.filter_est) return plan;
  }
  plan.seek = true;
  plan.times = std::move(times);
  return plan;
}

std::string frame_name(std::size_t n) {
  std::string digits = std::to_string(n);
  if (digits.size() < 6) digits.insert(0, 6 - digits.size(), '0');
  return "frame_" + digits + ".jpg";
}

// One ffmpeg run per slot, one per core at once (2 to 8), each decoding on one thread (that beats
// runs decoding on all of them, which spend their first frames warming threads up). False, with
// nothing left behind, when a seek fails or lands on no frame; the error when the job is stopped
// or out of time.
Result<bool> sample_by_seeking(const StepContext& ctx, const std::string& video, const std::vector<double>& times) {
  std::mutex mu;
  std::size_t next = 0;
  std::optional<Error> stop;  // a cancel or timeout ends the step; any other failure falls back
  bool failed = false;
  const auto take_and_seek = [&] {
    for (;;) {
      std::size_t n;
      {
        std::lock_guard lock(mu);
        if (failed || stop || next >= times.size()) return;
        n = next++;
      }
      char at[32];
      std::snprintf(at, sizeof at, "%.6f", times[n]);
      const fs::path out = ctx.staging_dir / frame_name(n + 1);
      auto res = ctx.run_tool({"ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y", "-threads", "1", "-ss", at, "-i", video,
                               "-frames:v", "1", "-q:v", "2", util::u8(out)},
                              protocol::codes::kFfmpegMissing);
      std::error_code ec;
      const bool landed = res && fs::is_regular_file(out, ec) && fs::file_size(out, ec) > 0;
      std::lock_guard lock(mu);
      if (!res && (res.error().code == protocol::codes::kTimeout || res.error().code == protocol::codes::kWorkerRestarted ||
                   ctx.cancelled()))
        stop = res.error();
      else if (!landed)
        failed = true;
    }
  };
  const auto work = [&]() noexcept {
    try {
      take_and_seek();
    } catch (...) {  // out of memory or threads: the filter gets its chance
      std::lock_guard lock(mu);
      failed = true;
    }
  };
  const std::size_t runs = std::min<std::size_t>(times.size(), std::clamp<std::size_t>(std::thread::hardware_concurrency(), 2, 8));
  std::vector<std::thread> pool;
  pool.reserve(runs);
  for (std::size_t t = 1; t < runs; ++t) {
    try {
      pool.emplace_back(work);
    } catch (...) {
      break;  // fewer runs at once
    }
  }
  work();
  for (auto& th : pool) th.join();
  if (stop) return *stop;
  if (!failed) return true;
  std::error_code ec;
  for (std::size_t n = 0; n < times.size(); ++n) fs::remove(ctx.staging_dir / frame_name(n + 1), ec);
  return false;
}

}  // namespace

std::string_view FrameSampling::name() const { return protocol::steps::kFrameSampling; }

Result<StepOutput> FrameSampling::run(const StepContext& ctx) const {
  auto video = required_path(ctx.payload, "video_path");
  if (!video) return video.error();
  auto every = optional_seconds(ctx.payload, "every_sec", 5.0, 86400.0);
  if (!every) return every.error();
  std::string asked = "auto";
  if (const auto it = ctx.payload.find("sampling"); it != ctx.payload.end() && !it->is_null()) {
    if (!it->is_string() || (*it != "auto" && *it != "filter" && *it != "seek"))
      return Error(ErrorKind::invalid_input, "payload.sampling must be \"auto\", \"filter\" or \"seek\"",
                   std::string(protocol::codes::kInvalidInput));
    asked = it->get<std::string>();
  }
  if (auto st = check_media_file(*video, "video_path"); !st) return st.error();

  const Plan plan = choose(ctx, *video, *every, asked);
  bool seeked = false;
  if (plan.seek) {
    if (ctx.log) {
      char est[96];
      std::snprintf(est, sizeof est, " (estimated %.1f s of decoding against %.1f s for the fps filter)", plan.seek_est,
                    plan.filter_est);
      ctx.log(LogLevel::info, "sampling", "seeking to " + std::to_string(plan.times.size()) + " frames" + est);
    }
    auto done = sample_by_seeking(ctx, *video, plan.times);
    if (!done) return done.error();
    seeked = *done;
    if (!seeked && ctx.log) ctx.log(LogLevel::warning, "sampling", "a seek found no frame; sampling with the fps filter instead");
  }
  if (!seeked) {
    const std::string rate = "fps=1/" + protocol::python_float_repr(*every);
    const fs::path pattern = ctx.staging_dir / "frame_%06d.jpg";
    auto res = ctx.run_tool({"ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y", "-i", *video, "-vf", rate, "-q:v", "2",
                             util::u8(pattern)},
                            protocol::codes::kFfmpegMissing);
    if (!res) return res.error();
  }

  std::vector<std::string> frames;
  for (const auto& entry : fs::directory_iterator(ctx.staging_dir)) {
    const std::string n = util::u8(entry.path().filename());
    if (entry.is_regular_file() && n.rfind("frame_", 0) == 0 && entry.path().extension() == ".jpg") frames.push_back(n);
  }
  std::sort(frames.begin(), frames.end());
  if (frames.empty())
    return Error(ErrorKind::invalid_input, "ffmpeg wrote no frame from " + *video,
                 std::string(protocol::codes::kFrameSamplingEmpty));

  // The index lists each frame's full path where it will live once the engine publishes it.
  json frame_paths = json::array();
  for (const auto& f : frames) frame_paths.push_back(util::u8(ctx.output_dir / f));
  json index = {{"run_id", ctx.run_id},
                {"job_id", ctx.job_id},
                {"count", frames.size()},
                {"every_sec", *every},
                {"frames", frame_paths}};
  if (auto st = util::write_file_atomic(ctx.staging_dir / "frames_index.json", protocol::dump_json(index, 2)); !st)
    return Error(st.error().kind, st.error().message, std::string(protocol::codes::kStorageFailed));

  StepOutput out;
  out.metrics = {{"frames", frames.size()},
                 {"every_sec", *every},
                 {"count", frames.size()},
                 {"sampling", seeked ? "seek" : "filter"}};
  out.artifacts = frames;
  out.artifacts.push_back("frames_index.json");
  out.message = "sampled " + std::to_string(frames.size()) + " frames" + (seeked ? " by seeking" : "");
  return out;
}

}  // namespace rayvault::worker::steps
