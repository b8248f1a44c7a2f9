// TTS_RENDER_CHUNKS: validates every chunk first, then renders the chunks that the cache does not
// hold, several at once, each through the provider and then ffmpeg into the contract's WAV; with
// payload.mix, the chunks are then joined in order into one more WAV.
#include "worker/steps/tts_render_chunks.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <optional>
#include <set>
#include <thread>
#include <tuple>
#include <utility>

#include "protocol/blobs.hpp"
#include "protocol/errors.hpp"
#include "protocol/ids.hpp"
#include "protocol/steps.hpp"
#include "util/crypto.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"
#include "worker/steps/ffmpeg_probe.hpp"
#include "worker/tts/provider.hpp"

namespace rayvault::worker::steps {
namespace {

using protocol::codes::kInvalidInput;

constexpr std::size_t kMaxChunks = 2000;
constexpr std::size_t kMaxChunkTextBytes = 20000;
// All chunks of one job together: about 35,000 words, some four hours of speech (1.3 GB of WAV).
constexpr std::size_t kMaxJobTextBytes = 200000;
constexpr std::uintmax_t kMaxReferenceBytes = 32u << 20;
constexpr double kMaxMixGapSec = 10.0;
constexpr std::string_view kManifestName = "tts_chunks_manifest.json";

Error invalid(std::string message) { return Error(ErrorKind::invalid_input, std::move(message), std::string(kInvalidInput)); }

struct Chunk {
  std::string id, file, text, key;
  bool cache_hit = false;
  std::string sha256;
  std::uintmax_t size = 0;
};

// An optional text field of the payload, trimmed; "" when absent or null.
Result<std::string> optional_text(const json& payload, const char* key) {
  const auto it = payload.find(key);
  if (it == payload.end() || it->is_null()) return std::string();
  if (!it->is_string()) return invalid(std::string("payload.") + key + " must be a string");
  const std::string v = util::trim(it->get_ref<const std::string&>());
  if (v.find('\0') != std::string::npos || v.size() > 512) return invalid(std::string("payload.") + key + " is not a usable value");
  return v;
}

Result<std::vector<Chunk>> read_chunks(const json& payload) {
  const auto it = payload.find("chunks");
  if (it == payload.end() || !it->is_array() || it->empty())
    return invalid("payload.chunks must be a non-empty list of {chunk_id, text}");
  if (it->size() > kMaxChunks) return invalid("payload.chunks holds more than " + std::to_string(kMaxChunks) + " chunks");
  std::vector<Chunk> chunks;
  std::set<std::string> seen;  // file names, lower-cased: "A" and "a" are one file on Windows and macOS
  std::size_t total_text = 0;
  for (std::size_t i = 0; i < it->size(); ++i) {
    const json& c = (*it)[i];
    char fallback[32];
    std::snprintf(fallback, sizeof fallback, "chunk_%02zu", i + 1);
    const std::string where = "payload.chunks[" + std::to_string(i) + "]";
    if (!c.is_object()) return invalid(where + " must be an object {chunk_id, text}");
    Chunk chunk;
    const auto id = c.find("chunk_id");
    if (id == c.end() || id->is_null() || (id->is_string() && util::trim(id->get_ref<const std::string&>()).empty())) {
      chunk.id = fallback;
    } else if (id->is_string() || id->is_number_integer() || id->is_number_unsigned()) {
      auto normalized = protocol::normalize_id(id->is_string() ? id->get_ref<const std::string&>() : id->dump(), "chunk_id");
      if (!normalized) return invalid(where + ": " + normalized.error().message);
      chunk.id = *normalized;
    } else {
      return invalid(where + ".chunk_id must be a string");
    }
    const auto text = c.find("text");
    if (text == c.end() || !text->is_string()) return invalid(where + ".text must be a string (chunk " + chunk.id + ")");
    chunk.text = util::python_strip(text->get_ref<const std::string&>());  // the key's T, as the Python nodes strip it
    if (chunk.text.empty()) return invalid("chunk " + chunk.id + " has empty text");
    if (chunk.text.size() > kMaxChunkTextBytes)
      return invalid("chunk " + chunk.id + " has more than " + std::to_string(kMaxChunkTextBytes) + " bytes of text");
    if (chunk.text.find('\0') != std::string::npos) return invalid("chunk " + chunk.id + " text holds a NUL byte");
    total_text += chunk.text.size();
    if (total_text > kMaxJobTextBytes)
      return invalid("payload.chunks hold more than " + std::to_string(kMaxJobTextBytes) + " bytes of text; split the job");
    chunk.file = chunk_file_name(chunk.id);
    if (!seen.insert(util::ascii_lower(chunk.file)).second) return invalid("chunk_id " + chunk.id + " is given twice");
    chunks.push_back(std::move(chunk));
  }
  return chunks;
}

Status copy_into(const fs::path& from, const fs::path& to) {
  fs::path part = to;
  part += ".part-" + util::random_hex(4);
  std::error_code ec;
  fs::copy_file(from, part, fs::copy_options::overwrite_existing, ec);
  if (!ec) fs::rename(part, to, ec);
  if (ec) {
    fs::remove(part, ec);
    return Error(ErrorKind::io, "cannot copy " + util::u8(from.filename()) + ": " + ec.message(),
                 std::string(protocol::codes::kStorageFailed));
  }
  return Ok{};
}

// Renders one chunk that the cache does not hold: provider, then ffmpeg into the contract's WAV.
Status render_chunk(const StepContext& ctx, const tts::Provider& provider, tts::SpeechRequest request, const Chunk& chunk,
                    const fs::path& cache_file) {
  std::error_code ec;
  fs::create_directories(request.work_dir, ec);
  request.text_file = request.work_dir / "text.txt";
  request.text = chunk.text;
  if (auto st = util::write_file_atomic(request.text_file, chunk.text); !st)
    return Error(st.error().kind, st.error().message, std::string(protocol::codes::kStorageFailed));
  auto raw = provider.render(request, ctx);
  if (!raw) return Error(raw.error().kind, "chunk " + chunk.id + ": " + raw.error().message, raw.error().code);
  const fs::path wav = request.work_dir / "out.wav";
  auto conv = ctx.run_tool({"ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y", "-i", util::u8(*raw), "-map_metadata",
                            "-1", "-vn", "-ar", "48000", "-ac", "1", "-c:a", "pcm_s16le", "-fflags", "+bitexact", "-f",
                            "wav", util::u8(wav)},
                           protocol::codes::kFfmpegMissing);
  if (!conv) {
    if (conv.error().code != protocol::codes::kCommandFailed) return conv.error();
    return Error(ErrorKind::invalid_input,
                 "chunk " + chunk.id + ": ffmpeg cannot decode the audio " + std::string(provider.name()) +
                     " produced: " + conv.error().message,
                 std::string(protocol::codes::kTtsProviderFailed));
  }
  // The cache is a convenience: failing to fill it is logged, not fatal.
  fs::create_directories(cache_file.parent_path(), ec);
  if (auto st = copy_into(wav, cache_file); !st && ctx.log)
    ctx.log(LogLevel::warning, "tts_cache", "cannot cache chunk " + chunk.id + ": " + st.error().message);
  fs::rename(wav, ctx.staging_dir / chunk.file, ec);
  if (ec)
    return Error(ErrorKind::io, "cannot place " + chunk.file + ": " + ec.message(), std::string(protocol::codes::kStorageFailed));
  return Ok{};
}

// Keeps the chunk cache under its size: the least recently used chunks (oldest modification
// time; a hit renews it) are removed until the rest fit.
void prune_cache(const fs::path& dir, std::uintmax_t max_bytes, const StepContext& ctx) {
  std::vector<std::pair<fs::file_time_type, std::pair<fs::path, std::uintmax_t>>> files;
  std::uintmax_t total = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec) || it->path().extension() != ".wav") continue;
    const auto size = it->file_size(ec);
    files.push_back({it->last_write_time(ec), {it->path(), size}});
    total += size;
  }
  if (total <= max_bytes) return;
  std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::size_t removed = 0;
  for (const auto& [when, file] : files) {
    if (total <= max_bytes) break;
    if (fs::remove(file.first, ec)) {
      total -= file.second;
      ++removed;
    }
  }
  if (ctx.log && removed > 0)
    ctx.log(LogLevel::info, "tts_cache", "removed " + std::to_string(removed) + " least recently used chunks from the cache");
}

