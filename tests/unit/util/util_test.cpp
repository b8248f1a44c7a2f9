// util: timestamps, safe names, containment and atomic writes.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>

#include "util/crypto.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"
#include "util/time.hpp"

using namespace rayvault;
namespace fs = std::filesystem;

namespace {
struct TempDir {
  fs::path path = fs::temp_directory_path() / ("rv-unit-" + util::random_hex(6));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { std::error_code ec; fs::remove_all(path, ec); }
};
}  // namespace

TEST_CASE("util::parse_iso8601") {
  const auto base = util::parse_iso8601("2026-02-19T12:00:00Z");
  REQUIRE(base);
  CHECK(util::format_utc(*base) == "2026-02-19T12:00:00Z");
  // The same instant in every accepted spelling.
  for (const char* same : {"2026-02-19T12:00:00+00:00", "2026-02-19T13:30:00+01:30", "2026-02-19T07:00:00-0500",
                           "2026-02-19 12:00:00", "2026-02-19T12:00:00.000Z", "2026-02-19t12:00:00z"}) {
    const auto t = util::parse_iso8601(same);
    REQUIRE_MESSAGE(t, same);
    CHECK(*t == *base);
  }
  CHECK(util::millis_between(*base, *util::parse_iso8601("2026-02-19T12:00:00.25Z")) == 250);
  for (const char* bad : {"", "2026-02-19", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-02-19T24:00:00Z",
                          "2026-02-19T12:00:00Zjunk", "2026-02-19T12:00:00+25:00", "not a time"})
    CHECK_MESSAGE(!util::parse_iso8601(bad), bad);
}

TEST_CASE("util::is_safe_component") {
  CHECK(util::is_safe_component("ffprobe_001"));
  CHECK(util::is_safe_component("run-2026.02.19"));
  for (const char* bad : {"", ".", "..", "a/b", "a\\b", "../x", "a b", "x\n", "é"}) CHECK_MESSAGE(!util::is_safe_component(bad), bad);
  CHECK_FALSE(util::is_safe_component(std::string(129, 'a')));
}

TEST_CASE("util::resolve_within") {
  TempDir t;
  fs::create_directories(t.path / "sub");
  CHECK(util::resolve_within(t.path, "sub/x.txt") == t.path / "sub/x.txt");
  CHECK(util::resolve_within(t.path, "../x").empty());
  CHECK(util::resolve_within(t.path, "sub/../../x").empty());
  CHECK(util::resolve_within(t.path, "/etc/passwd").empty());
  CHECK(util::resolve_within(t.path, "").empty());
#ifndef _WIN32  // symlinks need a privilege on Windows, and mingw's libstdc++ cannot make them
  SUBCASE("a symlink that leads out is refused") {
    fs::create_directory_symlink("/tmp", t.path / "out");
    CHECK(util::resolve_within(t.path, "out/x").empty());
  }
#endif
}

TEST_CASE("util::write_file_atomic") {
  TempDir t;
  const fs::path f = t.path / "a" / "b.json";
  REQUIRE(util::write_file_atomic(f, "first").ok());
  REQUIRE(util::write_file_atomic(f, "second").ok());
  CHECK(*util::read_file(f) == "second");
  // No temporary file is left beside it.
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(f.parent_path())) ++entries;
  CHECK(entries == 1);
  CHECK(util::read_file(f, 3).error().kind == ErrorKind::too_large);
}

