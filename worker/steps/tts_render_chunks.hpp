// TTS_RENDER_CHUNKS {chunks: [{chunk_id, text}], provider, voice_id, model_id, settings, force}:
// one 48 kHz mono WAV a chunk through the chosen provider and ffmpeg, a per-chunk cache, and
// tts_chunks_manifest.json.
#pragma once

#include "worker/step.hpp"

namespace rayvault::worker::steps {

class TtsRenderChunks final : public Step {
 public:
  std::string_view name() const override;
  Result<StepOutput> run(const StepContext& ctx) const override;
};

// A chunk's cache key (and the manifest's inputs_hash): the first 24 hex digits of SHA-256 over
// "provider=P|model=M|voice=V|ref=R|text=T", with "|settings=" + json.dumps(settings,
// sort_keys=True) appended when settings is a non-empty object.
std::string chunk_cache_key(std::string_view provider, std::string_view model, std::string_view voice,
                            std::string_view reference_sha1, std::string_view text, const protocol::json& settings);

// The file a chunk's WAV is written to: "<chunk_id>.wav" when the id is a portable file name on
// every file system (a letter, digit, '.', '_' or '-' only; not a Windows device name), else its
// safe form + "_" + 16 hex digits of the id's SHA-256 + ".wav".
std::string chunk_file_name(const std::string& chunk_id);

}  // namespace rayvault::worker::steps
