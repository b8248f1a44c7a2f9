// The worker's store: idempotent admission, run aliases, logs, and what a restart finds.
#include <doctest/doctest.h>

#include "state/job_store.hpp"
#include "util/crypto.hpp"

using namespace rayvault;
using namespace rayvault::state;
namespace fs = std::filesystem;

namespace {
StoredJob job(const std::string& run, const std::string& id, const std::string& hash) {
  StoredJob j;
  j.record.run_id = run;
  j.record.job_id = id;
  j.record.step_name = "FFMPEG_PROBE";
  j.record.inputs_hash = hash;
  j.record.created_at = "2026-02-19T12:00:00Z";
  j.payload = {{"media_path", "/x"}};
  return j;
}
}  // namespace

TEST_CASE("state::JobStore") {
  const fs::path dir = fs::temp_directory_path() / ("rv-store-" + util::random_hex(6));
  auto opened = JobStore::open(dir / "worker.db");
  REQUIRE(opened.ok());
  auto& store = **opened;
  const std::string h1(64, 'a'), h2(64, 'b');

  auto first = store.admit(job("run1", "job1", h1));
  REQUIRE(first.ok());
  CHECK(first->second == Admission::created);

  SUBCASE("same STEP:inputs_hash from another run answers the first job and aliases the run") {
    auto again = store.admit(job("run2", "job2", h1));
    REQUIRE(again.ok());
    CHECK(again->second == Admission::existing);
    CHECK(again->first.record.job_id == "job1");
    auto by_alias = store.lookup("run2", "job2");
    REQUIRE(by_alias);
    CHECK(by_alias->job.record.job_id == "job1");
    CHECK(by_alias->run_matches);
    auto by_target = store.lookup("run2", "job1");
    REQUIRE(by_target);
    CHECK(by_target->run_matches);
    auto stranger = store.lookup("run3", "job1");
    REQUIRE(stranger);
    CHECK_FALSE(stranger->run_matches);
    CHECK_FALSE(store.lookup("run1", "nope"));
  }
  SUBCASE("reads answered from memory always show the last write") {
    // Read many times (cached), written, read again: the write shows; the same submission again
    // (answered from memory) shows it too.
    for (int i = 0; i < 3; ++i) REQUIRE(store.get("job1"));
    auto j = *store.get("job1");
    j.record.status = "running";
    j.record.message = "running now";
    REQUIRE(store.update(j).ok());
    CHECK(store.get("job1")->record.status == "running");
    CHECK(store.lookup("run1", "job1")->job.record.message == "running now");
    auto again = store.admit(job("run1", "job1", h1));
    REQUIRE(again.ok());
    CHECK(again->second == Admission::existing);
    CHECK(again->first.record.status == "running");
    // More jobs than the cache holds: each still reads back as written.
    for (int i = 0; i < 1500; ++i) REQUIRE(store.admit(job("bulk", "b" + std::to_string(i), util::random_hex(32))).ok());
    for (int i = 0; i < 1500; i += 7) {
      auto b = store.get("b" + std::to_string(i));
      REQUIRE(b);
      CHECK(b->record.run_id == "bulk");
    }
    CHECK(store.get("job1")->record.status == "running");
    CHECK(store.fail_interrupted("2026-02-19T12:01:00Z", "stopped") == std::vector<std::string>{"job1"});
    CHECK(store.get("job1")->record.status == "failed");
  }
  SUBCASE("a known job_id answers the existing job even with other inputs") {
    auto again = store.admit(job("run1", "job1", h2));
    REQUIRE(again.ok());
    CHECK(again->second == Admission::existing);
    CHECK(again->first.record.inputs_hash == h1);
  }
  SUBCASE("a reopened store fails running jobs and keeps queued ones") {
    REQUIRE(store.admit(job("run1", "job2", h2)).ok());
    auto running = *store.get("job1");
    running.record.status = "running";
    REQUIRE(store.update(running).ok());
    REQUIRE(store.append_log("job1", {"2026-02-19T12:00:01Z", "info", "job_started", "go"}).ok());
    opened = JobStore::open(dir / "worker.db");  // a new process
    REQUIRE(opened.ok());
    auto& reopened = **opened;
    CHECK(reopened.fail_interrupted("2026-02-19T12:00:02Z", "restarted") == std::vector<std::string>{"job1"});
    CHECK(reopened.get("job1")->record.error_code == "WORKER_RESTARTED");
    CHECK(reopened.get("job1")->record.status == "failed");
    CHECK(reopened.queued_job_ids() == std::vector<std::string>{"job2"});
    CHECK(reopened.logs("job1").size() == 1);
    CHECK(reopened.active_count() == 1);
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
}