// A staged artifact's SHA-256 and size, for the manifest.
Result<std::pair<std::string, std::uintmax_t>> staged_file_facts(const StepContext& ctx, const std::string& file) {
  const fs::path staged = ctx.staging_dir / file;
  auto sha = util::sha256_file_hex(staged);
  std::error_code ec;
  const auto size = sha ? fs::file_size(staged, ec) : 0;
  if (!sha || ec)
    return Error(ErrorKind::io, "cannot read " + file + ": " + (sha ? ec.message() : sha.error().message),
                 std::string(protocol::codes::kStorageFailed));
  return std::pair{*sha, size};
}

// payload.mix (an extension of ours; the Python nodes ignore it): the chunks joined in their
// order into one WAV of the same form, with gap_sec of silence between two chunks. true, a file
// name, or {name, gap_sec}; the name defaults to mix.wav.
struct Mix {
  std::string file;
  double gap_sec = 0.0;
};

Result<std::optional<Mix>> read_mix(const json& payload, const std::vector<Chunk>& chunks) {
  const auto it = payload.find("mix");
  if (it == payload.end() || it->is_null() || (it->is_boolean() && !it->get<bool>())) return std::optional<Mix>();
  Mix mix{"mix.wav", 0.0};
  const json* name = nullptr;
  if (it->is_string()) {
    name = &*it;
  } else if (it->is_object()) {
    for (const auto& [key, value] : it->items())
      if (key != "name" && key != "gap_sec") return invalid("payload.mix." + key + " is not known (mix takes name and gap_sec)");
    if (const auto n = it->find("name"); n != it->end() && !n->is_null()) name = &*n;
    if (const auto g = it->find("gap_sec"); g != it->end() && !g->is_null()) {
      if (!g->is_number() || !std::isfinite(g->get<double>()) || g->get<double>() < 0 || g->get<double>() > kMaxMixGapSec)
        return invalid("payload.mix.gap_sec must be a number of seconds from 0 to " + std::to_string(static_cast<int>(kMaxMixGapSec)));
      mix.gap_sec = std::round(g->get<double>() * 1000) / 1000;  // whole milliseconds
    }
  } else if (!it->is_boolean()) {
    return invalid("payload.mix must be true, a file name or {name, gap_sec}");
  }
  if (name != nullptr) {
    if (!name->is_string()) return invalid("payload.mix.name must be a file name");
    mix.file = name->get<std::string>();
    const std::string lower = util::ascii_lower(mix.file);
    if (!protocol::is_blob_file_name(mix.file) || lower.size() <= 4 || lower.compare(lower.size() - 4, 4, ".wav") != 0 ||
        mix.file[0] == '.')
      return invalid("payload.mix.name must be a plain file name ending in .wav (no path separators or reserved characters)");
  }
  const std::string lower = util::ascii_lower(mix.file);
  for (const auto& c : chunks)
    if (util::ascii_lower(c.file) == lower) return invalid("payload.mix.name " + mix.file + " is the file of chunk " + c.id);
  return std::optional<Mix>(mix);
}

