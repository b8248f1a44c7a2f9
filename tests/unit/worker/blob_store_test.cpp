// The blob store on its own: what a restart finds in its folder, uploads that fail to start,
// room made only when it can be made, pins, and artifacts taken in as blobs.
#include <doctest/doctest.h>

#include <fstream>

#include "protocol/blobs.hpp"
#include "util/crypto.hpp"
#include "util/files.hpp"
#include "worker/blob_store.hpp"

using namespace rayvault;
using namespace rayvault::worker;

namespace {

struct Folder {
  fs::path path = fs::temp_directory_path() / ("rv-blobs-" + util::random_hex(6));
  ~Folder() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::unique_ptr<BlobStore> open_store(const fs::path& dir, std::uint64_t quota = 0) {
  BlobStoreConfig c;
  c.dir = dir;
  c.quota_bytes = quota;
  c.disk_reserve_bytes = 0;
  auto s = BlobStore::open(c);
  REQUIRE(s.ok());
  return std::move(s).value();
}

// Uploads `data` whole; the store's answer.
Status put(BlobStore& store, const std::string& data) {
  auto up = store.begin_upload(util::sha256_hex(data), 0, data.size());
  if (!up) return up.error();
  if (auto st = (*up)->write(data.data(), data.size()); !st) return st;
  return (*up)->finish();
}

}  // namespace

TEST_CASE("worker::BlobStore reads what it holds after a restart and ignores what is not its own") {
  Folder f;
  const std::string a(1000, 'a'), b(3000, 'b');
  {
    auto store = open_store(f.path);
    REQUIRE(put(*store, a).ok());
    auto up = store->begin_upload(util::sha256_hex(b), 0, b.size());
    REQUIRE(up.ok());
    REQUIRE((*up)->write(b.data(), 1200).ok());
  }  // the upload is dropped: its part is kept
  // Strays: a file under a wrong prefix, a name that is not a digest, a part of another shape.
  REQUIRE(util::write_file_atomic(f.path / "zz" / util::sha256_hex(a), "x").ok());
  REQUIRE(util::write_file_atomic(f.path / util::sha256_hex(a).substr(0, 2) / "notes.txt", "x").ok());
  REQUIRE(util::write_file_atomic(f.path / ".incoming" / "junk.part", "x").ok());
  auto store = open_store(f.path);
  CHECK(store->stat(util::sha256_hex(a)).held);
  CHECK(store->stat(util::sha256_hex(a)).size == 1000);
  const BlobState part = store->stat(util::sha256_hex(b));
  CHECK_FALSE(part.held);
  CHECK(part.partial == 1200);
  CHECK_FALSE(part.uploading);
  CHECK(store->describe()["blobs"] == 1);
  CHECK(store->describe()["used_bytes"] == 2200);
  // The upload resumes from the part and the whole is checked.
  auto up = store->begin_upload(util::sha256_hex(b), 1200, b.size());
  REQUIRE(up.ok());
  REQUIRE((*up)->write(b.data() + 1200, b.size() - 1200).ok());
  REQUIRE((*up)->finish().ok());
  CHECK(util::read_file(store->path_of(util::sha256_hex(b))).value() == b);
}

TEST_CASE("worker::BlobStore refuses an upload it cannot start and stays usable") {
  Folder f;
  auto store = open_store(f.path);
  const std::string a(1000, 'a');
  // The folder for uploads went (a cleaner, an admin): the upload fails, the store goes on.
  fs::remove_all(f.path / ".incoming");
  auto up = store->begin_upload(util::sha256_hex(a), 0, a.size());
  REQUIRE_FALSE(up.ok());
  CHECK(up.error().kind == ErrorKind::io);
  CHECK_FALSE(store->stat(util::sha256_hex(a)).uploading);
  fs::create_directories(f.path / ".incoming");
  CHECK(put(*store, a).ok());
  // Bytes past the declared size, and bytes that do not hash to the name: nothing kept.
  const std::string b(500, 'b');
  auto longer = store->begin_upload(util::sha256_hex(b), 0, 100);
  REQUIRE(longer.ok());
  CHECK((*longer)->write(b.data(), b.size()).error().kind == ErrorKind::invalid_input);
  auto wrong = store->begin_upload(util::sha256_hex(b), 0, b.size());
  REQUIRE(wrong.ok());
  const std::string c(500, 'c');
  REQUIRE((*wrong)->write(c.data(), c.size()).ok());
  CHECK((*wrong)->finish().error().kind == ErrorKind::invalid_input);
  CHECK_FALSE(store->stat(util::sha256_hex(b)).held);
  CHECK(store->stat(util::sha256_hex(b)).partial == 0);
  CHECK_FALSE(fs::exists(f.path / ".incoming" / (util::sha256_hex(b) + ".part")));
  // An empty blob is a blob.
  CHECK(put(*store, "").ok());
  CHECK(store->stat(util::sha256_hex("")).held);
}

TEST_CASE("worker::BlobStore makes room only when it can and never from pinned blobs") {
  Folder f;
  auto store = open_store(f.path, 3000);
  const std::string a(1000, 'a'), b(1000, 'b'), c(1000, 'c'), d(1000, 'd'), big(2500, 'e');
  for (const auto* s : {&a, &b, &c}) REQUIRE(put(*store, *s).ok());
  REQUIRE(store->pin("job1", {util::sha256_hex(a), util::sha256_hex(b)}).ok());
  // 2500 bytes would need a and b, which job1 needs: refused, and c is still there.
  auto refused = store->begin_upload(util::sha256_hex(big), 0, big.size());
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().kind == ErrorKind::storage_full);
  CHECK(store->stat(util::sha256_hex(c)).held);
  // 1000 bytes: c goes (the one not pinned).
  REQUIRE(put(*store, d).ok());
  CHECK_FALSE(store->stat(util::sha256_hex(c)).held);
  CHECK(store->stat(util::sha256_hex(a)).held);
  // Pinning a blob not held pins nothing and says which.
  const auto missing = store->pin("job2", {util::sha256_hex(d), util::sha256_hex(c)});
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == "BLOB_MISSING");
  store->unpin("job1");
  REQUIRE(put(*store, big).ok());  // a and d... two of the three go, least recently used first
  CHECK(store->describe()["used_bytes"].get<std::uint64_t>() <= 3000);
  CHECK(store->stat(util::sha256_hex(big)).held);
}