TEST_CASE("util::crypto") {
  CHECK(util::sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  // RFC 4231 test case 2.
  CHECK(util::hmac_sha256_hex("Jefe", "what do ya want for nothing?") ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // Several keys in turn each give their own answer (RFC 4231).
  for (int round = 0; round < 2; ++round) {
    CHECK(util::hmac_sha256_hex("Jefe", "what do ya want for nothing?") ==
          "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    // RFC 4231 test case 1: twenty 0x0b bytes.
    CHECK(util::hmac_sha256_hex(std::string(20, '\x0b'), "Hi There") ==
          "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    // Test case 6: a 131-byte key, hashed first.
    CHECK(util::hmac_sha256_hex(std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First") ==
          "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    CHECK(util::hmac_sha256_hex("Jefe", "") != util::hmac_sha256_hex("Jeff", ""));
  }
  // RFC 4231 test case 7: a long key and a message of several blocks.
  CHECK(util::hmac_sha256_hex(std::string(131, '\xaa'),
                              "This is a test using a larger than block-size key and a larger than block-size data. The "
                              "key needs to be hashed before being used by the HMAC algorithm.") ==
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
  // A stream given in uneven blocks hashes as the whole, and starts again once finished.
  {
    std::string text;
    for (int i = 0; i < 5000; ++i) text += std::to_string(i * 7919) + ",";
    util::Sha256Stream stream;
    for (std::size_t at = 0; at < text.size(); at += 1 + at % 97) stream.update(text.data() + at, std::min<std::size_t>(1 + at % 97, text.size() - at));
    CHECK(stream.finish_hex() == util::sha256_hex(text));
    stream.update("abc", 3);
    CHECK(stream.finish_hex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  }
  CHECK(util::base64("") == "");
  CHECK(util::base64("f") == "Zg==");
  CHECK(util::base64("fo") == "Zm8=");
  CHECK(util::base64("foobar") == "Zm9vYmFy");
  CHECK(util::base64(std::string("\xff\x00\xfe", 3)) == "/wD+");
  CHECK(util::hex_equal_constant_time("abCD", "ABcd"));
  CHECK_FALSE(util::hex_equal_constant_time("abcd", "abce"));
  CHECK_FALSE(util::hex_equal_constant_time("abcd", "abc"));
}

TEST_CASE("util::parse_number_text and parse_bool_text") {
  // Python's float() on text, and the yes/no words a person writes.
  CHECK(*util::parse_number_text(" 8787 ") == 8787.0);
  CHECK(*util::parse_number_text("+1.5e1") == 15.0);
  CHECK(*util::parse_number_text("-0.25") == -0.25);
  CHECK(std::isinf(*util::parse_number_text("inf")));
  CHECK(std::isnan(*util::parse_number_text("NaN")));
  for (const char* bad : {"", "  ", "12abc", "0x10", "1p3", "1,5", "one"}) CHECK_FALSE_MESSAGE(util::parse_number_text(bad), bad);
  for (const char* yes : {"true", " TRUE ", "yes", "On", "1"}) CHECK_MESSAGE(util::parse_bool_text(yes) == true, yes);
  for (const char* no : {"false", "No", " off", "0"}) CHECK_MESSAGE(util::parse_bool_text(no) == false, no);
  for (const char* neither : {"", "maybe", "2", "truee"}) CHECK_FALSE_MESSAGE(util::parse_bool_text(neither), neither);
}

TEST_CASE("util::sha1_file_hex") {
  TempDir dir;
  const auto write = [&](const char* name, const std::string& bytes) {
    std::ofstream(dir.path / name, std::ios::binary) << bytes;
    return dir.path / name;
  };
  // FIPS 180 "abc", the empty input, and inputs that cross block and padding boundaries
  // (values from sha1sum).
  CHECK(*util::sha1_file_hex(write("abc", "abc")) == "a9993e364706816aba3e25717850c26c9cd0d89d");
  CHECK(*util::sha1_file_hex(write("empty", "")) == "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  CHECK(*util::sha1_file_hex(write("long", std::string(100000, 'a'))) == "c4d4b30851182fc4eb8675494d42fd7f17e29c93");
  CHECK(*util::sha1_file_hex(write("55", std::string(55, 'a'))) == "c1c8bbdc22796e28c0e15163d20899b65621d65a");
  CHECK(*util::sha1_file_hex(write("56", std::string(56, 'a'))) == "c2db330f6083854c99d4b5bfb6e8f29f201be699");
  CHECK_FALSE(util::sha1_file_hex(dir.path / "missing").ok());
}

TEST_CASE("util::parse_key_value_text") {
  const auto kv = util::parse_key_value_text(
      "# keys\n\nELEVENLABS_API_KEY = abc123 \nexport ELEVENLABS_VOICE_ID=\"voice one\"\r\n"
      "QUOTED='x=y'\nno equals sign\n=novalue\nELEVENLABS_API_KEY=second");
  CHECK(kv.at("ELEVENLABS_API_KEY") == "second");
  CHECK(kv.at("ELEVENLABS_VOICE_ID") == "voice one");
  CHECK(kv.at("QUOTED") == "x=y");
  CHECK(kv.size() == 3);
}

TEST_CASE("util::split_command_line") {
  using V = std::vector<std::string>;
  CHECK(util::split_command_line("  python3 -m gvhmr_runner  ") == V{"python3", "-m", "gvhmr_runner"});
  CHECK(util::split_command_line(R"("C:\Program Files\Python\python.exe" -m runner)") ==
        V{R"(C:\Program Files\Python\python.exe)", "-m", "runner"});
  CHECK(util::split_command_line(R"(/opt/run 'a b' "say \"hi\"" x"y z")") == V{"/opt/run", "a b", "say \"hi\"", "xy z"});
  CHECK(util::split_command_line(R"(a "" b)") == V{"a", "", "b"});
  CHECK(util::split_command_line("").empty());
}

TEST_CASE("util::percent_encode") {
  CHECK(util::percent_encode("AZaz09-_.~") == "AZaz09-_.~");
  CHECK(util::percent_encode("a b/c?d&e") == "a%20b%2Fc%3Fd%26e");
  CHECK(util::percent_encode("caf\xc3\xa9") == "caf%C3%A9");
}

TEST_CASE("util::python_strip") {
  // As Python's str.strip(): Unicode white space at both ends goes, inner white space stays.
  CHECK(util::python_strip("  a b \t\n") == "a b");
  CHECK(util::python_strip("\xc2\xa0\xe3\x80\x80Hallo Welt\xe2\x80\xaf\x1f") == "Hallo Welt");
  CHECK(util::python_strip("\xe2\x80\x8b" "x") == "\xe2\x80\x8b" "x");  // U+200B is not white space
  CHECK(util::python_strip("caf\xc3\xa9\xc2\xa0") == "caf\xc3\xa9");
  CHECK(util::python_strip("\xc2\x85\xe1\x9a\x80") == "");
  CHECK(util::python_strip("") == "");
}

TEST_CASE("util::nonempty_lines") {
  CHECK(rayvault::util::nonempty_lines("").empty());
  CHECK(rayvault::util::nonempty_lines("\n \n\t\n").empty());
  CHECK(rayvault::util::nonempty_lines(" a \r\n\nb|c\nlast") == std::vector<std::string>{"a", "b|c", "last"});
}