// Joins the chunks' WAVs in order (ffmpeg's concat demuxer over a list of the staged files, with a
// silent WAV between two chunks when gap_sec > 0) into staging_dir/mix.file.
Status render_mix(const StepContext& ctx, const std::vector<Chunk>& chunks, const Mix& mix) {
  const fs::path dir = ctx.staging_dir / ".mix";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Error(ErrorKind::io, "cannot make the mix's folder: " + ec.message(), std::string(protocol::codes::kStorageFailed));
  const auto tool = [&](std::vector<std::string> argv) -> Status {
    auto r = ctx.run_tool(std::move(argv), protocol::codes::kFfmpegMissing);
    if (!r) return Error(r.error().kind, "cannot mix the chunks: " + r.error().message, r.error().code);
    return Ok{};
  };
  const std::string gap = "gap.wav";
  if (mix.gap_sec > 0) {
    if (auto st = tool({"ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                        "anullsrc=r=48000:cl=mono", "-t", std::to_string(std::lround(mix.gap_sec * 1000)) + "ms", "-c:a", "pcm_s16le", "-fflags",
                        "+bitexact", "-f", "wav", util::u8(dir / gap)});
        !st)
      return st;
  }
  // Chunk files are portable names (letters, digits, '.', '_', '-'): nothing to quote in the list.
  std::string list = "ffconcat version 1.0\n";
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    if (i > 0 && mix.gap_sec > 0) list += "file '" + gap + "'\n";
    list += "file '../" + chunks[i].file + "'\n";
  }
  if (auto st = util::write_file_atomic(dir / "list.ffconcat", list); !st)
    return Error(st.error().kind, st.error().message, std::string(protocol::codes::kStorageFailed));
  const fs::path out = dir / "mix.wav";
  if (auto st = tool({"ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i",
                      util::u8(dir / "list.ffconcat"), "-map_metadata", "-1", "-vn", "-ar", "48000", "-ac", "1", "-c:a",
                      "pcm_s16le", "-fflags", "+bitexact", "-f", "wav", util::u8(out)});
      !st)
    return st;
  fs::rename(out, ctx.staging_dir / mix.file, ec);
  if (ec) return Error(ErrorKind::io, "cannot place " + mix.file + ": " + ec.message(), std::string(protocol::codes::kStorageFailed));
  fs::remove_all(dir, ec);
  return Ok{};
}

}  // namespace

