// Blob references in payloads.
#include "protocol/blobs.hpp"

#include <algorithm>
#include <map>

#include "protocol/steps.hpp"
#include "util/strings.hpp"

namespace rayvault::protocol {
namespace {

bool reserved_char(unsigned char c) {
  return c < 0x20 || c == 0x7f || c == '/' || c == '\\' || c == '<' || c == '>' || c == ':' || c == '"' ||
         c == '|' || c == '?' || c == '*';
}

bool is_digest(std::string_view text) {
  return text.size() == 64 &&
         std::all_of(text.begin(), text.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// The length of a character at `at` that a name may not hold though it is not ASCII: C1 controls
// (U+0080-U+009F), zero-width and direction marks (U+200B-U+200F, U+202A-U+202E, U+2066-U+2069)
// and the byte order mark (U+FEFF), which make a name read as another; 0 for any other.
std::size_t hidden_char(std::string_view s, std::size_t at) {
  const auto b = [&](std::size_t i) { return at + i < s.size() ? static_cast<unsigned char>(s[at + i]) : 0u; };
  if (b(0) == 0xC2 && b(1) >= 0x80 && b(1) <= 0x9F) return 2;
  if (b(0) == 0xE2 && b(1) == 0x80 && ((b(2) >= 0x8B && b(2) <= 0x8F) || (b(2) >= 0xAA && b(2) <= 0xAE))) return 3;
  if (b(0) == 0xE2 && b(1) == 0x81 && b(2) >= 0xA6 && b(2) <= 0xA9) return 3;
  if (b(0) == 0xEF && b(1) == 0xBB && b(2) == 0xBF) return 3;
  return 0;
}

// A Windows device name, as Windows reads one: the part before the first dot, less trailing
// spaces ("CON .txt" is CON), in any case; COM and LPT with a digit or a superscript 1, 2 or 3.
bool device_name(std::string_view name) {
  std::string stem = util::ascii_upper(name.substr(0, name.find('.')));
  while (!stem.empty() && stem.back() == ' ') stem.pop_back();
  if (stem == "CON" || stem == "PRN" || stem == "AUX" || stem == "NUL" || stem == "CONIN$" || stem == "CONOUT$") return true;
  if (stem.rfind("COM", 0) != 0 && stem.rfind("LPT", 0) != 0) return false;
  const std::string_view n = std::string_view(stem).substr(3);
  return (n.size() == 1 && n[0] >= '0' && n[0] <= '9') || n == "\xC2\xB9" || n == "\xC2\xB2" || n == "\xC2\xB3";
}

}  // namespace

json blob_ref_json(const std::string& digest, const std::string& name) { return json{{"blob", digest}, {"name", name}}; }

bool is_blob_ref(const json& value) { return value.is_object() && value.contains("blob"); }

bool is_blob_file_name(std::string_view name) {
  if (name.empty() || name.size() > 255 || name == "." || name == "..") return false;
  if (name.back() == '.' || name.back() == ' ') return false;
  if (std::any_of(name.begin(), name.end(), [](char c) { return reserved_char(static_cast<unsigned char>(c)); })) return false;
  for (std::size_t i = 0; i < name.size(); ++i)
    if (hidden_char(name, i) > 0) return false;
  return !device_name(name);
}

std::string blob_file_name_for(std::string_view name) {
  // A long name keeps its end (the extension tools read), cut where a UTF-8 character starts.
  constexpr std::size_t kKeep = 200;
  if (name.size() > kKeep) {
    const auto dot = name.rfind('.');
    std::string_view ext = dot != std::string_view::npos && name.size() - dot <= 16 ? name.substr(dot) : std::string_view();
    std::size_t head = kKeep - ext.size();
    while (head > 0 && (static_cast<unsigned char>(name[head]) & 0xC0) == 0x80) --head;
    return blob_file_name_for(std::string(name.substr(0, head)) + std::string(ext));
  }
  std::string out;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (const std::size_t n = hidden_char(name, i); n > 0) {
      out.push_back('_');
      i += n - 1;
    } else {
      out.push_back(reserved_char(static_cast<unsigned char>(name[i])) ? '_' : name[i]);
    }
  }
  while (!out.empty() && (out.back() == '.' || out.back() == ' ')) out.pop_back();
  if (out.empty() || out == "." || out == "..") out = "input";
  if (device_name(out)) out = "_" + out;
  return out;
}

Result<std::vector<BlobRef>> find_blob_refs(const json& payload) {
  std::vector<BlobRef> refs;
  if (!payload.is_object()) return refs;
  for (const auto& [field, value] : payload.items()) {
    if (!is_blob_ref(value)) continue;
    const std::string where = "payload." + field;
    for (const auto& [k, v] : value.items())
      if (k != "blob" && k != "name") return Error(ErrorKind::invalid_input, where + " names a blob and may hold only blob and name");
    const json& d = value["blob"];
    if (!d.is_string() || !is_digest(d.get_ref<const std::string&>()))
      return Error(ErrorKind::invalid_input, where + ".blob must be a SHA-256 digest (64 lowercase hex digits)");
    const auto n = value.find("name");
    if (n == value.end() || !n->is_string() || !is_blob_file_name(n->get_ref<const std::string&>()))
      return Error(ErrorKind::invalid_input, where + ".name must be a plain file name (no path separators or reserved characters)");
    refs.push_back({field, d.get<std::string>(), n->get<std::string>()});
  }
  return refs;
}

const std::vector<std::string>& step_input_fields(std::string_view step) {
  static const std::map<std::string, std::vector<std::string>, std::less<>> fields{
      {std::string(steps::kFfmpegProbe), {"media_path"}},
      {std::string(steps::kFrameSampling), {"video_path"}},
      {std::string(steps::kAudioPostcheck), {"video_path", "audio_path", "render_config"}},
      {std::string(steps::kPoseEstimate), {"video_path"}},
      {std::string(steps::kTtsRenderChunks), {"reference_audio"}},
  };
  static const std::vector<std::string> none;
  const auto it = fields.find(steps::normalize(step));
  return it == fields.end() ? none : it->second;
}

}  // namespace rayvault::protocol
