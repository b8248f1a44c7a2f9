// The mesh on a test tailnet (tools/tailnet.sh): real workers on their own hosts at 100.64.0.x,
// the real controller on its own host, and the faults a tailnet suffers. Skipped with a printed
// reason where no network namespaces can be made; CI runs them as root.
#include <doctest/doctest.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include <functional>
#include <future>
#include <thread>

#include "state/job_store.hpp"
#include "tests/integration/tailnet.hpp"
#include "util/files.hpp"
#include "util/time.hpp"

namespace rayvault::test {
namespace {

using namespace std::chrono_literals;

// ffprobe that holds a job while the file named by RV_HOLD exists (up to 60 s), saying so in
// RV_HOLD.started; otherwise, and afterwards, the real ffprobe.
std::string holding_ffprobe(const fs::path& bin) {
  fs::create_directories(bin);
  return path_with_standin(bin, "ffprobe",
                           "if [ -n \"$RV_HOLD\" ] && [ -e \"$RV_HOLD\" ]; then\n"
                           "  : > \"$RV_HOLD.started\"\n"
                           "  n=0; while [ -e \"$RV_HOLD\" ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n+1)); done\n"
                           "fi\n"
                           "exec /usr/bin/ffprobe \"$@\"");
}

// ffprobe that appends the name of the file it is asked about to `order`, then holds while `hold`
// exists (up to 60 s): the order in which a worker's queue runs its jobs.
std::string ordering_ffprobe(const fs::path& bin, const fs::path& order, const fs::path& hold) {
  fs::create_directories(bin);
  return path_with_standin(bin, "ffprobe",
                           "for a; do last=$a; done\n"
                           "echo \"$(basename \"$last\")\" >> '" + order.string() + "'\n"
                           "n=0; while [ -e '" + hold.string() + "' ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n+1)); done\n"
                           "exec /usr/bin/ffprobe \"$@\"");
}

bool wait_for_file(const fs::path& f, std::chrono::seconds within = 30s) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < deadline) {
    if (fs::exists(f)) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

std::string probe_payload(const fs::path& video, const std::string& note) {
  return json{{"media_path", video.string()}, {"note", note}}.dump();
}

std::vector<std::string> submit_args(const std::string& job, const std::string& payload,
                                     const std::string& requirements = "") {
  std::vector<std::string> a{"submit", "--run-id", "mesh", "--job-id", job, "--step-name", "FFMPEG_PROBE", "--payload-json",
                             payload};
  if (!requirements.empty()) a.insert(a.end(), {"--requirements-json", requirements});
  return a;
}

// Times a job was queued (first or again) on a worker, from its own database.
json row_of(const json& rows, const std::string& node_id) {
  for (const auto& r : rows)
    if (r["node_id"] == node_id) return r;
  return json();
}

}  // namespace

TEST_CASE("mesh: health over 16 nodes with 4 frozen or cut takes about one node timeout and the node view shows them") {
  if (!Tailnet::usable()) return;
  TempDir t;
  Tailnet net(t.path, 16);
  for (int i = 1; i <= 16; ++i) net.start(i);
  std::vector<int> all;
  for (int i = 1; i <= 16; ++i) all.push_back(i);
  const double timeout = 2.0;
  net.write_nodes(t.path, all, {}, timeout);
  const auto first = net.controller(t.path, {"health"});
  REQUIRE(first.exit_code == 0);
  REQUIRE(first.doc["workers"].size() == 16);
  for (const auto& w : first.doc["workers"]) CHECK(w["ok"] == true);

  net.freeze(3);
  net.freeze(7);
  net.cut(11);
  net.cut(15);
  const auto start = std::chrono::steady_clock::now();
  const auto r = net.controller(t.path, {"health"});
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  MESSAGE("health over 16 nodes, 4 silent, node timeout " << timeout << " s: " << took << " s");
  // In parallel: one timeout (plus start-up), where one after another would take four.
  CHECK(took < 2 * timeout);
  int ok = 0;
  for (const auto& w : r.doc["workers"]) {
    const bool silent = w["node_id"] == "node3" || w["node_id"] == "node7" || w["node_id"] == "node11" || w["node_id"] == "node15";
    CHECK(w["ok"] == !silent);
    CHECK(w["error"].get<std::string>().empty() == !silent);
    ok += w["ok"] == true ? 1 : 0;
  }
  CHECK(ok == 12);

  // The node view: a silent node seen a moment ago is down but not stale, and keeps what it last said.
  auto view = net.controller(t.path, {"nodes", "--json"});
  REQUIRE(view.exit_code == 0);
  json n3 = row_of(view.doc["nodes"], "node3");
  CHECK(n3["reachable"] == false);
  CHECK(n3["stale"] == false);
  CHECK(!n3["last_seen"].get<std::string>().empty());
  CHECK(n3["worker_id"] == "node3");
  json n1 = row_of(view.doc["nodes"], "node1");
  CHECK(n1["reachable"] == true);
  CHECK(n1["latency_ms"].is_number());
  CHECK(n1["free_slots"] == 2);
  CHECK(n1["running_jobs"] == 0);
  CHECK(n1["caps"]["os"] == "linux");
  CHECK(n1["compat_mode"] == "");
  // Last answered six minutes ago (as the ledger keeps it): stale.
  {
    SQLite::Database db((t.path / "state/cluster/controller.db").string(), SQLite::OPEN_READWRITE);
    SQLite::Statement q(db, "UPDATE nodes SET last_seen = ? WHERE node_id = 'node3'");
    q.bind(1, util::format_utc(std::chrono::system_clock::now() - 6min));
    CHECK(q.exec() == 1);
  }
  view = net.controller(t.path, {"nodes", "--json"});
  CHECK(row_of(view.doc["nodes"], "node3")["stale"] == true);
  CHECK(row_of(view.doc["nodes"], "node7")["stale"] == false);
  const auto table = net.controller(t.path, {"health", "--table"});
  CHECK(table.exit_code == 0);
  CHECK(table.out.find("LATENCY") != std::string::npos);
  CHECK(table.out.find("node3") != std::string::npos);
  CHECK(table.out.find("stale") != std::string::npos);
  CHECK(table.out.find("100.64.0.11:8787") != std::string::npos);

  net.thaw(3);
  net.thaw(7);
  net.restore(11);
  net.restore(15);
  const auto back = net.controller(t.path, {"health"});
  for (const auto& w : back.doc["workers"]) CHECK(w["ok"] == true);
}

TEST_CASE("mesh: a job goes to a fitting node with the most free slots then the lowest latency") {
  if (!Tailnet::usable()) return;
  TempDir t;
  const fs::path video = make_video(t.path, 1.0);
  const std::string path = holding_ffprobe(t.path / "bin");
  const fs::path hold = t.path / "hold1";
  Tailnet net(t.path, 3);
  net.start(1, {"--slots", "1"}, "s3cret", "", {{"PATH", path}, {"RV_HOLD", hold.string()}});
  net.start(2, {"--slots", "2"}, "s3cret", "", {{"PATH", path}});
  net.start(3, {"--slots", "2", "--tags", "gpu-room"}, "s3cret", "", {{"PATH", path}});

  // node1's only slot is taken by a job held open.
  REQUIRE(util::write_file_atomic(hold, "").ok());
  net.write_nodes(t.path, {1});
  auto busy = std::async(std::launch::async, [&] { return net.controller(t.path, submit_args("busy", probe_payload(video, "busy"))); });
  REQUIRE(wait_for_file(fs::path(hold.string() + ".started")));

  net.write_nodes(t.path, {1, 2, 3}, {}, 3, {{2, {{"tags", {"edit"}}}}});
  auto view = net.controller(t.path, {"nodes", "--json"});
  CHECK(row_of(view.doc["nodes"], "node1")["running_jobs"] == 1);
  CHECK(row_of(view.doc["nodes"], "node1")["free_slots"] == 0);

  const auto a = net.controller(t.path, submit_args("a", probe_payload(video, "a")));
  CHECK(a.exit_code == 0);
  CHECK(a.doc["mode"] == "remote");
  CHECK(a.doc["node_id"] != "node1");  // no free slot there

  // node2's link is slow: its answers take hundreds of milliseconds, so node3 takes the job.
  net.slow(2, 32);
  const auto b = net.controller(t.path, submit_args("b", probe_payload(video, "b")));
  CHECK(b.doc["node_id"] == "node3");
  net.clear(2);
  net.slow(3, 32);
  const auto c = net.controller(t.path, submit_args("c", probe_payload(video, "c")));
  CHECK(c.doc["node_id"] == "node2");
  net.clear(3);

  // Tags: the worker's own (--tags) and the nodes file's.
  const auto d = net.controller(t.path, submit_args("d", probe_payload(video, "d"), R"({"tags":["gpu-room"]})"));
  CHECK(d.doc["node_id"] == "node3");
  const auto e = net.controller(t.path, submit_args("e", probe_payload(video, "e"), R"({"tags":["edit"]})"));
  CHECK(e.doc["node_id"] == "node2");
  // No node could ever take it: local at once, saying why.
  const auto f = net.controller(t.path, submit_args("f", probe_payload(video, "f"), R"({"tags":["nowhere"]})"));
  CHECK(f.doc["mode"] == "local");
  CHECK(f.doc["status"] == "succeeded");
  CHECK(f.doc["message"].get<std::string>().find("No worker satisfies requirements (") == 0);
  CHECK(f.doc["message"].get<std::string>().find("node2: does not fit: no tag nowhere") != std::string::npos);

  // The busy job is cancelled; its submit returns with the job's answer.
  const auto cancel = net.controller(t.path, {"cancel", "--run-id", "mesh", "--job-id", "busy", "--reason", "test over"});
  CHECK(cancel.exit_code == 0);
  const auto busy_done = busy.get();
  CHECK(busy_done.doc["status"] == "cancelled");
  CHECK(busy_done.doc["node_id"] == "node1");
}

TEST_CASE("mesh: a job moves on however its node goes, and the receipt records every attempt") {
  if (!Tailnet::usable()) return;
  TempDir t;
  const fs::path video = make_video(t.path, 1.0);
  const std::string path = holding_ffprobe(t.path / "bin");
  const fs::path hold = t.path / "hold1";
  Tailnet net(t.path, 2);
  // node1 has more free slots, so it is always tried first; node2 is the one to fail over to.
  const std::vector<std::string> node1_args{"--slots", "4"};
  const Tailnet::Env node1_env{{"PATH", path}, {"RV_HOLD", hold.string()}};
  net.start(1, node1_args, "s3cret", "", node1_env);
  net.start(2, {"--slots", "2"}, "s3cret", "", {{"PATH", path}});
  json settings{{"node_silence_sec", 3}, {"request_timeout_sec", 2}, {"cooldown_sec", 120}, {"poll_timeout_sec", 60}};
  REQUIRE(util::write_file_atomic(hold, "").ok());

  std::string expect_outcome;
  std::function<void()> fault;
  bool comes_back = false;      // the node answers again afterwards (thawed, restored)
  bool before_submit = false;  // the fault comes before the job is submitted
  SUBCASE("unreachable at submission") {
    expect_outcome = "unreachable";
    fault = [&] { net.cut(1); };
    comes_back = true;
    before_submit = true;
  }
  SUBCASE("frozen (SIGSTOP)") {
    expect_outcome = "lost";
    fault = [&] { net.freeze(1); };
    comes_back = true;
  }
  SUBCASE("link cut") {
    expect_outcome = "lost";
    fault = [&] { net.cut(1); };
    comes_back = true;
  }
  SUBCASE("killed") {
    expect_outcome = "lost";
    fault = [&] { net.kill(1); };
  }
  SUBCASE("killed and restarted: WORKER_RESTARTED") {
    expect_outcome = "node_fault";
    fault = [&] {
      net.kill(1);
      net.start(1, node1_args, "s3cret", "", node1_env);
    };
  }
  SUBCASE("slow past poll_timeout_sec: cancelled there") {
    expect_outcome = "timed_out";
    settings["poll_timeout_sec"] = 4;
    fault = [] {};
  }
  net.write_nodes(t.path, {1, 2}, settings);

  if (before_submit) fault();
  auto run = std::async(std::launch::async, [&] { return net.controller(t.path, submit_args("j", probe_payload(video, "j"))); });
  if (!before_submit) {
    REQUIRE(wait_for_file(fs::path(hold.string() + ".started")));
    fault();
  }
  const auto r = run.get();
  INFO(r.out);
  CHECK(r.exit_code == 0);
  CHECK(r.doc["node_id"] == "node2");
  CHECK(r.doc["status"] == "succeeded");
  const json receipt = json::parse(*util::read_file(t.path / "state/cluster/receipts/mesh/j/job_receipt.json"));
  REQUIRE(receipt["attempts"].size() == 2);
  const json& first = receipt["attempts"][0];
  CHECK(first["node_id"] == "node1");
  CHECK(first["outcome"] == expect_outcome);
  CHECK(!first["error"].get<std::string>().empty());
  // A node passed over at the probe was never given the job: no start, no end.
  CHECK(util::parse_iso8601(first["started_at"].get<std::string>()).has_value() == !before_submit);
  CHECK(util::parse_iso8601(first["finished_at"].get<std::string>()).has_value() == !before_submit);
  CHECK(receipt["attempts"][1]["node_id"] == "node2");
  CHECK(receipt["attempts"][1]["outcome"] == "succeeded");
  CHECK(receipt["node_id"] == "node2");
  CHECK(r.doc["attempts"] == receipt["attempts"]);
  const std::string synced_at = receipt["synced_at"];

  // node1 sits out its cool-down: the next job goes to node2 although node1 has more free slots.
  if (comes_back) {
    if (expect_outcome == "lost" && first["error"].get<std::string>().find("no answer") == std::string::npos)
      FAIL_CHECK("lost without saying so: " << first["error"]);
    net.thaw(1);
    net.restore(1);
  }
  fs::remove(hold);  // node1's held job (if it still has it) finishes now
  auto view = net.controller(t.path, {"nodes", "--json"});
  // Only a node that failed the job it was given sits out a cool-down.
  CHECK(row_of(view.doc["nodes"], "node1")["cooldown_until"].get<std::string>().empty() == before_submit);
  if (!before_submit && (expect_outcome != "lost" || comes_back)) {
    const auto next = net.controller(t.path, submit_args("k", probe_payload(video, "k")));
    CHECK(next.doc["node_id"] == "node2");
    CHECK(next.doc["attempts"].size() == 1);
  }

  // Exactly once per attempt, on each node.
  CHECK(times_queued(net.root(2), "j") == 1);
  CHECK(times_queued(net.root(1), "j") == (before_submit ? 0 : 1));
  if (comes_back && !before_submit) {
    // node1 finishes the job it was given; that makes no second receipt.
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    json st;
    while (std::chrono::steady_clock::now() < deadline) {
      st = net.controller(t.path, {"status", "--run-id", "mesh", "--job-id", "j", "--node-id", "node1"}).doc;
      if (st.contains("job") && st["job"].is_object() && st["job"].value("status", "") == "succeeded") break;
      std::this_thread::sleep_for(100ms);
    }
    CHECK(st["job"]["status"] == "succeeded");
  }
  const json again = json::parse(*util::read_file(t.path / "state/cluster/receipts/mesh/j/job_receipt.json"));
  CHECK(again["node_id"] == "node2");
  CHECK(again["synced_at"] == synced_at);
  const auto jobs = net.controller(t.path, {"jobs", "--run-id", "mesh", "--json"});
  json j_row;
  for (const auto& row : jobs.doc["jobs"])
    if (row["job_id"] == "j") j_row = row;
  CHECK(j_row["node_id"] == "node2");
  CHECK(j_row["attempts"].size() == 2);
  if (expect_outcome == "timed_out") {
    const auto st = net.controller(t.path, {"status", "--run-id", "mesh", "--job-id", "j", "--node-id", "node1"});
    CHECK(st.doc["job"]["status"] == "cancelled");
  }
}

}  // namespace rayvault::test