TEST_CASE("worker::BlobStore takes an artifact in as a blob through a hard link") {
  Folder f;
  auto store = open_store(f.path);
  fs::create_directories(f.path / "jobs");
  const fs::path artifact = f.path / "jobs" / "mix.wav";
  REQUIRE(util::write_file_atomic(artifact, "RIFF....WAVE").ok());
  const std::string digest = util::sha256_file_hex(artifact).value();
  store->adopt(digest, artifact);
  CHECK(store->stat(digest).held);
  CHECK(fs::equivalent(store->path_of(digest), artifact));
#if !defined(_WIN32)  // Windows' stat counts one link, whatever there are
  CHECK(fs::hard_link_count(artifact) == 2);
  // A file another path links (its bytes can change through it) is not taken in.
  const fs::path linked = f.path / "jobs" / "linked.wav";
  REQUIRE(util::write_file_atomic(linked, "RIFF..other..WAVE").ok());
  fs::create_hard_link(linked, f.path / "elsewhere.wav");
  const std::string other = util::sha256_file_hex(linked).value();
  store->adopt(other, linked);
  CHECK_FALSE(store->stat(other).held);
  CHECK(fs::hard_link_count(linked) == 2);
#endif
}

TEST_CASE("protocol::blobs: file names a blob may take and references a payload may hold") {
  for (const char* ok : {"final.mp4", "final render (v2).mov", "ü.wav", ".hidden", "a..b", "CONSOLE.txt", "COM10.mp4",
                         "take\u2013two.mov"})
    CHECK_MESSAGE(protocol::is_blob_file_name(ok), ok);
  // Separators, reserved and control characters (C1 too), names that read as others (direction
  // and zero-width marks), and Windows device names as Windows reads them.
  for (const char* bad : {"", ".", "..", "a/b", "a\\b", "a:b", "x?", "end.", "end ", "CON", "nul.txt", "COM1.mp4", "tab\there",
                          "c1\u0085.wav", "evil\u202Egpj.exe", "zero\u200Bwidth.mp4", "\uFEFFbom.wav", "iso\u2066x.wav",
                          "CON .txt", "COM\u00B9.mp4", "lpt\u00B3", "CONIN$", "conout$.log"})
    CHECK_MESSAGE(!protocol::is_blob_file_name(bad), bad);
  CHECK(protocol::blob_file_name_for("evil\u202Egpj.exe") == "evil_gpj.exe");
  CHECK(protocol::blob_file_name_for("c1\u0085.wav") == "c1_.wav");
  CHECK(protocol::blob_file_name_for("CON .txt") == "_CON .txt");
  CHECK(protocol::blob_file_name_for("a:b?.mp4") == "a_b_.mp4");
  CHECK(protocol::blob_file_name_for("CON.mp4") == "_CON.mp4");
  CHECK(protocol::blob_file_name_for("..") == "input");
  const std::string long_name = std::string(150, 'x') + std::string(40, '\xc3') + "\xa9" + std::string(60, 'y') + ".mp4";
  const std::string cut = protocol::blob_file_name_for(long_name);
  CHECK(cut.size() <= 200);
  CHECK(cut.ends_with(".mp4"));
  const std::string digest(64, 'a');
  auto refs = protocol::find_blob_refs(protocol::json{{"media_path", protocol::blob_ref_json(digest, "a.mp4")}, {"fps", 1}});
  REQUIRE(refs.ok());
  REQUIRE(refs->size() == 1);
  CHECK((*refs)[0].field == "media_path");
  CHECK_FALSE(protocol::find_blob_refs(protocol::json{{"m", {{"blob", digest}, {"name", "a.mp4"}, {"x", 1}}}}).ok());
  CHECK_FALSE(protocol::find_blob_refs(protocol::json{{"m", {{"blob", std::string(64, 'A')}, {"name", "a.mp4"}}}}).ok());
  CHECK(protocol::step_input_fields("ffmpeg_probe") == std::vector<std::string>{"media_path"});
}

