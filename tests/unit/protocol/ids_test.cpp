// Run and job ids: what the contract accepts, and folder names that neither escape nor collide.
#include <doctest/doctest.h>

#include <set>

#include "protocol/ids.hpp"
#include "protocol/job_record.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"

using namespace rayvault;
using namespace rayvault::protocol;

TEST_CASE("protocol::normalize_id") {
  // Accepted as the Python worker accepts them: trimmed, any printable text up to 128 characters.
  CHECK(*normalize_id("  run 1: take \xC3\xA9 \n", "run_id") == "run 1: take \xC3\xA9");
  CHECK(normalize_id(std::string(128, 'a'), "job_id").ok());
  std::string wide;
  for (int i = 0; i < 128; ++i) wide += "\xE6\x97\xA5";  // 128 characters, 384 bytes
  CHECK(normalize_id(wide, "job_id").ok());
  CHECK(normalize_id("a..b", "job_id").ok());
  CHECK(normalize_id("<>|?*\"", "job_id").ok());
  // Refused, each with the field's name first.
  const std::pair<std::string, std::string> refused[] = {
      {"", "job_id must not be empty"},
      {"   ", "job_id must not be empty"},
      {".", "job_id must not be '.' or '..'"},
      {" .. ", "job_id must not be '.' or '..'"},
      {"a/b", "job_id must not hold a path separator ('/' or '\\')"},
      {"a\\b", "job_id must not hold a path separator ('/' or '\\')"},
      {"a\tb", "job_id must not hold control characters"},
      {std::string("a\0b", 3), "job_id must not hold control characters"},
      {"a\x7f", "job_id must not hold control characters"},
      {"a\xC2\x85", "job_id must not hold control characters"},  // U+0085, a C1 control
      {"a\xC3", "job_id is not valid UTF-8"},
      {"\xC0\xAF", "job_id is not valid UTF-8"},  // an overlong '/'
      {"\xED\xA0\x80", "job_id is not valid UTF-8"},  // a lone surrogate
      {std::string(129, 'a'), "job_id is longer than 128 characters"},
      {wide + "x", "job_id is longer than 128 characters"}};
  for (const auto& [id, message] : refused) {
    auto r = normalize_id(id, "job_id");
    REQUIRE_FALSE_MESSAGE(r.ok(), id);
    CHECK(r.error().kind == ErrorKind::invalid_input);
    CHECK(r.error().message == message);
  }
}

TEST_CASE("protocol::id_folder_name") {
  // Plain names keep today's layout.
  const std::vector<std::string> plain{"ffprobe_001", "cluster_smoke_001", "a.b-c", "v1.2", "a..b", std::string(128, 'x')};
  for (const auto& id : plain) CHECK(id_folder_name(id) == id);
  // Everything else is derived: one portable path component with a '~', which no plain name has.
  const std::vector<std::string> derived{"take 1: intro", "take 1; intro", "take 1_ intro", "take 1: intro ", "con",
                                         "Job1", "JOB1", "jOb1", "FFPROBE_001",
                                         "con.txt", "com1", "lpt9.log", "trailing.", "<>|?*\"",
                                         "\xE6\x97\xA5\xE6\x9C\xAC", std::string(127, 'x') + " "};
  std::set<std::string> seen(plain.begin(), plain.end());
  for (const auto& id : derived) {
    const std::string f = id_folder_name(id);
    const auto tilde = f.find('~');
    REQUIRE_MESSAGE(tilde != std::string::npos, id);
    CHECK_MESSAGE(util::is_safe_component(f.substr(0, tilde)), f);
    CHECK(f.size() <= 48 + 1 + 32);
    CHECK_MESSAGE(seen.insert(f).second, "two ids share the folder " << f);
  }
  CHECK(id_folder_name("take 1: intro").rfind("take_1__intro~", 0) == 0);
  CHECK(id_folder_name("take 1: intro") == id_folder_name("take 1: intro"));  // stable
  // Ids that differ only in case never share a folder, even where the file system folds case.
  CHECK(util::ascii_lower(id_folder_name("Job1")) != util::ascii_lower(id_folder_name("job1")));
  CHECK(util::ascii_lower(id_folder_name("Job1")) != util::ascii_lower(id_folder_name("JOB1")));
}

TEST_CASE("protocol::to_json of a RECORD") {
  // Unset text is "" and exit_code is 0 until the end: never null (Python clients str() them).
  JobRecord r;
  r.run_id = "r";
  r.job_id = "j";
  const json j = to_json(r);
  for (const char* key : {"started_at", "finished_at", "error_code", "error_message", "cached_job_id"})
    CHECK_MESSAGE(j[key] == "", key);
  CHECK(j["exit_code"] == 0);
  CHECK(j.size() == 20);
  // Reading it back, "" is unset again.
  const JobRecord back = job_record_from_json(j);
  CHECK_FALSE(back.started_at);
  CHECK_FALSE(back.finished_at);
  CHECK(back.exit_code == 0);
}
