// Finding, hashing and uploading a job's input files.
#include "controller/staging.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>

#include "protocol/blobs.hpp"
#include "protocol/envelope.hpp"
#include "util/crypto.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"

namespace rayvault::controller {
namespace {

namespace fs = std::filesystem;
using protocol::json;

// "~" and "~/..." as the workers read a path (the user's home folder).
fs::path expand_home(const std::string& text) {
  if (text == "~" || text.rfind("~/", 0) == 0 || text.rfind("~\\", 0) == 0) {
    const char* home = std::getenv("HOME");
#if defined(_WIN32)
    if (!home) home = std::getenv("USERPROFILE");
#endif
    if (home && *home) return util::path_from_utf8(std::string(home) + text.substr(1));
  }
  return util::path_from_utf8(text);
}

// Digests of files hashed by this process, by path, size and modification time: a batch names
// the same render in many jobs, and checks each job before it runs.
struct HashKey {
  std::string path;
  std::uintmax_t size;
  fs::file_time_type mtime;
  bool operator<(const HashKey& o) const { return std::tie(path, size, mtime) < std::tie(o.path, o.size, o.mtime); }
};
std::mutex g_hash_mu;
std::map<HashKey, std::string> g_hashes;

Result<std::string> digest_of(const fs::path& path, std::uintmax_t size, fs::file_time_type mtime) {
  const HashKey key{util::u8(fs::absolute(path)), size, mtime};
  {
    std::lock_guard lock(g_hash_mu);
    if (const auto it = g_hashes.find(key); it != g_hashes.end()) return it->second;
  }
  auto sha = util::sha256_file_hex(path);
  if (!sha) return sha;
  std::lock_guard lock(g_hash_mu);
  g_hashes[key] = *sha;
  return sha;
}

Result<StagedFile> input_file(const std::string& field, const std::string& text) {
  const std::string where = "payload." + field;
  if (util::trim(text).empty()) return Error(ErrorKind::invalid_input, where + " names no file");
  const fs::path path = expand_home(util::trim(text));
  std::error_code ec;
  const auto st = fs::status(path, ec);
  if (ec || !fs::exists(st))
    return Error(ErrorKind::invalid_input, where + ": no such file on this machine: " + util::u8(path) +
                                               " (to name a path on the worker itself, use --no-stage)");
  if (fs::is_directory(st)) return Error(ErrorKind::invalid_input, where + " is a folder, not a file: " + util::u8(path));
  if (!fs::is_regular_file(st))
    return Error(ErrorKind::invalid_input, where + " is not a regular file (a device, pipe or socket): " + util::u8(path));
  const auto size = fs::file_size(path, ec);
  const auto mtime = fs::last_write_time(path, ec);
  if (ec) return Error(ErrorKind::invalid_input, where + ": cannot read " + util::u8(path) + ": " + ec.message());
  auto digest = digest_of(path, size, mtime);
  if (!digest) return Error(ErrorKind::invalid_input, where + ": cannot read " + util::u8(path) + ": " + digest.error().message);
  return StagedFile{field, path, *digest, size, protocol::blob_file_name_for(util::u8(path.filename()))};
}

}  // namespace

Result<StagedInputs> find_job_inputs(std::string_view step, const json& payload, const std::vector<std::string>& extra,
                                     const std::string& given_hash) {
  StagedInputs out;
  std::vector<std::string> fields;
  for (const auto& f : protocol::step_input_fields(step)) {
    const auto it = payload.find(f);
    // A render_config given as an object, or an empty field, names no file.
    if (it != payload.end() && it->is_string() && !util::trim(it->get_ref<const std::string&>()).empty()) fields.push_back(f);
  }
  for (const auto& f : extra) {
    const auto it = payload.find(f);
    if (it == payload.end() || !it->is_string())
      return Error(ErrorKind::invalid_input, "--input " + f + ": payload." + f + " must be the path of a file");
    if (std::find(fields.begin(), fields.end(), f) == fields.end()) fields.push_back(f);
  }
  if (fields.empty()) return out;
  out.payload = payload;
  for (const auto& f : fields) {
    auto file = input_file(f, payload[f].get<std::string>());
    if (!file) return file.error();
    out.payload[f] = protocol::blob_ref_json(file->digest, file->name);
    out.files.push_back(std::move(file).value());
  }
  out.inputs_hash = given_hash.empty() ? protocol::inputs_hash(out.payload) : given_hash;
  return out;
}

Result<UploadReport> upload_inputs(WorkerClient& client, const std::vector<StagedFile>& files) {
  UploadReport report;
  std::map<std::string, bool> done;  // one blob named by two fields is sent once
  // What the worker says of a blob, read field by field (an answer of another shape: unusable).
  struct Seen {
    bool held = false, uploading = false;
    std::uint64_t partial = 0;
  };
  auto ask = [&](const StagedFile& f) -> Result<Seen> {
    auto state = client.blob_state(f.digest, f.size);
    if (!state) return state.error();
    if (!state->is_object()) return Error(ErrorKind::unavailable, "the worker's answer about blob " + f.digest + " is not an object");
    Seen seen;
    seen.held = state->value("held", false) == true;
    seen.uploading = state->value("uploading", false) == true;
    // No room there now: said before the file is sent (a refusal of a large body under way may
    // reach us only as a cut connection).
    if (!seen.held && state->value("room", true) == false) {
      const auto d = state->find("room_detail");
      return Error(ErrorKind::storage_full, "the worker has no room for " + util::u8(f.path) + " (" + std::to_string(f.size) +
                                                " bytes): " + (d != state->end() && d->is_string() ? d->get<std::string>() : "no reason given"));
    }
    if (const auto p = state->find("partial"); p != state->end() && p->is_number_unsigned() && p->get<std::uint64_t>() <= f.size)
      seen.partial = p->get<std::uint64_t>();
    // A held blob of another size is not these bytes (its copy there was changed): not this worker.
    if (const auto z = state->find("size"); seen.held && z != state->end() && z->is_number_unsigned() && z->get<std::uint64_t>() != f.size)
      return Error(ErrorKind::conflict, "the worker's copy of blob " + f.digest + " has " + std::to_string(z->get<std::uint64_t>()) +
                                            " bytes, not " + std::to_string(f.size) + ": it was changed there");
    return seen;
  };
  for (const auto& f : files) {
    if (done.count(f.digest)) continue;
    done[f.digest] = true;
    auto seen = ask(f);
    if (!seen) return seen.error();
    if (seen->held) {
      ++report.held;
      continue;
    }
    // Resume what an interrupted upload left. Another upload of the same bytes under way (another
    // job of a batch, or a dropped one the worker has not seen go yet: up to its idle timeout when
    // the link went down) is waited for while it makes progress, and 40 s past its last progress.
    std::uint64_t offset = seen->partial;
    bool restarted = false;
    auto progress_at = std::chrono::steady_clock::now();
    std::uint64_t last_partial = seen->partial;
    std::chrono::milliseconds pause{100};
    while (true) {
      std::error_code ec;
      if (fs::file_size(f.path, ec) != f.size || ec)
        return Error(ErrorKind::invalid_input, "payload." + f.field + ": " + util::u8(f.path) + " changed while the job was being sent");
      auto sent = client.put_blob(f.digest, f.path, offset, f.size);
      if (sent) {
        const bool stored = !sent->is_object() || sent->value("stored", true) != false;
        if (stored) {
          report.bytes_sent += f.size - offset;
          ++report.uploaded;
        } else {
          ++report.held;
        }
        break;
      }
      const ErrorKind kind = sent.error().kind;
      // A resumed part the worker refuses (it kept bytes across a crash that never were the file's):
      // start over, once.
      if (kind == ErrorKind::invalid_input && offset > 0 && !restarted) {
        restarted = true;
        offset = 0;
        continue;
      }
      if (kind == ErrorKind::invalid_input)
        return Error(ErrorKind::invalid_input, "payload." + f.field + ": the worker refused " + util::u8(f.path) + " (" +
                                                   sent.error().message + "); was it changed while being sent?");
      // A refusal comes before the body is read, so it may reach us as a send cut short: ask.
      if (kind != ErrorKind::conflict && kind != ErrorKind::unavailable) return sent.error();
      auto again = ask(f);
      if (!again) return kind == ErrorKind::unavailable ? sent.error() : again.error();
      if (again->held) {
        ++report.held;
        break;
      }
      const auto now = std::chrono::steady_clock::now();
      if (again->partial > last_partial) {  // progress only when it grows (a bounded wait)
        last_partial = again->partial;
        progress_at = now;
      }
      if (now - progress_at > std::chrono::seconds(40)) return sent.error();
      offset = again->partial;
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::milliseconds(1000));
    }
  }
  return report;
}

}  // namespace rayvault::controller
