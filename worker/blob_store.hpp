// The worker's content-addressed blob store (protocol extension "blobs"): the input files a
// controller stages here, each named by the SHA-256 of its bytes.
//
// Layout under its folder: `<aa>/<sha256>` for each blob held (aa: the digest's first two hex
// digits), `.incoming/<sha256>.part` for uploads under way or interrupted. An upload writes to the
// .part file and hashes as it goes; only bytes whose digest matches are renamed into place, so a
// blob that is visible is always whole and right. An interrupted upload keeps its .part file and
// resumes from its size. The folder itself is the index: it is read at start (size, and the
// modification time as last use), so nothing can disagree with it after a crash. Only plain
// files count: no symbolic link in the folder is followed, read or written through.
//
// A quota bounds the bytes held (blobs, partial uploads, and the whole declared size of uploads
// under way). To make room, the least recently used blobs that no queued or running job pins are
// removed, then partial uploads untouched for a day; when that is not enough the upload is refused
// (ErrorKind::storage_full, HTTP 507). Free disk space is checked the same way.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "protocol/json.hpp"
#include "util/error.hpp"

namespace rayvault::worker {

namespace fs = std::filesystem;

struct BlobStoreConfig {
  fs::path dir;
  std::uint64_t quota_bytes = 0;  // 0: no quota (free disk space still bounds it)
  // Free disk space kept beyond every upload: an upload that would leave less is refused.
  std::uint64_t disk_reserve_bytes = std::uint64_t{512} << 20;
  std::chrono::hours stale_partial_after{24};  // interrupted uploads untouched this long may go
  int max_uploads = 16;                        // uploads under way at once
};

struct BlobState {
  bool held = false;
  std::uint64_t size = 0;     // held: the blob's size
  std::uint64_t partial = 0;  // not held: bytes of the upload on disk (kept, to resume from, once it ends)
  bool uploading = false;     // an upload of it is under way now
};

// The largest blob a store takes (1 PiB): a declared size past it is refused as no file's, and
// sums of sizes cannot wrap.
inline constexpr std::uint64_t kMaxBlobBytes = std::uint64_t{1} << 50;

// True for a digest as blobs are named: 64 lowercase hex digits.
bool is_blob_digest(std::string_view text);

class BlobStore;

// One upload under way: bytes [offset, size) of a blob, written as they come. Destroyed without
// finish(), what arrived is kept as the partial upload (to resume from).
class BlobUpload {
 public:
  ~BlobUpload();
  BlobUpload(const BlobUpload&) = delete;
  BlobUpload& operator=(const BlobUpload&) = delete;
  // Error (invalid_input) past the declared size; (io) when the disk refuses the bytes. After an
  // error the upload is void and its partial file gone.
  Status write(const char* data, std::size_t n);
  // Checks that every byte arrived and hashes to the digest, and makes the blob visible. A
  // mismatch is error (invalid_input) and keeps nothing.
  Status finish();
  std::uint64_t expected() const { return size_ - offset_; }

 private:
  friend class BlobStore;
  struct Impl;
  BlobUpload(BlobStore& store, std::string digest, std::uint64_t offset, std::uint64_t size);
  Status flush();
  void abandon(bool keep);
  BlobStore& store_;
  std::string digest_;
  std::uint64_t offset_, size_, received_ = 0;
  std::unique_ptr<Impl> impl_;
  bool done_ = false;
};

class BlobStore {
 public:
  // Opens (creating) the folder and reads what it holds. Error (io) when it cannot be used.
  static Result<std::unique_ptr<BlobStore>> open(BlobStoreConfig config);
  ~BlobStore();

  // What the store holds of the blob. A blob held counts as used now: the controller that asked
  // is about to name it in a job, so it is the last to be evicted. A held blob whose file went or
  // changed size is dropped (not held: it is sent again), unless jobs pin it.
  BlobState stat(const std::string& digest);

  // Whether an upload of the blob (its whole size) would find room now, evicting what may go;
  // nothing is evicted or promised. The error begin_upload would give (storage_full,
  // invalid_input for a size no file has).
  Status room_for(const std::string& digest, std::uint64_t size);

  // Starts an upload of bytes [offset, size) of the blob. offset must be 0 (start over) or the
  // size of the partial upload kept. Errors: invalid_input (a bad digest, offset past size),
  // conflict (held already, an upload of it under way, or an offset that is not the partial's
  // size: the message names it), unavailable (too many uploads at once), storage_full (no room
  // even after eviction), io.
  Result<std::unique_ptr<BlobUpload>> begin_upload(const std::string& digest, std::uint64_t offset, std::uint64_t size);

  // Takes a file this worker made and hashed itself (a job's artifact) as the blob of that digest,
  // through a hard link, so that a job chained after it here needs no upload. Nothing happens
  // when it is held already, when the quota has no free room (nothing is evicted for it), when
  // the file is not a plain file with one link, or where hard links are not possible.
  void adopt(const std::string& digest, const fs::path& file);

  // Marks blobs as needed by a job (queued or running): they are not evicted until unpin. Each is
  // also used now (last use). Error (conflict, code BLOB_MISSING) naming the first not held (a
  // blob no job pins whose file went or changed size is dropped first); then nothing is pinned.
  Status pin(const std::string& job_id, const std::vector<std::string>& digests);
  void unpin(const std::string& job_id);
  // Jobs pinning the blob now (each may link it into its inputs while it runs).
  int pin_count(const std::string& digest);

  // The held blob's file (empty when not held).
  fs::path path_of(const std::string& digest);

  // {"quota_bytes", "used_bytes", "blobs", "free_disk_bytes"} for caps.
  protocol::json describe();

  const BlobStoreConfig& config() const { return config_; }

 private:
  friend class BlobUpload;
  explicit BlobStore(BlobStoreConfig config);
  struct Held {
    std::uint64_t size = 0;
    fs::file_time_type last_use;
  };
  struct Partial {
    std::uint64_t size = 0;
    fs::file_time_type last_write;
    std::uint64_t declared = 0;  // under way: the blob's whole size
    bool active = false;         // an upload of it is under way
  };
  fs::path blob_path(const std::string& digest) const;
  fs::path partial_path(const std::string& digest) const;
  std::uint64_t used_locked() const;
  // A held blob whose file went, is no plain file, or changed size behind the store's back is
  // dropped (its file too) unless jobs pin it; true when dropped. *size_now: its file's size now.
  bool drop_if_changed_locked(const std::string& digest, std::uint64_t* size_now = nullptr);
  // Frees `needed` bytes under the quota and (new_bytes: they take disk space) on disk, evicting
  // (unless !evict: then it only says whether it could); error storage_full when it cannot.
  Status make_room_locked(std::uint64_t needed, const std::string& digest, bool new_bytes = true, bool evict = true);
  // Called by BlobUpload as it ends.
  void upload_ended(const std::string& digest, std::uint64_t partial_size, bool kept);
  void upload_finished(const std::string& digest, std::uint64_t size);
  void upload_progress(const std::string& digest, std::uint64_t written);  // bytes on disk so far

  BlobStoreConfig config_;
  std::mutex mu_;
  std::map<std::string, Held> held_;
  std::map<std::string, Partial> partial_;
  std::map<std::string, std::set<std::string>> pins_;  // job_id -> digests
  std::map<std::string, int> pin_counts_;              // digest -> jobs pinning it
  int uploads_ = 0;
};

}  // namespace rayvault::worker