std::string chunk_cache_key(std::string_view provider, std::string_view model, std::string_view voice,
                            std::string_view reference_sha1, std::string_view text, const json& settings) {
  std::string material = "provider=" + std::string(provider) + "|model=" + std::string(model) + "|voice=" +
                         std::string(voice) + "|ref=" + std::string(reference_sha1) + "|text=" + std::string(text);
  if (settings.is_object() && !settings.empty()) material += "|settings=" + protocol::python_json_dumps(settings);
  return util::sha256_hex(material).substr(0, 24);
}

std::string chunk_file_name(const std::string& chunk_id) {
  const std::string lower = util::ascii_lower(chunk_id);
  if (protocol::id_folder_name(lower) == lower && lower[0] != '.') return chunk_id + ".wav";
  // Any other id: its letters, digits, '.', '_' and '-' (others as '_', at most 48), then 16 hex
  // digits of its SHA-256. Two ids that still meet in one name are refused as duplicates.
  std::string safe;
  for (const char c : chunk_id.substr(0, 48)) safe.push_back(util::is_safe_component(std::string(1, c)) ? c : '_');
  if (!safe.empty() && safe[0] == '.') safe[0] = '_';
  return safe + "_" + util::sha256_hex(chunk_id).substr(0, 16) + ".wav";
}

std::string_view TtsRenderChunks::name() const { return protocol::steps::kTtsRenderChunks; }