#if !defined(_WIN32)  // symbolic links need a privilege on Windows
TEST_CASE("worker::BlobStore follows no link put in its folder and writes nothing outside it") {
  Folder f, outside;
  fs::create_directories(outside.path);
  REQUIRE(util::write_file_atomic(outside.path / "victim.txt", "kept as it is").ok());
  const std::string a(1000, 'a'), b(2000, 'b');
  const std::string da = util::sha256_hex(a), db = util::sha256_hex(b);
  {
    auto store = open_store(f.path);
    REQUIRE(put(*store, a).ok());
  }
  // A held blob swapped for a link, a prefix folder that is a link, and a part that is a link.
  fs::remove(f.path / da.substr(0, 2) / da);
  fs::create_symlink(outside.path / "victim.txt", f.path / da.substr(0, 2) / da);
  fs::create_directory_symlink(outside.path, f.path / db.substr(0, 2));
  fs::create_symlink(outside.path / "victim.txt", f.path / ".incoming" / (db + ".part"));
  auto store = open_store(f.path);
  CHECK_FALSE(store->stat(da).held);
  CHECK_FALSE(store->stat(db).held);
  CHECK(store->stat(db).partial == 0);
  // An upload over the linked part removes the link and writes its own file.
  auto refused = store->begin_upload(db, 0, b.size());
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("was not a plain file") != std::string::npos);
  CHECK_FALSE(fs::exists(fs::symlink_status(f.path / ".incoming" / (db + ".part"))));
  fs::remove(f.path / db.substr(0, 2));
  REQUIRE(put(*store, b).ok());
  CHECK(util::read_file(outside.path / "victim.txt").value() == "kept as it is");
  CHECK(fs::is_regular_file(fs::symlink_status(store->path_of(db))));
}
#endif

TEST_CASE("worker::BlobStore: a blob whose file went is not held when a job names it") {
  Folder f;
  auto store = open_store(f.path);
  const std::string a(1000, 'a');
  REQUIRE(put(*store, a).ok());
  fs::remove(store->path_of(util::sha256_hex(a)));
  const Status pinned = store->pin("job1", {util::sha256_hex(a)});
  REQUIRE_FALSE(pinned.ok());
  CHECK(pinned.error().code == "BLOB_MISSING");
  CHECK(store->path_of(util::sha256_hex(a)).empty());
}

TEST_CASE("worker::BlobStore takes an artifact in only into free room, evicting nothing") {
  Folder f;
  auto store = open_store(f.path, 2500);
  const std::string a(1000, 'a'), b(1000, 'b');
  REQUIRE(put(*store, a).ok());
  REQUIRE(put(*store, b).ok());
  fs::create_directories(f.path / "jobs");
  const fs::path artifact = f.path / "jobs" / "frame.jpg";
  REQUIRE(util::write_file_atomic(artifact, std::string(1000, 'c')).ok());
  store->adopt(util::sha256_file_hex(artifact).value(), artifact);
  CHECK_FALSE(store->stat(util::sha256_file_hex(artifact).value()).held);
  CHECK(store->stat(util::sha256_hex(a)).held);
  CHECK(store->stat(util::sha256_hex(b)).held);
}
