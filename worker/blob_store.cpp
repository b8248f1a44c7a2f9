// The blob store: content-addressed input files, quota and least-recently-used eviction.
#include "worker/blob_store.hpp"

#include <algorithm>
#include <fstream>
#include <vector>

#include "platform/files.hpp"
#include "protocol/errors.hpp"
#include "util/crypto.hpp"
#include "util/files.hpp"

namespace rayvault::worker {

namespace {
constexpr std::size_t kWriteBlock = 1u << 20;  // bytes gathered before each write to disk
constexpr std::string_view kPartSuffix = ".part";
}  // namespace

bool is_blob_digest(std::string_view text) {
  return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

struct BlobUpload::Impl {
  std::ofstream out;
  util::Sha256Stream hash;
  std::string buffer;
};

BlobUpload::BlobUpload(BlobStore& store, std::string digest, std::uint64_t offset, std::uint64_t size)
    : store_(store), digest_(std::move(digest)), offset_(offset), size_(size), impl_(std::make_unique<Impl>()) {}

BlobUpload::~BlobUpload() {
  if (!done_) abandon(true);
}

Status BlobUpload::flush() {
  if (impl_->buffer.empty()) return ok_status();
  impl_->out.write(impl_->buffer.data(), static_cast<std::streamsize>(impl_->buffer.size()));
  impl_->buffer.clear();
  if (!impl_->out) return Error(ErrorKind::io, "cannot write the blob's upload file (disk full?)");
  store_.upload_progress(digest_, offset_ + received_);
  return ok_status();
}

void BlobUpload::abandon(bool keep) {
  done_ = true;
  bool kept = keep && flush().ok();
  impl_->out.close();
  kept = kept && !impl_->out.fail();
  std::error_code ec;
  const fs::path part = store_.partial_path(digest_);
  if (!kept) fs::remove(part, ec);
  store_.upload_ended(digest_, kept ? offset_ + received_ : 0, kept);
}

Status BlobUpload::write(const char* data, std::size_t n) {
  if (done_) return Error(ErrorKind::internal, "the upload has ended");
  if (n > size_ - offset_ - received_) {
    abandon(false);
    return Error(ErrorKind::invalid_input, "more bytes than the blob's declared size (" + std::to_string(size_) + ")");
  }
  impl_->hash.update(data, n);
  received_ += n;
  impl_->buffer.append(data, n);
  if (impl_->buffer.size() >= kWriteBlock) {
    if (auto st = flush(); !st) {
      abandon(false);
      return st;
    }
  }
  return ok_status();
}

Status BlobUpload::finish() {
  if (done_) return Error(ErrorKind::internal, "the upload has ended");
  if (offset_ + received_ != size_) {
    abandon(true);
    return Error(ErrorKind::invalid_input, "the upload ended after " + std::to_string(offset_ + received_) + " of " +
                                               std::to_string(size_) + " bytes");
  }
  if (auto st = flush(); !st) {
    abandon(false);
    return st;
  }
  impl_->out.close();
  if (impl_->out.fail()) {
    abandon(false);
    return Error(ErrorKind::io, "cannot write the blob's upload file (disk full?)");
  }
  const std::string got = impl_->hash.finish_hex();
  if (got != digest_) {
    abandon(false);
    return Error(ErrorKind::invalid_input, "the bytes do not match the digest: they hash to " + got + ", not " + digest_ +
                                               "; nothing was kept");
  }
  const fs::path part = store_.partial_path(digest_), final_path = store_.blob_path(digest_);
  // On the disk before it is visible, and its name after: a power cut leaves no short blob under
  // its digest's name (the store trusts the names it finds at start).
  if (auto st = platform::sync_file(part); !st) {
    abandon(false);
    return st;
  }
  std::error_code ec;
  fs::create_directories(final_path.parent_path(), ec);
  fs::rename(part, final_path, ec);
  if (ec) {
    abandon(false);
    return Error(ErrorKind::io, "cannot move the blob into place: " + ec.message());
  }
  (void)platform::sync_folder(final_path.parent_path());  // at worst the blob is sent again
  done_ = true;
  store_.upload_finished(digest_, size_);
  return ok_status();
}

BlobStore::BlobStore(BlobStoreConfig config) : config_(std::move(config)) {}
BlobStore::~BlobStore() = default;

fs::path BlobStore::blob_path(const std::string& digest) const { return config_.dir / digest.substr(0, 2) / digest; }
fs::path BlobStore::partial_path(const std::string& digest) const {
  return config_.dir / ".incoming" / (digest + std::string(kPartSuffix));
}

Result<std::unique_ptr<BlobStore>> BlobStore::open(BlobStoreConfig config) {
  std::error_code ec;
  fs::create_directories(config.dir / ".incoming", ec);
  if (ec) return Error(ErrorKind::io, "cannot create the blob store " + util::u8(config.dir) + ": " + ec.message());
  std::unique_ptr<BlobStore> store(new BlobStore(std::move(config)));
  const fs::path& dir = store->config_.dir;
  // Held blobs: <aa>/<digest>, a regular file whose folder matches its name. Anything else is
  // left alone (and not counted).
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string prefix = util::u8(it->path().filename());
    if (prefix.size() != 2 || !fs::is_directory(it->symlink_status(ec))) continue;  // no links followed
    for (auto f = fs::directory_iterator(it->path(), ec); !ec && f != fs::directory_iterator(); f.increment(ec)) {
      const std::string name = util::u8(f->path().filename());
      std::error_code fe;
      if (!is_blob_digest(name) || name.compare(0, 2, prefix) != 0 || !fs::is_regular_file(f->symlink_status(fe))) continue;
      const auto size = fs::file_size(f->path(), fe);
      const auto when = fs::last_write_time(f->path(), fe);
      if (!fe) store->held_[name] = Held{size, when};
    }
    ec.clear();
  }
  ec.clear();
  for (auto it = fs::directory_iterator(dir / ".incoming", ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = util::u8(it->path().filename());
    std::error_code fe;
    if (name.size() != 64 + kPartSuffix.size() || !name.ends_with(kPartSuffix) || !fs::is_regular_file(it->symlink_status(fe)))
      continue;
    const std::string digest = name.substr(0, 64);
    if (!is_blob_digest(digest)) continue;
    if (store->held_.count(digest)) {  // renamed into place before a crash took the rest
      fs::remove(it->path(), fe);
      continue;
    }
    const auto size = fs::file_size(it->path(), fe);
    const auto when = fs::last_write_time(it->path(), fe);
    if (!fe) store->partial_[digest] = Partial{size, when, 0, false};
  }
  if (ec) return Error(ErrorKind::io, "cannot read the blob store " + util::u8(dir) + ": " + ec.message());
  return store;
}

bool BlobStore::drop_if_changed_locked(const std::string& digest, std::uint64_t* size_now) {
  const auto h = held_.find(digest);
  if (h == held_.end()) return false;
  std::error_code ec;
  const fs::path file = blob_path(digest);
  const bool plain = fs::is_regular_file(fs::symlink_status(file, ec));
  const std::uint64_t now = plain ? fs::file_size(file, ec) : 0;
  if (size_now) *size_now = ec ? 0 : now;
  if (plain && !ec && now == h->second.size) return false;
  if (pin_counts_.count(digest)) return false;  // the jobs that hold it see what they see
  held_.erase(h);
  fs::remove(file, ec);
  return true;
}

BlobState BlobStore::stat(const std::string& digest) {
  std::lock_guard lock(mu_);
  BlobState s;
  std::uint64_t size_now = 0;
  drop_if_changed_locked(digest, &size_now);
  if (const auto h = held_.find(digest); h != held_.end()) {
    s.held = true;
    s.size = size_now;  // a pinned blob that changed says so by its size
    h->second.last_use = fs::file_time_type::clock::now();
  } else if (const auto p = partial_.find(digest); p != partial_.end()) {
    s.partial = p->second.size;
    s.uploading = p->second.active;
  }
  return s;
}

std::uint64_t BlobStore::used_locked() const {
  std::uint64_t used = 0;
  for (const auto& [d, h] : held_) used += h.size;
  for (const auto& [d, p] : partial_) used += p.active ? std::max(p.size, p.declared) : p.size;
  return used;
}

Status BlobStore::room_for(const std::string& digest, std::uint64_t size) {
  if (size > kMaxBlobBytes) return Error(ErrorKind::invalid_input, "size is larger than any blob a worker takes");
  std::lock_guard lock(mu_);
  if (held_.count(digest)) return ok_status();
  const auto p = partial_.find(digest);
  if (p != partial_.end() && p->second.active) return ok_status();  // its room is promised to the upload under way
  const std::uint64_t have = p == partial_.end() ? 0 : p->second.size;
  return make_room_locked(size > have ? size - have : 0, digest, true, false);
}

Status BlobStore::make_room_locked(std::uint64_t needed, const std::string& digest, bool new_bytes, bool evict) {
  if (config_.quota_bytes > 0 && needed > config_.quota_bytes)
    return Error(ErrorKind::storage_full, "the blob is larger than this worker's blob quota (" +
                                              std::to_string(config_.quota_bytes) + " bytes)");
  // What must go: past the quota, and (bytes that take disk space) past the disk's free space less
  // the reserve and what uploads under way have still to write.
  std::uint64_t outstanding = 0;
  for (const auto& [d, p] : partial_)
    if (p.active && p.declared > p.size) outstanding += p.declared - p.size;
  std::error_code ec;
  const auto space = fs::space(config_.dir, ec);
  const std::uint64_t free_disk = ec ? UINT64_MAX : space.available;
  const std::uint64_t used = used_locked();
  const std::uint64_t over_quota =
      config_.quota_bytes > 0 && used + needed > config_.quota_bytes ? used + needed - config_.quota_bytes : 0;
  const std::uint64_t wanted_disk = needed + config_.disk_reserve_bytes + outstanding;
  const std::uint64_t over_disk = new_bytes && wanted_disk > free_disk ? wanted_disk - free_disk : 0;
  const std::uint64_t to_free = std::max(over_quota, over_disk);
  if (to_free == 0) return ok_status();

  // Candidates, in the order they go: blobs no job pins, least recently used first, then
  // interrupted uploads untouched for long. Nothing goes unless together they make the room.
  struct Candidate {
    std::string digest;
    bool blob;
    std::uint64_t size;
  };
  std::vector<std::pair<fs::file_time_type, Candidate>> blobs, parts;
  for (const auto& [d, h] : held_)
    if (!pin_counts_.count(d)) blobs.push_back({h.last_use, {d, true, h.size}});
  const auto stale_before = fs::file_time_type::clock::now() - config_.stale_partial_after;
  for (const auto& [d, p] : partial_)
    if (!p.active && d != digest && p.last_write <= stale_before) parts.push_back({p.last_write, {d, false, p.size}});
  auto by_time = [](const auto& a, const auto& b) { return a.first < b.first; };
  std::sort(blobs.begin(), blobs.end(), by_time);
  std::sort(parts.begin(), parts.end(), by_time);
  std::uint64_t evictable = 0;
  for (const auto& c : blobs) evictable += c.second.size;
  for (const auto& c : parts) evictable += c.second.size;
  if (evictable < to_free) {
    std::uint64_t pinned = 0, kept = 0, under_way = 0;
    for (const auto& [d, n] : pin_counts_)
      if (const auto h = held_.find(d); h != held_.end()) pinned += h->second.size;
    for (const auto& [d, p] : partial_) (p.active ? under_way : kept) += p.active ? std::max(p.size, p.declared) : p.size;
    return Error(ErrorKind::storage_full,
                 "no room for " + std::to_string(needed) + " more bytes: the blob store holds " + std::to_string(used) +
                     " bytes (quota " + (config_.quota_bytes ? std::to_string(config_.quota_bytes) : std::string("none")) +
                     ", " + std::to_string(pinned) + " of them needed by queued or running jobs, " + std::to_string(under_way) +
                     " taken by uploads under way, " + std::to_string(kept) +
                     " by interrupted uploads kept a day to resume) and the disk has " +
                     std::to_string(free_disk) + " bytes free (" + std::to_string(config_.disk_reserve_bytes) +
                     " kept free, " + std::to_string(outstanding) + " promised to uploads under way)");
  }
  if (!evict) return ok_status();
  std::uint64_t freed = 0;
  for (auto* list : {&blobs, &parts}) {
    for (const auto& [when, c] : *list) {
      if (freed >= to_free) break;
      std::error_code rm;
      fs::remove(c.blob ? blob_path(c.digest) : partial_path(c.digest), rm);
      if (rm) continue;  // one that cannot go (a file held open elsewhere) does not stop the others
      if (c.blob) held_.erase(c.digest);
      else partial_.erase(c.digest);
      freed += c.size;
    }
  }
  if (freed < to_free)
    return Error(ErrorKind::storage_full, "no room for " + std::to_string(needed) +
                                              " more bytes: blobs that could go could not be removed");
  return ok_status();
}

Result<std::unique_ptr<BlobUpload>> BlobStore::begin_upload(const std::string& digest, std::uint64_t offset, std::uint64_t size) {
  if (!is_blob_digest(digest)) return Error(ErrorKind::invalid_input, "a blob is named by its SHA-256: 64 lowercase hex digits");
  if (offset > size) return Error(ErrorKind::invalid_input, "offset is past the blob's size");
  if (size > kMaxBlobBytes) return Error(ErrorKind::invalid_input, "size is larger than any blob a worker takes");
  {
    std::lock_guard lock(mu_);
    if (held_.count(digest)) return Error(ErrorKind::conflict, "blob " + digest + " is held already");
    const auto p = partial_.find(digest);
    const std::uint64_t have = p == partial_.end() ? 0 : p->second.size;
    if (p != partial_.end() && p->second.active)
      return Error(ErrorKind::conflict, "an upload of blob " + digest + " is under way; ask again when it has ended");
    if (offset != 0 && offset != have)
      return Error(ErrorKind::conflict, "this worker holds " + std::to_string(have) + " bytes of blob " + digest +
                                            ": resume from offset " + std::to_string(have) + " (or 0 to start over)");
    if (uploads_ >= config_.max_uploads)
      return Error(ErrorKind::unavailable, "the worker has " + std::to_string(uploads_) + " uploads under way; try again");
    // What this upload adds to the store: its whole size, less what its partial file already counts.
    if (auto st = make_room_locked(size > have ? size - have : 0, digest); !st) return st.error();
    // Under way from here: no other upload of it starts, and its room is promised.
    auto& entry = partial_[digest];
    entry.size = offset;
    entry.declared = size;
    entry.active = true;
    entry.last_write = fs::file_time_type::clock::now();
    ++uploads_;
  }
  // The files are touched without the lock: a large kept part takes a while to hash.
  std::unique_ptr<BlobUpload> up(new BlobUpload(*this, digest, offset, size));
  const fs::path part = partial_path(digest);
  {
    // Only a plain file of its own is written: a link or a pipe put in its place is removed (never
    // followed, never opened), and what it held is not resumed.
    std::error_code le;
    const auto st = fs::symlink_status(part, le);
    if (fs::exists(st) && !fs::is_regular_file(st)) {
      up->done_ = true;
      fs::remove(part, le);
      upload_ended(digest, 0, false);
      return Error(ErrorKind::conflict, "the kept part of blob " + digest + " was not a plain file; it is dropped: start over");
    }
  }
  auto fail = [&](const std::string& message) -> Error {
    up->done_ = true;
    std::error_code ec;
    fs::remove(part, ec);
    upload_ended(digest, 0, false);
    return Error(ErrorKind::io, message);
  };
  if (offset > 0) {
    // Resumed: the bytes kept are hashed first, so the digest covers the whole blob.
    std::ifstream in(part, std::ios::binary);
    std::vector<char> block(kWriteBlock);
    std::uint64_t left = offset;
    while (in && left > 0) {
      in.read(block.data(), static_cast<std::streamsize>(std::min<std::uint64_t>(block.size(), left)));
      const auto got = static_cast<std::uint64_t>(in.gcount());
      up->impl_->hash.update(block.data(), got);
      left -= got;
    }
    if (left > 0) return fail("cannot read the kept part of blob " + digest + "; it is dropped: start over");
    up->impl_->out.open(part, std::ios::binary | std::ios::app);
  } else {
    up->impl_->out.open(part, std::ios::binary | std::ios::trunc);
  }
  if (!up->impl_->out) return fail("cannot open the upload file of blob " + digest);
  return up;
}

void BlobStore::upload_ended(const std::string& digest, std::uint64_t partial_size, bool kept) {
  std::lock_guard lock(mu_);
  --uploads_;
  if (!kept) {
    partial_.erase(digest);
    return;
  }
  auto& p = partial_[digest];
  p.size = partial_size;
  p.declared = 0;
  p.active = false;
  p.last_write = fs::file_time_type::clock::now();
}

void BlobStore::upload_progress(const std::string& digest, std::uint64_t written) {
  std::lock_guard lock(mu_);
  if (const auto p = partial_.find(digest); p != partial_.end()) {
    p->second.size = written;
    p->second.last_write = fs::file_time_type::clock::now();
  }
}

void BlobStore::upload_finished(const std::string& digest, std::uint64_t size) {
  std::lock_guard lock(mu_);
  --uploads_;
  partial_.erase(digest);
  held_[digest] = Held{size, fs::file_time_type::clock::now()};
}

void BlobStore::adopt(const std::string& digest, const fs::path& file) {
  if (!is_blob_digest(digest)) return;
  std::lock_guard lock(mu_);
  if (held_.count(digest)) return;
  std::error_code ec;
  // Only a plain file that nothing else links: a blob's bytes are the ones its digest names.
  if (!fs::is_regular_file(fs::symlink_status(file, ec)) || fs::hard_link_count(file, ec) != 1 || ec) return;
  const auto size = fs::file_size(file, ec);
  // Only into room the quota has free: an artifact never pushes out a staged input.
  if (ec || (config_.quota_bytes > 0 && used_locked() + size > config_.quota_bytes)) return;
  const fs::path dest = blob_path(digest);
  fs::create_directories(dest.parent_path(), ec);
  if (!ec) fs::create_hard_link(file, dest, ec);
  if (ec) return;
  held_[digest] = Held{size, fs::file_time_type::clock::now()};
  if (const auto p = partial_.find(digest); p != partial_.end() && !p->second.active) {
    fs::remove(partial_path(digest), ec);
    partial_.erase(p);
  }
}

int BlobStore::pin_count(const std::string& digest) {
  std::lock_guard lock(mu_);
  const auto it = pin_counts_.find(digest);
  return it == pin_counts_.end() ? 0 : it->second;
}

Status BlobStore::pin(const std::string& job_id, const std::vector<std::string>& digests) {
  std::lock_guard lock(mu_);
  for (const auto& d : digests) drop_if_changed_locked(d);
  for (const auto& d : digests)
    if (!held_.count(d))
      return Error(ErrorKind::conflict,
                   "blob " + d + " is not held by this worker: upload it first (PUT /blobs/" + d + ")",
                   std::string(protocol::codes::kBlobMissing));
  auto& mine = pins_[job_id];
  const auto now = fs::file_time_type::clock::now();
  for (const auto& d : digests) {
    if (mine.insert(d).second) ++pin_counts_[d];
    held_[d].last_use = now;
    std::error_code ec;
    fs::last_write_time(blob_path(d), now, ec);  // last use survives a restart
  }
  return ok_status();
}

void BlobStore::unpin(const std::string& job_id) {
  std::lock_guard lock(mu_);
  const auto it = pins_.find(job_id);
  if (it == pins_.end()) return;
  for (const auto& d : it->second)
    if (--pin_counts_[d] <= 0) pin_counts_.erase(d);
  pins_.erase(it);
}

fs::path BlobStore::path_of(const std::string& digest) {
  std::lock_guard lock(mu_);
  return held_.count(digest) ? blob_path(digest) : fs::path();
}

protocol::json BlobStore::describe() {
  std::lock_guard lock(mu_);
  std::error_code ec;
  const auto space = fs::space(config_.dir, ec);
  return protocol::json{{"quota_bytes", config_.quota_bytes},
                        {"used_bytes", used_locked()},
                        {"blobs", held_.size()},
                        {"free_disk_bytes", ec ? 0 : space.available}};
}

}  // namespace rayvault::worker