Result<StepOutput> TtsRenderChunks::run(const StepContext& ctx) const {
  const json& p = ctx.payload;
  auto chunks = read_chunks(p);
  if (!chunks) return chunks.error();
  auto mix = read_mix(p, *chunks);
  if (!mix) return mix.error();
  auto provider_raw = optional_text(p, "provider");
  if (!provider_raw) return provider_raw.error();
  std::string provider_name = tts::canonical_name(*provider_raw);
  if (provider_name.empty()) provider_name = tts::canonical_name(ctx.config.setting("TTS_PROVIDER"));
  if (provider_name.empty()) provider_name = "espeak-ng";
  const auto provider = tts::make_provider(provider_name);
  if (!provider) {
    std::string known;
    for (const auto& n : tts::known_providers()) known += (known.empty() ? "" : ", ") + n;
    return Error(ErrorKind::unavailable, "TTS provider '" + provider_name + "' is not known to this node (it knows " + known + ")",
                 std::string(protocol::codes::kTtsProviderUnavailable));
  }
  if (const std::string why = provider->unavailable_reason(ctx.config); !why.empty())
    return Error(ErrorKind::unavailable, why, std::string(protocol::codes::kTtsProviderUnavailable));

  auto voice = optional_text(p, "voice_id");
  if (!voice) return voice.error();
  // A voice is a name, never an option of the tool that speaks it.
  if (!voice->empty() && ((*voice)[0] == '-' || voice->find_first_of(std::string_view("\x01\x02\x03\x04\x05\x06\x07\x08\t\n\v\f\r", 13)) != std::string::npos))
    return invalid("payload.voice_id is not a voice name: it starts with '-' or holds a control character");
  // The key's V: the payload's voice, else ELEVENLABS_VOICE_ID, else "default" (the contract). The
  // configured ElevenLabs voice is that service's; another provider without a voice speaks its own default.
  std::string voice_id = *voice;
  if (voice_id.empty()) voice_id = ctx.config.setting("ELEVENLABS_VOICE_ID");
  if (voice_id.empty()) voice_id = "default";
  const std::string provider_voice = !voice->empty() || provider_name == "elevenlabs" ? voice_id : std::string("default");
  auto model = optional_text(p, "model_id");
  if (!model) return model.error();
  json settings = json::object();
  if (const auto s = p.find("settings"); s != p.end() && !s->is_null()) {
    if (!s->is_object()) return invalid("payload.settings must be an object");
    settings = *s;
  }
  const auto force = optional_bool(p, "force", false);
  if (!force) return force.error();

  // A voice-cloning reference (moss_tts): its SHA-1 is part of every chunk's key.
  tts::SpeechRequest base;
  std::string reference_sha1;
  if (const auto r = p.find("reference_audio"); r != p.end() && !r->is_null() && !(r->is_string() && r->get_ref<const std::string&>().empty())) {
    auto path = required_path(p, "reference_audio");
    if (!path) return path.error();
    if (auto st = check_media_file(*path, "reference_audio"); !st) return st.error();
    // Read once: the same bytes are hashed for the key and sent with every chunk. Only a WAV is
    // sent to the service (the contract's form), so no other file of the worker leaves it.
    std::error_code ec;
    if (fs::file_size(util::path_from_utf8(*path), ec) > kMaxReferenceBytes)
      return invalid("payload.reference_audio is larger than " + std::to_string(kMaxReferenceBytes >> 20) + " MiB");
    auto bytes = util::read_file(util::path_from_utf8(*path), kMaxReferenceBytes);
    if (!bytes) return invalid("cannot read payload.reference_audio: " + bytes.error().message);
    if (bytes->size() < 12 || bytes->compare(0, 4, "RIFF") != 0 || bytes->compare(8, 4, "WAVE") != 0)
      return invalid("payload.reference_audio must be a WAV file");
    reference_sha1 = util::sha1_hex(*bytes);
    base.reference_b64 = std::make_shared<const std::string>(util::base64(*bytes));
  }
  base.voice_id = provider_voice;
  base.model_id = *model;
  base.settings = settings;

  const fs::path cache_dir = ctx.config.cache_dir / "tts";
  std::vector<std::size_t> to_render;
  for (std::size_t i = 0; i < chunks->size(); ++i) {
    Chunk& c = (*chunks)[i];
    c.key = chunk_cache_key(provider_name, *model, voice_id, reference_sha1, c.text, settings);
    const fs::path cached = cache_dir / (c.key + ".wav");
    std::error_code ec;
    if (!*force && fs::is_regular_file(cached, ec) && fs::file_size(cached, ec) > 44) {
      if (copy_into(cached, ctx.staging_dir / c.file)) {
        c.cache_hit = true;
        fs::last_write_time(cached, fs::file_time_type::clock::now(), ec);  // recently used
        continue;
      }
    }
    to_render.push_back(i);
  }
  if (ctx.log)
    ctx.log(LogLevel::info, "tts_plan",
            std::to_string(chunks->size()) + " chunks with " + provider_name + " (voice " + voice_id + "): " +
                std::to_string(chunks->size() - to_render.size()) + " from the cache, " + std::to_string(to_render.size()) +
                " to render, " + std::to_string(std::min<std::size_t>(to_render.size(), static_cast<std::size_t>(ctx.config.tts_parallel))) +
                " at once");

  // Render: a few threads take chunks in order; after a failure no new chunk is started.
  std::vector<Status> results(chunks->size(), Status(Ok{}));
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  const auto work = [&] {
    for (std::size_t n = next++; n < to_render.size() && !failed && !ctx.cancelled(); n = next++) {
      const std::size_t i = to_render[n];
      tts::SpeechRequest request = base;
      request.work_dir = ctx.staging_dir / ".tts" / std::to_string(i);
      results[i] = render_chunk(ctx, *provider, request, (*chunks)[i], cache_dir / ((*chunks)[i].key + ".wav"));
      if (!results[i]) failed = true;
      else if (ctx.log) ctx.log(LogLevel::info, "tts_chunk", "rendered chunk " + (*chunks)[i].id);
    }
  };
  const std::size_t threads = std::min<std::size_t>(to_render.size(), static_cast<std::size_t>(ctx.config.tts_parallel));
  std::vector<std::thread> pool;
  for (std::size_t t = 1; t < threads; ++t) pool.emplace_back(work);
  if (threads > 0) work();
  for (auto& t : pool) t.join();
  std::error_code ec;
  fs::remove_all(ctx.staging_dir / ".tts", ec);
  if (!to_render.empty()) prune_cache(cache_dir, ctx.config.tts_cache_max_bytes, ctx);
  for (const auto& r : results)
    if (!r) return r.error();
  if (ctx.cancelled())
    return Error(ErrorKind::unavailable, "the job was stopped", std::string(protocol::codes::kWorkerRestarted));

  json manifest_chunks = json::array();
  StepOutput out;
  std::size_t hits = 0;
  for (auto& c : *chunks) {
    auto facts = staged_file_facts(ctx, c.file);
    if (!facts) return facts.error();
    std::tie(c.sha256, c.size) = *facts;
    hits += c.cache_hit ? 1 : 0;
    manifest_chunks.push_back({{"chunk_id", c.id},
                               {"path", util::u8(ctx.output_dir / c.file)},
                               {"sha256", c.sha256},
                               {"size_bytes", c.size},
                               {"cache_hit", c.cache_hit},
                               {"inputs_hash", c.key}});
    out.artifacts.push_back(c.file);
  }
  json manifest = {{"run_id", ctx.run_id},       {"job_id", ctx.job_id},     {"step_name", name()},
                   {"provider", provider_name},  {"voice_id", voice_id},     {"model_id", *model},
                   {"chunks", manifest_chunks}};
  out.metrics = {{"chunks", chunks->size()}, {"provider", provider_name}, {"voice_id", voice_id}, {"cache_hits", hits},
                 {"rendered", chunks->size() - hits}};
  if (*mix) {
    const Mix& m = **mix;
    if (auto st = render_mix(ctx, *chunks, m); !st) return st.error();
    auto facts = staged_file_facts(ctx, m.file);
    if (!facts) return facts.error();
    manifest["mix"] = {{"path", util::u8(ctx.output_dir / m.file)}, {"sha256", facts->first}, {"size_bytes", facts->second},
                       {"chunks", chunks->size()}, {"gap_sec", m.gap_sec}};
    out.artifacts.push_back(m.file);
    out.metrics["mix"] = m.file;
    if (ctx.log) ctx.log(LogLevel::info, "tts_mix", "joined " + std::to_string(chunks->size()) + " chunks into " + m.file);
  }
  if (auto st = util::write_file_atomic(ctx.staging_dir / std::string(kManifestName), protocol::dump_json(manifest, 2)); !st)
    return Error(st.error().kind, st.error().message, std::string(protocol::codes::kStorageFailed));
  out.artifacts.push_back(std::string(kManifestName));
  out.message = "rendered " + std::to_string(chunks->size()) + " chunks with " + provider_name + " (" +
                std::to_string(hits) + " from the cache)";
  return out;
}

}  // namespace rayvault::worker::steps
