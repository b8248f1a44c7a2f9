// The providers that run a local program (espeak-ng, say, sapi, piper, mock) and those that call
// an HTTP service (elevenlabs, moss_tts); provider.cpp picks among them.
#pragma once

#include <memory>
#include <string_view>

#include "worker/tts/provider.hpp"

namespace rayvault::worker::tts {

std::unique_ptr<Provider> make_command_provider(std::string_view name);
std::unique_ptr<Provider> make_http_provider(std::string_view name);

}  // namespace rayvault::worker::tts