namespace rayvault::test {
namespace {

// Waits until the worker's log holds `text` at least `times` times.
bool log_shows(Tailnet& net, int node, const std::string& text, int times) {
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string log = net.worker_log(node);
    int n = 0;
    for (auto at = log.find(text); at != std::string::npos; at = log.find(text, at + 1)) ++n;
    if (n >= times) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

void write_secrets(const fs::path& file, const std::string& text) {
  REQUIRE(util::write_file_atomic(file, text).ok());
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
}

}  // namespace

TEST_CASE("mesh: the secret rotates across the tailnet with no worker stopped (SIGHUP)") {
  if (!Tailnet::usable()) return;
  TempDir t;
  const fs::path video = make_video(t.path, 1.0);
  const std::string path = holding_ffprobe(t.path / "bin");
  const fs::path hold = t.path / "hold1";
  const fs::path s1 = t.path / "node1.secrets", s2 = t.path / "node2.secrets";
  write_secrets(s1, "RAYVAULT_CLUSTER_SECRET_CURRENT=alpha-secret\n");
  write_secrets(s2, "RAYVAULT_CLUSTER_SECRET=alpha-secret\n");
  Tailnet net(t.path, 2);
  // The environment's secret is not the one in force: the file is.
  net.start(1, {"--secrets-file", s1.string()}, "not-this-one", "", {{"PATH", path}, {"RV_HOLD", hold.string()}});
  net.start(2, {"--secrets-file", s2.string()}, "not-this-one", "", {{"PATH", path}});
  net.write_nodes(t.path, {1, 2});
  auto caps_with = [&](const std::string& secret) {
    return net.controller(t.path, {"caps"}, {{"RAYVAULT_CLUSTER_SECRET", secret}});
  };
  CHECK(caps_with("alpha-secret").exit_code == 0);
  CHECK(caps_with("not-this-one").exit_code == 1);

  // A job runs on node1 all through the rotation.
  REQUIRE(util::write_file_atomic(hold, "").ok());
  net.write_nodes(t.path, {1});
  auto long_job = std::async(std::launch::async, [&] {
    return net.controller(t.path, submit_args("long", probe_payload(video, "long")),
                          {{"RAYVAULT_CLUSTER_SECRET", "alpha-secret"}});
  });
  REQUIRE(wait_for_file(fs::path(hold.string() + ".started")));
  const long pid1 = net.pid(1);
  net.write_nodes(t.path, {1, 2});

  // 1. Workers take the new secret, the old one as PREVIOUS: old and new controllers both pass.
  write_secrets(s1, "RAYVAULT_CLUSTER_SECRET_CURRENT=beta-secret\nRAYVAULT_CLUSTER_SECRET_PREVIOUS=alpha-secret\n");
  write_secrets(s2, "RAYVAULT_CLUSTER_SECRET_CURRENT=beta-secret\nRAYVAULT_CLUSTER_SECRET_PREVIOUS=alpha-secret\n");
  net.signal_hup(1);
  net.signal_hup(2);
  REQUIRE(log_shows(net, 1, "secrets read again", 1));
  REQUIRE(log_shows(net, 2, "secrets read again", 1));
  CHECK(caps_with("alpha-secret").exit_code == 0);
  CHECK(caps_with("beta-secret").exit_code == 0);
  CHECK(caps_with("gamma-secret").exit_code == 1);

  // 2. Controllers move to the new secret; the job that ran through the reload finishes.
  fs::remove(hold);
  const auto done = long_job.get();
  CHECK(done.exit_code == 0);
  CHECK(done.doc["node_id"] == "node1");
  CHECK(net.pid(1) == pid1);  // never restarted
  const auto on_beta = net.controller(t.path, submit_args("on-beta", probe_payload(video, "on-beta")),
                                      {{"RAYVAULT_CLUSTER_SECRET", "beta-secret"}});
  CHECK(on_beta.doc["mode"] == "remote");

  // 3. PREVIOUS is dropped: a controller still on the old secret is refused everywhere.
  write_secrets(s1, "RAYVAULT_CLUSTER_SECRET_CURRENT=beta-secret\n");
  write_secrets(s2, "RAYVAULT_CLUSTER_SECRET_CURRENT=beta-secret\n");
  net.signal_hup(1);
  net.signal_hup(2);
  REQUIRE(log_shows(net, 1, "secrets read again", 2));
  REQUIRE(log_shows(net, 2, "secrets read again", 2));
  const auto stale = caps_with("alpha-secret");
  CHECK(stale.exit_code == 1);
  for (const auto& row : stale.doc["rows"]) CHECK(row["error"].get<std::string>().find("auth_token invalid") != std::string::npos);
  CHECK(caps_with("beta-secret").exit_code == 0);
  const auto refused = net.controller(t.path, {"submit", "--run-id", "mesh", "--job-id", "old", "--step-name", "FFMPEG_PROBE",
                                               "--payload-json", probe_payload(video, "old"), "--no-local-fallback"},
                                      {{"RAYVAULT_CLUSTER_SECRET", "alpha-secret"}});
  CHECK(refused.exit_code == 2);
  CHECK(refused.doc["message"].get<std::string>().find("auth_token invalid") != std::string::npos);

  // A secrets file broken by mistake changes nothing: the worker keeps the secret it has.
  write_secrets(s1, "# emptied by mistake\n");
  net.signal_hup(1);
  REQUIRE(log_shows(net, 1, "secrets not changed", 1));
  CHECK(caps_with("beta-secret").exit_code == 0);
  // No secret ever reaches a log.
  for (int i : {1, 2}) {
    CHECK(net.worker_log(i).find("alpha-secret") == std::string::npos);
    CHECK(net.worker_log(i).find("beta-secret") == std::string::npos);
  }
}

}  // namespace rayvault::test

namespace rayvault::test {

TEST_CASE("mesh: a worker's queue runs higher priority first and /health reports its load") {
  TempDir t;
  const fs::path video = make_video(t.path, 1.0);
  const fs::path bin = t.path / "bin", hold = t.path / "hold", order = t.path / "order";
  const std::string path = ordering_ffprobe(bin, order, hold);
  WorkerProcess w(t.path, "prio", WorkerOptions{"s3cret", "", {"--slots", "1"}, {{"PATH", path}}});
  REQUIRE(util::write_file_atomic(hold, "").ok());
  std::map<std::string, std::string> hashes;
  auto submit = [&](const std::string& name, std::optional<json> priority) {
    const fs::path media = t.path / (name + ".mp4");
    fs::copy_file(video, media, fs::copy_options::overwrite_existing);
    const json payload{{"media_path", media.string()}};
    json body = job_body("prio", name, "FFMPEG_PROBE", payload);
    if (priority) body["priority"] = *priority;
    hashes[name] = protocol::inputs_hash(payload);
    return http_post(w.port(), "/job", body.dump());
  };
  REQUIRE(submit("first", std::nullopt).status == 200);
  REQUIRE(wait_for_file(order));  // the one slot is taken
  CHECK(submit("low", 0).status == 200);
  CHECK(submit("high", 5).status == 200);
  CHECK(submit("mid", 2).status == 200);
  CHECK(submit("also-low", std::nullopt).status == 200);
  for (const json& bad : {json("5"), json(1.5), json(100000), json(true)}) {
    const auto r = submit("bad", bad);
    CHECK(r.status == 400);
    CHECK(r.detail().find("priority must be an integer") != std::string::npos);
  }
  const json health = http_get(w.port(), "/health").json_body();
  CHECK(health["running_jobs"] == 1);
  CHECK(health["free_slots"] == 0);
  CHECK(health["load"]["cpu_running"] == 1);
  CHECK(health["load"]["cpu_queued"] == 4);
  CHECK(health["queue_depth"] == 5);

  fs::remove(hold);
  for (const char* name : {"first", "low", "high", "mid", "also-low"})
    CHECK(poll_job(w.port(), "prio", name, hashes[name], [](const json& j) { return j.value("status", "") == "succeeded"; })["status"] ==
          "succeeded");
  // Highest first; equal priorities in the order they came.
  CHECK(*util::read_file(order) == "first.mp4\nhigh.mp4\nmid.mp4\nlow.mp4\nalso-low.mp4\n");
}

}  // namespace rayvault::test

namespace rayvault::test {

TEST_CASE("mesh: a v0.5 worker is found by its own caps form and sent jobs in the v0.5 form") {
  if (!Tailnet::usable()) return;
  TempDir t;
  const fs::path video = make_video(t.path, 1.0);
  Tailnet net(t.path, 2);
  net.start(1);
  // node2 runs the v0.5 stand-in (Python, checking the v0.5 signature with Python's own str()).
  net.start(2, {}, "s3cret", "", {{"RAYVAULT_WORKER_BIN", std::string(RAYVAULT_TEST_STANDINS) + "/v05_worker.py"}});
  const fs::path requests = net.root(2) / "requests.jsonl";
  auto arrived = [&requests] {
    std::vector<json> out;
    if (auto text = util::read_file(requests); text) {
      std::size_t at = 0;
      while (at < text->size()) {
        const auto end = text->find('\n', at);
        out.push_back(json::parse(text->substr(at, end - at)));
        at = end == std::string::npos ? text->size() : end + 1;
      }
    }
    return out;
  };
  net.write_nodes(t.path, {1, 2});
  const auto view = net.controller(t.path, {"nodes", "--json"});
  const json v05 = row_of(view.doc["nodes"], "node2");
  CHECK(v05["reachable"] == true);
  CHECK(v05["compat_mode"] == "legacy_hmac_v05");
  CHECK(v05["version"] == "0.5.2");
  CHECK(row_of(view.doc["nodes"], "node1")["compat_mode"] == "");

  // Only the v0.5 node: the job goes there in its form and its answer is the record.
  net.write_nodes(t.path, {2});
  const auto r = net.controller(t.path, submit_args("old-probe", probe_payload(video, "v05")));
  INFO(r.out);
  CHECK(r.exit_code == 0);
  CHECK(r.doc["mode"] == "remote");
  CHECK(r.doc["node_id"] == "node2");
  CHECK(r.doc["status"] == "completed");
  CHECK(r.doc["_compat_mode"] == "legacy_hmac_v05");
  auto got = arrived();
  REQUIRE(!got.empty());
  const json& job = got.back();
  CHECK(job["path"] == "/job");
  CHECK(job["body"]["step_name"] == "ffmpeg_probe");
  CHECK(job["body"]["job_type"] == "ffprobe_analyze");
  CHECK(job["body"]["params"]["media_path"] == video.string());
  CHECK(job["body"]["job_id"] == "old-probe");
  const json receipt = json::parse(*util::read_file(t.path / "state/cluster/receipts/mesh/old-probe/job_receipt.json"));
  CHECK(receipt["_compat_mode"] == "legacy_hmac_v05");
  CHECK(receipt["job_status"]["result"]["streams"] == 2);
  CHECK(receipt["attempts"].size() == 1);

  // A step it cannot run is a node fault there: the job moves on (here: to local execution).
  const auto moved = net.controller(t.path, {"submit", "--run-id", "mesh", "--job-id", "frames", "--step-name", "FRAME_SAMPLING",
                                             "--payload-json", json{{"video_path", video.string()}, {"every_sec", 0.5}}.dump()});
  INFO(moved.out);
  CHECK(moved.doc["mode"] == "local");
  CHECK(moved.doc["status"] == "succeeded");
  CHECK(moved.doc["attempts"][0]["node_id"] == "node2");
  CHECK(moved.doc["attempts"][0]["outcome"] == "node_fault");
  CHECK(moved.doc["attempts"][0]["error"].get<std::string>().find("STEP_UNSUPPORTED") == 0);
  // POSE_ESTIMATE did not exist in v0.5: it is never sent there.
  const auto pose = net.controller(t.path, {"submit", "--run-id", "mesh", "--job-id", "pose", "--step-name", "POSE_ESTIMATE",
                                            "--payload-json", json{{"video_path", video.string()}}.dump(),
                                            "--requirements-json", "{}", "--no-local-fallback"});
  CHECK(pose.doc["attempts"][0]["error"] == "does not fit: does not run POSE_ESTIMATE");

  // A wrong secret: the v0.5 node refuses the probe (nothing is recorded there) and is passed over.
  const std::size_t before = arrived().size();
  const auto wrong = net.controller(t.path, submit_args("wrong", probe_payload(video, "wrong")),
                                    {{"RAYVAULT_CLUSTER_SECRET", "not-the-secret"}});
  CHECK(wrong.doc["mode"] == "local");
  CHECK(wrong.doc["attempts"][0]["outcome"] == "unreachable");
  CHECK(arrived().size() == before);
}

}  // namespace rayvault::test

namespace rayvault::test {
namespace {

// Established connections to a node's worker port, counted on the node itself.
int connections_to(Tailnet& net, int node) {
  platform::ProcessSpec spec;
  spec.argv = {"bash", RAYVAULT_TAILNET_SCRIPT, (net.root(node).parent_path()).string(), "node", std::to_string(node), "ss",
               "-Htn", "state", "established", "( sport = :8787 )"};
  spec.timeout = std::chrono::seconds(10);
  auto r = platform::run_process(spec);
  if (!r || r->exit_code != 0) return -1;
  int n = 0;
  for (char c : r->stdout_text) n += c == '\n' ? 1 : 0;
  return n;
}

}  // namespace

TEST_CASE("mesh: a batch runs over all workers with a bounded number of connections and resumes after Ctrl-C") {
  if (!Tailnet::usable()) return;
  TempDir t;
  const fs::path video = make_video(t.path, 1.0);
  // Every probe takes a moment, so that jobs overlap.
  const fs::path bin = t.path / "bin";
  fs::create_directories(bin);
  const std::string path = path_with_standin(bin, "ffprobe", "sleep 0.4\nexec /usr/bin/ffprobe \"$@\"");
  Tailnet net(t.path, 3);
  for (int i = 1; i <= 3; ++i) net.start(i, {"--slots", "2"}, "s3cret", "", {{"PATH", path}});
  net.write_nodes(t.path, {1, 2, 3});

  auto write_batch = [&](const fs::path& file, const std::string& prefix, int count, bool lines) {
    std::string text;
    json list = json::array();
    for (int i = 0; i < count; ++i) {
      const json job{{"job_id", prefix + std::to_string(i)}, {"step_name", "FFMPEG_PROBE"},
                     {"payload", {{"media_path", video.string()}, {"note", prefix + std::to_string(i)}}}};
      list.push_back(job);
      text += job.dump() + "\n";
    }
    REQUIRE(util::write_file_atomic(file, lines ? "# a batch, one job a line\n" + text : list.dump(2)).ok());
  };

  SUBCASE("18 jobs over 3 workers, at most 2 connections each") {
    write_batch(t.path / "b.json", "b", 18, false);
    std::atomic<bool> done{false};
    std::map<int, int> most;
    std::thread watch([&] {
      while (!done) {
        for (int i = 1; i <= 3; ++i) most[i] = std::max(most[i], connections_to(net, i));
        std::this_thread::sleep_for(50ms);
      }
    });
    const auto r = net.controller(t.path, {"submit", "--batch", (t.path / "b.json").string(), "--run-id", "batch"});
    done = true;
    watch.join();
    INFO(r.out);
    CHECK(r.exit_code == 0);
    CHECK(r.doc["ok"] == true);
    CHECK(r.doc["total"] == 18);
    CHECK(r.doc["succeeded"] == 18);
    CHECK(r.doc["failed"] == 0);
    CHECK(r.doc["threads"] == 7);  // the workers' 6 slots and the local lane
    for (int i = 1; i <= 3; ++i) {
      CHECK(r.doc["per_node"]["node" + std::to_string(i)].get<int>() >= 3);  // every worker took its share
      // Two jobs' own requests (a submission or an artifact fetch), the node's watch, and at most
      // one probe of the batch.
      CHECK(most[i] <= 4);
      CHECK(most[i] >= 1);
    }
    for (int i = 0; i < 18; ++i)
      CHECK(fs::exists(t.path / "state/cluster/receipts/batch" / ("b" + std::to_string(i)) / "job_receipt.json"));
    // Not a terminal: a plain line per finished job.
    CHECK(r.err.find("batch: [18/18] ") != std::string::npos);
    CHECK(fs::exists(r.doc["summary_path"].get<std::string>()));
    const auto listed = net.controller(t.path, {"jobs", "--run-id", "batch", "--status", "succeeded", "--json"});
    CHECK(listed.doc["count"] == 18);
  }
  SUBCASE("interrupted, then started again: what succeeded is skipped, nothing runs twice") {
    write_batch(t.path / "c.jsonl", "c", 12, true);
    platform::ProcessSpec spec;
    spec.argv = {"bash", RAYVAULT_TAILNET_SCRIPT, (t.path / "tailnet").string(), "exec", RAYVAULT_CONTROLLER_BIN, "submit",
                 "--batch", (t.path / "c.jsonl").string(), "--run-id", "batch", "--max-per-worker", "1"};
    spec.cwd = t.path;
    spec.env = {{"RAYVAULT_CLUSTER_SECRET", "s3cret"}};
    auto child = platform::Child::spawn(spec, t.path / "first.out");
    REQUIRE(child.ok());
    // Wait until some jobs have their receipts, then interrupt.
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    auto receipts = [&] {
      int n = 0;
      std::error_code ec;
      if (fs::exists(t.path / "state/cluster/receipts/batch", ec))
        for (const auto& e : fs::directory_iterator(t.path / "state/cluster/receipts/batch"))
          n += fs::exists(e.path() / "job_receipt.json") ? 1 : 0;
      return n;
    };
    while (receipts() < 4 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(20ms);
    REQUIRE(receipts() >= 4);
    const int code = child->terminate(std::chrono::seconds(20));
    const std::string first = *util::read_file(t.path / "first.out");
    CHECK_MESSAGE(code == 130, first);
    CHECK(first.find("\"interrupted\": true") != std::string::npos);

    const auto again = net.controller(t.path, {"submit", "--batch", (t.path / "c.jsonl").string(), "--run-id", "batch"});
    INFO(again.out);
    CHECK(again.exit_code == 0);
    CHECK(again.doc["succeeded"] == 12);
    CHECK(again.doc["skipped"].get<int>() >= 4);
    CHECK(again.doc["skipped"].get<int>() < 12);
    // Each job was queued once on one worker, over both runs.
    for (int i = 0; i < 12; ++i) {
      int queued = 0;
      for (int n = 1; n <= 3; ++n) queued += times_queued(net.root(n), "c" + std::to_string(i));
      CHECK_MESSAGE(queued == 1, "c" << i);
    }
  }
  SUBCASE("a bad batch file is refused before anything runs") {
    REQUIRE(util::write_file_atomic(t.path / "bad.json", R"([{"job_id":"x","step_name":"FFMPEG_PROBE"},{"step_name":"FFMPEG_PROBE"}])").ok());
    auto r = net.controller(t.path, {"submit", "--batch", (t.path / "bad.json").string(), "--run-id", "batch"});
    CHECK(r.exit_code == 2);
    CHECK(r.doc["error"] == "batch job 2: job_id is required");
    REQUIRE(util::write_file_atomic(t.path / "twice.json", R"([{"job_id":"x","step_name":"FFMPEG_PROBE"},{"job_id":" x ","step_name":"FFMPEG_PROBE"}])").ok());
    r = net.controller(t.path, {"submit", "--batch", (t.path / "twice.json").string(), "--run-id", "batch"});
    CHECK(r.exit_code == 2);
    CHECK(r.doc["error"] == "batch job 2: run batch job x is given twice");
    REQUIRE(util::write_file_atomic(t.path / "typo.jsonl", "{\"job_id\":\"x\",\"step_name\":\"FFMPEG_PROBE\",\"priorty\":3}\n").ok());
    r = net.controller(t.path, {"submit", "--batch", (t.path / "typo.jsonl").string(), "--run-id", "batch"});
    CHECK(r.exit_code == 2);
    CHECK(r.doc["error"].get<std::string>().find("unknown key 'priorty'") != std::string::npos);
    REQUIRE(util::write_file_atomic(t.path / "broken.jsonl", "{\"job_id\":\"x\",\"step_name\":\"FFMPEG_PROBE\"}\n{not json\n").ok());
    r = net.controller(t.path, {"submit", "--batch", (t.path / "broken.jsonl").string(), "--run-id", "batch"});
    CHECK(r.exit_code == 2);
    CHECK(r.doc["error"].get<std::string>().find("batch file line 2") == 0);
    CHECK(!fs::exists(t.path / "state/cluster/receipts/batch"));
  }
}


// Counts the lines of a worker's log (its access log) for which `pick` holds.
int count_lines(const std::string& log, const std::function<bool(const std::string&)>& pick) {
  int n = 0;
  std::size_t at = 0;
  while (at < log.size()) {
    const auto end = std::min(log.find('\n', at), log.size());
    n += pick(log.substr(at, end - at)) ? 1 : 0;
    at = end + 1;
  }
  return n;
}

TEST_CASE("mesh: a batch follows 40 running jobs on a worker over one connection without busy polling") {
  if (!Tailnet::usable()) return;
  TempDir t;
  const fs::path video = make_video(t.path, 1.0);
  const fs::path hold = t.path / "hold";
  REQUIRE(util::write_file_atomic(hold, "").ok());
  Tailnet net(t.path, 1);
  const std::string path = path_with_holding_standin(t.path / "bin", "ffprobe", hold);
  net.start(1, {"--slots", "40"}, "s3cret", "", {{"PATH", path}});
  net.write_nodes(t.path, {1});
  std::string text;
  // The last two ask for what the first two do: the worker answers them as those jobs
  // (idempotently), so two of the batch's jobs follow one job of the worker.
  for (int i = 0; i < 40; ++i)
    text += json{{"job_id", "w" + std::to_string(i)}, {"step_name", "FFMPEG_PROBE"},
                 {"payload", {{"media_path", video.string()}, {"note", i < 38 ? i : i - 38}}}}.dump() + "\n";
  REQUIRE(util::write_file_atomic(t.path / "w.jsonl", text).ok());

  platform::ProcessSpec spec;
  spec.argv = {"bash", RAYVAULT_TAILNET_SCRIPT, (t.path / "tailnet").string(), "exec", RAYVAULT_CONTROLLER_BIN, "submit",
               "--batch", (t.path / "w.jsonl").string(), "--run-id", "watch"};
  spec.cwd = t.path;
  spec.env = {{"RAYVAULT_CLUSTER_SECRET", "s3cret"}};
  auto child = platform::Child::spawn(spec, t.path / "batch.out");
  REQUIRE(child.ok());
  const auto is_submit = [](const std::string& l) { return l == "POST /job 200"; };
  const auto is_watch = [](const std::string& l) { return l.rfind("POST /jobs/watch 200", 0) == 0; };
  // All 40 sent and running (the worker has a slot for each): then nothing changes while they hold.
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (count_lines(net.worker_log(1), is_submit) < 40 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  REQUIRE(count_lines(net.worker_log(1), is_submit) == 40);
  // The submissions' own connections close, and the rounds of the last jobs' start are over: the
  // count of rounds stays put for a second (the access log is written every 250 ms).
  int rounds_before = -1;
  for (auto quiet = std::chrono::steady_clock::now(); std::chrono::steady_clock::now() < deadline;) {
    const int n = count_lines(net.worker_log(1), is_watch);
    if (n != rounds_before || connections_to(net, 1) > 2) {
      rounds_before = n;
      quiet = std::chrono::steady_clock::now();
    } else if (std::chrono::steady_clock::now() - quiet > 1s) {
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  int most = 0;
  for (int k = 0; k < 40; ++k) {  // two seconds of following
    most = std::max(most, connections_to(net, 1));
    std::this_thread::sleep_for(50ms);
  }
  std::this_thread::sleep_for(500ms);  // the access log's lines of those two seconds are written
  const int rounds_during = count_lines(net.worker_log(1), is_watch) - rounds_before;
  // One held watch for all 40 (at most one probe of the batch beside it), not a poll per job;
  // and while no job changes, no round ends but the one a late change may have woken.
  CHECK(most >= 1);
  CHECK(most <= 2);
  CHECK(rounds_during <= 1);

  fs::remove(hold);
  const auto end_by = std::chrono::steady_clock::now() + 90s;
  while (child->running() && std::chrono::steady_clock::now() < end_by) std::this_thread::sleep_for(50ms);
  const int code = child->terminate();
  const std::string out = *util::read_file(t.path / "batch.out");
  INFO(out);
  CHECK(code == 0);
  CHECK(out.find("\"succeeded\": 40") != std::string::npos);
  const std::string log = net.worker_log(1);
  // No job was asked after on its own; the rounds came with the jobs' changes, not in a loop.
  CHECK(count_lines(log, [](const std::string& l) {
          return l.rfind("GET /job/", 0) == 0 && l.find('/', 9) == std::string::npos;
        }) == 0);
  CHECK(count_lines(log, is_watch) <= 3 * 40);
  CHECK(count_lines(log, is_watch) >= 1);
}

}  // namespace rayvault::test

namespace rayvault::test {

TEST_CASE("mesh: submit --priority places a job ahead in a busy worker's queue across the tailnet") {
  if (!Tailnet::usable()) return;
  TempDir t;
  const fs::path video = make_video(t.path, 1.0);
  const fs::path bin = t.path / "bin", hold = t.path / "hold", order = t.path / "order";
  const std::string path = ordering_ffprobe(bin, order, hold);
  Tailnet net(t.path, 1);
  net.start(1, {"--slots", "1"}, "s3cret", "", {{"PATH", path}});
  net.write_nodes(t.path, {1});
  REQUIRE(util::write_file_atomic(hold, "").ok());
  auto submit = [&](const std::string& name, const std::string& priority) {
    const fs::path media = t.path / (name + ".mp4");
    fs::copy_file(video, media, fs::copy_options::overwrite_existing);
    std::vector<std::string> args{"submit", "--run-id", "prio", "--job-id", name, "--step-name", "FFMPEG_PROBE",
                                  "--payload-json", json{{"media_path", media.string()}}.dump()};
    if (!priority.empty()) args.insert(args.end(), {"--priority", priority});
    return std::async(std::launch::async, [&net, &t, args] { return net.controller(t.path, args); });
  };
  auto queued_on_node = [&](int want) {
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
      const auto v = net.controller(t.path, {"nodes", "--json"});
      if (row_of(v.doc["nodes"], "node1")["queue_depth"] == want) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  };
  auto first = submit("first", "");
  REQUIRE(wait_for_file(order));
  auto low = submit("low", "0");
  REQUIRE(queued_on_node(2));
  auto high = submit("high", "7");
  REQUIRE(queued_on_node(3));
  auto mid = submit("mid", "3");
  REQUIRE(queued_on_node(4));
  fs::remove(hold);
  for (auto* f : {&first, &low, &high, &mid}) CHECK(f->get().doc["status"] == "succeeded");
  CHECK(*util::read_file(order) == "first.mp4\nhigh.mp4\nmid.mp4\nlow.mp4\n");
}

}  // namespace rayvault::test
