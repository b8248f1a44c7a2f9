// Child processes through the platform layer: argument quoting, UTF-8 arguments, exit codes,
// output capture and timeouts; and files written to the disk. Under wine this runs the Windows
// implementation for real.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "platform/files.hpp"
#include "platform/process.hpp"
#include "platform/system_info.hpp"
#include "tests/unit/child_path.hpp"

using namespace rayvault;
using platform::quote_windows_argument;

TEST_CASE("platform::quote_windows_argument") {
  // CommandLineToArgvW's rules: quotes around white space, \" for a quote, backslashes doubled
  // only before a quote.
  CHECK(quote_windows_argument("plain") == "plain");
  CHECK(quote_windows_argument("") == "\"\"");
  CHECK(quote_windows_argument("with space") == "\"with space\"");
  CHECK(quote_windows_argument(R"(C:\Program Files\x)") == R"("C:\Program Files\x")");
  CHECK(quote_windows_argument(R"(C:\dir\)") == R"(C:\dir\)");
  CHECK(quote_windows_argument(R"(C:\my dir\)") == R"("C:\my dir\\")");
  CHECK(quote_windows_argument(R"(say "hi")") == R"("say \"hi\"")");
  CHECK(quote_windows_argument(R"(a\"b)") == R"("a\\\"b")");
  CHECK(quote_windows_argument("tab\there") == "\"tab\there\"");
}

TEST_CASE("platform::run_process") {
  REQUIRE_FALSE(test::g_self_path.empty());
  SUBCASE("stdin_file is the child's standard input; without one the input is empty") {
    const auto file = std::filesystem::temp_directory_path() / "rayvault_stdin_test.txt";
    const std::string text = "first line\nsecond \xc3\xa9 line\n";
    {
      std::FILE* f = std::fopen(file.string().c_str(), "wb");
      REQUIRE(f != nullptr);
      std::fwrite(text.data(), 1, text.size(), f);
      std::fclose(f);
    }
    platform::ProcessSpec spec;
    spec.argv = {test::g_self_path, "--rayvault-test-child", "cat"};
    spec.timeout = std::chrono::seconds(30);
    spec.stdin_file = file;
    auto r = platform::run_process(spec);
    REQUIRE(r.ok());
    CHECK(r->exit_code == 0);
    CHECK(r->stdout_text == text);
    spec.stdin_file.clear();
    r = platform::run_process(spec);
    REQUIRE(r.ok());
    CHECK(r->stdout_text.empty());
    spec.stdin_file = file.parent_path() / "rayvault_no_such_input.txt";
    CHECK_FALSE(platform::run_process(spec).ok());
    std::filesystem::remove(file);
  }
  SUBCASE("arguments arrive unchanged, output is captured, the exit code is the child's") {
    const std::vector<std::string> args = {"plain", "with space", R"(C:\my dir\)", R"(say "hi")", "",
                                           "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac", R"(a\\b\")"};
    platform::ProcessSpec spec;
    spec.argv = {test::g_self_path, "--rayvault-test-child", "echo"};
    spec.argv.insert(spec.argv.end(), args.begin(), args.end());
    spec.timeout = std::chrono::seconds(30);
    std::vector<std::string> err;
    spec.on_output_line = [&err](std::string_view l) { err.emplace_back(l); };
    auto r = platform::run_process(spec);
    REQUIRE(r.ok());
    CHECK(r->exit_code == static_cast<int>(args.size()));
    CHECK_FALSE(r->timed_out);
    std::string expected;
    for (const auto& a : args) expected += a + "\n";
    std::string got = r->stdout_text;
    std::erase(got, '\r');
    CHECK(got == expected);
    CHECK(err == std::vector<std::string>{"child stderr line"});
  }
  SUBCASE("a program that is not installed is 'unavailable'") {
    platform::ProcessSpec spec;
    spec.argv = {"rayvault-no-such-program-xyz"};
    auto r = platform::run_process(spec);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == ErrorKind::unavailable);
  }
}

TEST_CASE("platform: Windows desktop session from `query user`") {
  const std::string out =
      " USERNAME              SESSIONNAME        ID  STATE   IDLE TIME  LOGON TIME\r\n"
      ">editor                console             1  Active      none   11/24/2026 9:00 AM\r\n"
      " render                                    2  Disc        1:02   11/24/2026 8:00 AM\r\n"
      " inactiveuser          rdp-tcp#3           3  Active         .   11/24/2026 7:00 AM\r\n";
  CHECK(platform::query_user_shows_active(out, "Editor"));
  CHECK_FALSE(platform::query_user_shows_active(out, "render"));       // disconnected
  CHECK_FALSE(platform::query_user_shows_active(out, "edit"));         // a prefix is not the user
  CHECK(platform::query_user_shows_active(out, "inactiveuser"));
  CHECK_FALSE(platform::query_user_shows_active(out, ""));
  CHECK_FALSE(platform::query_user_shows_active("No User exists for *\r\n", "editor"));
  // This machine's own answer always says how it was decided (under wine: the Windows code).
  CHECK_FALSE(platform::ui_session().detail.empty());
}

TEST_CASE("platform::quote_batch_argument") {
  // cmd.exe sees every metacharacter inside quotes; "" keeps its quote state in step; the C
  // runtime of the program behind the batch file reads "" inside quotes as one quote.
  CHECK(*platform::quote_batch_argument("hi&calc") == R"("hi&calc")");
  CHECK(*platform::quote_batch_argument(R"(x" & calc & ")") == R"("x"" & calc & """)");
  CHECK(*platform::quote_batch_argument("%ELEVENLABS_API_KEY%") == R"("%%cd:~,%ELEVENLABS_API_KEY%%cd:~,%")");
  CHECK(*platform::quote_batch_argument(R"(C:\dir\)") == R"("C:\dir\\")");
  CHECK(*platform::quote_batch_argument(R"(a\"b)") == R"("a\\""b")");
  CHECK(*platform::quote_batch_argument("") == R"("")");
  CHECK_FALSE(platform::quote_batch_argument("two\nlines").ok());
  CHECK_FALSE(platform::quote_batch_argument(std::string("nul\0byte", 8)).ok());
}

TEST_CASE("platform::sync_file and sync_folder") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("rayvault-sync-" + std::to_string(std::rand()));
  fs::create_directories(dir);
  { std::ofstream(dir / "blob") << "bytes"; }
  CHECK(platform::sync_file(dir / "blob").ok());
  CHECK(platform::sync_folder(dir).ok());
  const auto missing = platform::sync_file(dir / "missing");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().kind == ErrorKind::io);
  CHECK(missing.error().message.find("missing") != std::string::npos);
  fs::remove_all(dir);
}
