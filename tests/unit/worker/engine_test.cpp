// The engine's cancel paths, with a step of the test's own behind the Step interface: a job
// cancelled while queued, while running, and while on its way to a queue (admitted by one
// process, cancelled before the next one's slots start) never runs; a cancelled job runs again
// when it is submitted again.
#include <doctest/doctest.h>

#include <atomic>
#include <thread>

#include "protocol/errors.hpp"
#include "protocol/job_record.hpp"
#include "util/crypto.hpp"
#include "worker/engine.hpp"

using namespace rayvault;
using namespace rayvault::worker;

namespace {

// Counts its runs; runs until cancelled unless the payload says "quick".
struct Counted final : public Step {
  std::atomic<int>* runs;
  explicit Counted(std::atomic<int>* r) : runs(r) {}
  std::string_view name() const override { return "UNIT_STEP"; }
  Result<StepOutput> run(const StepContext& ctx) const override {
    ++*runs;
    if (ctx.payload.value("quick", false)) return StepOutput{};
    while (!ctx.cancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return Error(ErrorKind::unavailable, "stopped", std::string(protocol::codes::kWorkerRestarted));
  }
};

struct Root {
  fs::path path = fs::temp_directory_path() / ("rv-engine-" + util::random_hex(6));
  ~Root() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::unique_ptr<Engine> open_engine(const fs::path& root, std::atomic<int>* runs) {
  StepRegistry steps;
  steps.emplace("UNIT_STEP", std::make_unique<Counted>(runs));
  EngineConfig config;
  config.root = root;
  config.worker_id = "unit";
  auto engine = Engine::open(config, std::move(steps));
  REQUIRE(engine.ok());
  return std::move(engine).value();
}

Submission job(const std::string& id, json payload = json::object()) {
  return Submission{"run", id, "UNIT_STEP", protocol::inputs_hash(payload), std::move(payload)};
}

std::string wait_terminal(Engine& e, const std::string& id) {
  const auto j = e.wait(id, std::chrono::steady_clock::now() + std::chrono::seconds(20));
  REQUIRE(j.has_value());
  return j->record.status;
}

}  // namespace

TEST_CASE("worker::Engine cancel") {
  Root root;
  std::atomic<int> runs{0};
  SUBCASE("queued, then running: the queued one never runs; the running one stops") {
    auto e = open_engine(root.path, &runs);
    e->start();  // one slot
    REQUIRE(e->submit(job("first")).ok());
    REQUIRE(e->submit(job("second", {{"n", 2}})).ok());
    while (runs.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    auto queued = e->cancel("second", "not needed", std::chrono::milliseconds(0));
    REQUIRE(queued.ok());
    CHECK(queued->record.status == "cancelled");
    CHECK(queued->record.error_code == "CANCELLED");
    CHECK(queued->record.error_message == "cancelled on request: not needed");
    auto running = e->cancel("first", "", std::chrono::seconds(10));
    REQUIRE(running.ok());
    CHECK(running->record.status == "cancelled");
    CHECK(runs.load() == 1);
    // Cancelled again: answered as it is. Submitted again: it runs again, and ends as it ends.
    CHECK(e->cancel("first", "", std::chrono::milliseconds(0))->record.status == "cancelled");
    auto again = e->submit(job("first"));
    REQUIRE(again.ok());
    CHECK(again->job.record.status == "queued");
    while (runs.load() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    CHECK(e->cancel("first", "twice", std::chrono::seconds(10))->record.status == "cancelled");
  }
  SUBCASE("a finished job cannot be cancelled") {
    auto e = open_engine(root.path, &runs);
    e->start();
    REQUIRE(e->submit(job("done", {{"quick", true}})).ok());
    CHECK(wait_terminal(*e, "done") == "succeeded");
    auto late = e->cancel("done", "", std::chrono::milliseconds(0));
    REQUIRE_FALSE(late.ok());
    CHECK(late.error().kind == ErrorKind::conflict);
    CHECK_FALSE(e->cancel("nobody", "", std::chrono::milliseconds(0)).ok());
  }
  SUBCASE("admitted but not yet on a queue: the slot cancels it instead of running it") {
    {
      auto before = open_engine(root.path, &runs);  // admits and stops without running it
      REQUIRE(before->submit(job("waiting", {{"quick", true}})).ok());
    }
    auto e = open_engine(root.path, &runs);  // not started: the job is queued in the store only
    auto pending = e->cancel("waiting", "changed plans", std::chrono::milliseconds(0));
    REQUIRE(pending.ok());
    CHECK(pending->record.status == "queued");
    e->start();
    CHECK(wait_terminal(*e, "waiting") == "cancelled");
    CHECK(runs.load() == 0);
    CHECK(e->job("waiting")->record.error_message == "cancelled on request: changed plans");
  }
}
