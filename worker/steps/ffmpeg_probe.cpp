// FFMPEG_PROBE: runs ffprobe and keeps its JSON, with a few figures as metrics.
#include "worker/steps/ffmpeg_probe.hpp"

#include "protocol/errors.hpp"
#include "protocol/steps.hpp"
#include "util/files.hpp"

namespace rayvault::worker::steps {

std::string_view FfmpegProbe::name() const { return protocol::steps::kFfmpegProbe; }

Status check_media_file(const std::string& path, const char* key) {
  std::error_code ec;
  const fs::path p = util::path_from_utf8(path);
  if (!fs::is_regular_file(p, ec))
    return Error(ErrorKind::invalid_input, std::string("payload.") + key + " is not a file on this worker: " + path,
                 std::string(protocol::codes::kInvalidInput));
  return ok_status();
}

Result<StepOutput> FfmpegProbe::run(const StepContext& ctx) const {
  auto media = required_path(ctx.payload, "media_path");
  if (!media) return media.error();
  if (auto st = check_media_file(*media, "media_path"); !st) return st.error();

  auto res = ctx.run_tool({"ffprobe", "-v", "error", "-show_format", "-show_streams", "-print_format", "json", *media},
                          protocol::codes::kFfmpegMissing, /*capture_stdout=*/true);
  if (!res) return res.error();
  auto probe = protocol::parse_json(res->stdout_text);
  if (!probe || !probe->is_object())
    return Error(ErrorKind::invalid_input, "ffprobe printed no JSON document", std::string(protocol::codes::kCommandFailed));
  if (auto st = util::write_file_atomic(ctx.staging_dir / "ffprobe.json", probe->dump(2)); !st)
    return Error(st.error().kind, st.error().message, std::string(protocol::codes::kStorageFailed));

  StepOutput out;
  const json& fmt = probe->contains("format") ? (*probe)["format"] : json::object();
  int video = 0, audio = 0;
  if (probe->contains("streams") && (*probe)["streams"].is_array()) {
    for (const auto& s : (*probe)["streams"]) {
      const std::string type = s.value("codec_type", "");
      video += type == "video";
      audio += type == "audio";
    }
  }
  double duration = 0;
  if (fmt.is_object() && fmt.contains("duration") && fmt["duration"].is_string())
    duration = std::strtod(fmt["duration"].get<std::string>().c_str(), nullptr);
  out.metrics = {{"media_path", *media},
                 {"duration_sec", duration},
                 {"format_name", fmt.is_object() ? fmt.value("format_name", "") : ""},
                 {"video_streams", video},
                 {"audio_streams", audio}};
  out.artifacts = {"ffprobe.json"};
  out.message = "probed " + util::u8(util::path_from_utf8(*media).filename());
  return out;
}

}  // namespace rayvault::worker::steps
