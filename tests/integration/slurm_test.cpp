// The Slurm launch mode on a real Slurm: a single-node cluster from Debian's slurm-wlm and munge
// (tools/slurm_local.sh: slurmctld and slurmd in the foreground, fake GPUs as GRES files), a real
// worker in `--launch slurm` submitting POSE_ESTIMATE with sbatch, and the stand-in pose runner
// (the model itself cannot run here). Skipped with the reason where Slurm cannot start; under CI,
// which installs it, that is a failure.
#include <doctest/doctest.h>

#include <thread>

#include "platform/process.hpp"
#include "platform/system_info.hpp"
#include "protocol/envelope.hpp"
#include "protocol/steps.hpp"
#include "tests/integration/harness.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"

using namespace rayvault;
using namespace rayvault::test;

namespace {

using Env = std::vector<std::pair<std::string, std::optional<std::string>>>;

struct ToolRun {
  int exit_code = -1;
  std::string out, err;
};

ToolRun run_tool(std::vector<std::string> argv, const Env& env = {}) {
  platform::ProcessSpec spec;
  spec.argv = std::move(argv);
  spec.env = env;
  spec.timeout = std::chrono::seconds(120);
  ToolRun r;
  spec.on_output_line = [&r](std::string_view l) { r.err += std::string(l) + "\n"; };
  auto res = platform::run_process(spec);
  REQUIRE_MESSAGE(res.ok(), (res.ok() ? "" : res.error().message));
  r.exit_code = res->exit_code;
  r.out = res->stdout_text;
  return r;
}

// A throwaway Slurm cluster in a test's folder; torn down (jobs cancelled, daemons stopped) at the end.
class SlurmCluster {
 public:
  static std::string unavailable_reason() {
    const auto r = run_tool({"bash", RAYVAULT_SLURM_SCRIPT, "/nonexistent", "check"});
    return r.exit_code == 0 ? std::string() : util::trim(r.out + r.err);
  }
  static bool usable() {
    const std::string why = unavailable_reason();
    if (why.empty()) return true;
    if (util::parse_bool_text(platform::getenv_string("CI")).value_or(false)) FAIL("Slurm unavailable under CI: " << why);
    MESSAGE("skipped, no Slurm on this machine: " << why);
    return false;
  }
  explicit SlurmCluster(const fs::path& dir) : dir_(dir / "slurm") {
    const auto r = run_tool({"bash", RAYVAULT_SLURM_SCRIPT, util::u8(dir_), "up", "2"});
    REQUIRE_MESSAGE(r.exit_code == 0, r.out << r.err);
    node_ = util::trim(*util::read_file(dir_ / "node"));
  }
  ~SlurmCluster() { run_tool({"bash", RAYVAULT_SLURM_SCRIPT, util::u8(dir_), "down"}); }
  SlurmCluster(const SlurmCluster&) = delete;
  SlurmCluster& operator=(const SlurmCluster&) = delete;

  std::string conf() const { return util::u8(dir_ / "slurm.conf"); }
  const std::string& node() const { return node_; }
  // A Slurm client command against this cluster.
  ToolRun run(std::vector<std::string> argv) const { return run_tool(std::move(argv), {{"SLURM_CONF", conf()}}); }
  // scontrol show job's KEY=VALUE fields.
  std::map<std::string, std::string> job(const std::string& id) const {
    std::map<std::string, std::string> out;
    const auto r = run({"scontrol", "show", "job", "-o", id});
    std::istringstream in(r.out);
    for (std::string w; in >> w;)
      if (const auto eq = w.find('='); eq != std::string::npos) out[w.substr(0, eq)] = w.substr(eq + 1);
    return out;
  }
  // Every job Slurm lists whose name starts with `prefix` (the worker adds an attempt token), any
  // state: "ID STATE" lines.
  std::vector<std::string> jobs_named(const std::string& prefix) const {
    std::vector<std::string> out;
    std::istringstream in(run({"squeue", "-h", "-t", "all", "-o", "%i %T %j"}).out);
    for (std::string id, state, name; in >> id >> state >> name;)
      if (name.rfind(prefix, 0) == 0) out.push_back(id + " " + state);
    return out;
  }
  // Jobs Slurm still has queued or running.
  std::string live_jobs() const { return util::trim(run({"squeue", "-h", "-o", "%i %j %T"}).out); }

 private:
  fs::path dir_;
  std::string node_;
};

std::string pose_runner_command() { return "python3 " + std::string(RAYVAULT_TEST_STANDINS) + "/pose_runner_standin.py"; }

struct SlurmWorker {
  fs::path settings, mode;
  std::unique_ptr<WorkerProcess> process;
};

// A worker in Slurm launch mode on the cluster, following its jobs every 0.2-1 s.
SlurmWorker start_slurm_worker(const fs::path& dir, const SlurmCluster& cluster, const std::string& id, json settings = json::object()) {
  SlurmWorker w;
  w.settings = dir / (id + "-slurm.json");
  w.mode = dir / (id + "-runner-mode");
  json s = {{"launch", "slurm"},
            {"poll_min_sec", 0.2},
            {"poll_max_sec", 1},
            {"info_refresh_sec", 1},
            {"gpu_model", "Test GPU"},
            {"gpu_vram_gb", 24},
            {"defaults", {{"partition", "gpu"}, {"time_limit_min", 10}, {"gpus", 1}, {"cpus", 1}, {"mem_gb", 0.5}}}};
  s.update(settings);
  REQUIRE(util::write_file_atomic(w.settings, s.dump()).ok());
  REQUIRE(util::write_file_atomic(w.mode, "ok").ok());
  w.process = std::make_unique<WorkerProcess>(
      dir, id,
      WorkerOptions{"s3cret", "", {"--slurm-config", util::u8(w.settings)},
                    {{"SLURM_CONF", cluster.conf()}, {"POSE_RUNNER", pose_runner_command()}, {"STANDIN_MODE_FILE", util::u8(w.mode)}}});
  return w;
}

json submit(const WorkerProcess& w, const std::string& job_id, const json& payload) {
  const auto reply = http_post(w.port(), "/job", job_body("slurm", job_id, "POSE_ESTIMATE", payload).dump());
  REQUIRE_MESSAGE(reply.status == 200, reply.body);
  return reply.json_body()["job"];
}

json wait_for(const WorkerProcess& w, const std::string& job_id, const json& payload, const std::function<bool(const json&)>& pred,
              std::chrono::seconds within = std::chrono::seconds(90)) {
  return poll_job(w.port(), "slurm", job_id, protocol::inputs_hash(payload), pred, within);
}

bool ended(const json& j) { return j["status"] == "succeeded" || j["status"] == "failed" || j["status"] == "cancelled"; }

std::string job_log(const WorkerProcess& w, const std::string& job_id, const json& payload) {
  return http_get(w.port(), "/job/" + job_id + "/logs?" +
                                signed_query("slurm", job_id, protocol::steps::kJobLogs, protocol::inputs_hash(payload)))
      .body;
}

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Waits (polling Slurm, with a deadline) until the job's state is `state`.
void wait_slurm_state(const SlurmCluster& c, const std::string& id, const std::string& state) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  std::string seen;
  while (std::chrono::steady_clock::now() < deadline) {
    seen = c.job(id)["JobState"];
    if (seen == state) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  FAIL("Slurm job " << id << " never reached " << state << " (last " << seen << ")");
}

}  // namespace

TEST_CASE("slurm: POSE_ESTIMATE runs through sbatch on a real Slurm: completes with its artifacts, waits while pending, a failing runner") {
  if (!SlurmCluster::usable()) return;
  TempDir t;
  SlurmCluster cluster(t.path);
  auto w = start_slurm_worker(t.path, cluster, "hpc");
  const auto video = make_video(t.path, 4);

  // Caps: the cluster's partition, GPU type and count (from sinfo), matched as a GPU node.
  json caps;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  do {
    caps = http_get(w.process->port(), "/health").json_body()["caps"];
  } while (!caps["slurm"].contains("partitions") && std::chrono::steady_clock::now() < deadline);
  REQUIRE_MESSAGE(caps["slurm"].contains("partitions"), caps.dump());
  CHECK(caps["launch"] == "slurm");
  CHECK(caps["gpu"] == true);
  CHECK(caps["gpu_model"] == "Test GPU");
  CHECK(caps["vram_gb"] == 24);
  const json part = caps["slurm"]["partitions"][0];
  CHECK(part["name"] == "gpu");
  CHECK(part["default"] == true);
  CHECK(part["gpus"] == 2);
  CHECK(part["gpus_free"] == 2);
  CHECK(part["gpu_types"] == json::array({"gpu"}));
  CHECK(caps["slurm"]["steps"] == json::array({"POSE_ESTIMATE"}));

  SUBCASE("the controller picks the Slurm worker and gets the artifacts back") {
    write_nodes(t.path, {{"hpc", w.process->port()}});
    const auto run = run_controller(t.path, {"submit", "--run-id", "shot", "--job-id", "pose1", "--step-name", "POSE_ESTIMATE",
                                             "--payload-json", json{{"video_path", video.string()}, {"max_seconds", 2}}.dump()});
    REQUIRE_MESSAGE(run.exit_code == 0, run.out << run.err);
    CHECK(run.doc["mode"] == "remote");
    CHECK(run.doc["node_id"] == "hpc");
    const fs::path receipts = t.path / "state/cluster/receipts/shot/pose1";
    const auto receipt = protocol::parse_json(*util::read_file(receipts / "job_receipt.json"));
    REQUIRE(receipt.ok());
    const json metrics = (*receipt)["job_status"]["metrics"];
    CHECK(metrics["slurm_state"] == "COMPLETED");
    CHECK(metrics["slurm_partition"] == "gpu");
    CHECK(metrics["slurm_restarts"] == 0);
    CHECK(metrics["gpu_index"] == "0");  // Slurm's CUDA_VISIBLE_DEVICES for gpu:1
    CHECK(metrics["gpu_model"] == "Test GPU");
    const std::string slurm_id = metrics["slurm_job_id"];
    REQUIRE(!slurm_id.empty());
    for (const char* name : {"pose.npz", "pose_meta.json", "pose_runner.log"}) {
      INFO(name);
      CHECK(fs::is_regular_file(receipts / "artifacts" / name));
    }
    for (const auto& a : (*receipt)["downloaded_artifacts"]) CHECK(a["sha256"] == sha256_of(a["local_path"].get<std::string>()));
    // The batch script asked for what the settings say, with --requeue and the job's id in its name.
    const auto job = cluster.job(slurm_id);
    CHECK(job.at("JobName").rfind("rayvault.hpc.pose1.", 0) == 0);
    CHECK(job.at("TimeLimit") == "00:10:00");
    CHECK(job.at("TresPerNode") == "gres:gpu:1");
    CHECK(job.at("Requeue") == "1");
    CHECK(job.at("Partition") == "gpu");
    // The batch job's output joined the job's log: the step's events and the runner's own lines.
    const std::string log = *util::read_file(receipts / "worker.log");
    CHECK(log.find("\"event\":\"slurm_submitted\"") != std::string::npos);
    CHECK(log.find("\"event\":\"slurm_step_started\"") != std::string::npos);
    CHECK(log.find("loading gvhmr checkpoint on cuda:0") != std::string::npos);
    // Nothing is left in the shared folder once the job has ended; the worker's folder there is its own.
    CHECK(fs::is_empty(w.process->root() / "slurm" / "hpc"));
    CHECK((fs::status(w.process->root() / "slurm" / "hpc").permissions() & fs::perms::all) == fs::perms::owner_all);
  }

  SUBCASE("a job waits as queued while Slurm holds it pending, with the Slurm job id and reason") {
    REQUIRE(cluster.run({"scontrol", "update", "nodename=" + cluster.node(), "state=drain", "reason=maintenance"}).exit_code == 0);
    const json payload = {{"video_path", video.string()}, {"max_seconds", 1}, {"slurm", {{"time_limit_min", 3}, {"cpus", 8}}}};
    submit(*w.process, "held", payload);
    const json pending = wait_for(*w.process, "held", payload, [](const json& j) { return j["metrics"].contains("slurm_reason") && !j["metrics"]["slurm_reason"].get<std::string>().empty(); });
    CHECK(pending["status"] == "queued");
    CHECK(pending["metrics"]["slurm_state"] == "PENDING");
    const std::string id = pending["metrics"]["slurm_job_id"];
    CHECK(pending["message"].get<std::string>().find("Slurm job " + id + " is pending (") != std::string::npos);
    // The payload lowered the time limit; its CPUs above the limit stayed at the limit (noted in the log).
    CHECK(cluster.job(id).at("TimeLimit") == "00:03:00");
    CHECK(cluster.job(id).at("NumCPUs") == "1");
    CHECK(job_log(*w.process, "held", payload).find("payload.slurm.cpus asked more than this worker allows") != std::string::npos);
    // The node comes back: the job runs to its end.
    REQUIRE(cluster.run({"scontrol", "update", "nodename=" + cluster.node(), "state=resume"}).exit_code == 0);
    const json done = wait_for(*w.process, "held", payload, ended);
    CHECK(done["status"] == "succeeded");
    CHECK(done["metrics"]["slurm_nodes"] == cluster.node());  // (RUNNING may pass between two rounds unseen)
    CHECK(job_log(*w.process, "held", payload).find("\"event\":\"slurm_step_started\"") != std::string::npos);
  }

  SUBCASE("a runner that fails: the step's error code, Slurm's FAILED") {
    REQUIRE(util::write_file_atomic(w.mode, "fail_exit").ok());
    const json payload = {{"video_path", video.string()}, {"max_seconds", 1}};
    submit(*w.process, "broken", payload);
    const json done = wait_for(*w.process, "broken", payload, ended);
    CHECK(done["status"] == "failed");
    CHECK(done["error_code"] == "COMMAND_FAILED");
    CHECK(done["error_message"].get<std::string>().find("CUDA error: out of memory") != std::string::npos);
    CHECK(done["metrics"]["slurm_state"] == "FAILED");
    CHECK(done["metrics"]["slurm_exit_code"] == "3:0");
    CHECK(done["artifacts"].empty());
  }

  SUBCASE("a job Slurm will never start is cancelled there and fails with Slurm's reason") {
    REQUIRE(cluster.run({"scontrol", "update", "PartitionName=gpu", "MaxTime=1"}).exit_code == 0);
    const json payload = {{"video_path", video.string()}, {"max_seconds", 1}, {"f_mm", 7}};
    submit(*w.process, "too-long", payload);
    const json done = wait_for(*w.process, "too-long", payload, ended);
    CHECK(done["status"] == "failed");
    CHECK(done["error_code"] == "SLURM_SUBMIT_FAILED");
    CHECK(done["error_message"].get<std::string>().find("PartitionTimeLimit") != std::string::npos);
    wait_slurm_state(cluster, done["metrics"]["slurm_job_id"], "CANCELLED");
    CHECK(cluster.live_jobs().empty());
  }

  SUBCASE("payloads that ask for what the worker does not allow") {
    const json bad_partition = {{"video_path", video.string()}, {"slurm", {{"partition", "other"}}}};
    submit(*w.process, "bad-part", bad_partition);
    const json r1 = wait_for(*w.process, "bad-part", bad_partition, ended);
    CHECK(r1["error_code"] == "INVALID_INPUT");
    CHECK(r1["error_message"].get<std::string>().find("partition other is not one this worker may use") != std::string::npos);
    const json bad_key = {{"video_path", video.string()}, {"slurm", {{"exclusive", true}}}};
    submit(*w.process, "bad-key", bad_key);
    CHECK(wait_for(*w.process, "bad-key", bad_key, ended)["error_code"] == "INVALID_INPUT");
    CHECK(cluster.live_jobs().empty());
  }
}

TEST_CASE("slurm: the end of a Slurm job as Slurm decides it: time limit, requeue in the middle, scancel") {
  if (!SlurmCluster::usable()) return;
  TempDir t;
  SlurmCluster cluster(t.path);
  auto w = start_slurm_worker(t.path, cluster, "hpc");
  const auto video = make_video(t.path, 3);
  REQUIRE(util::write_file_atomic(w.mode, "sleep 300").ok());
  const auto running = [](const json& j) { return j["status"] == "running"; };

  SUBCASE("the time limit: SLURM_TIMEOUT") {
    const json payload = {{"video_path", video.string()}, {"max_seconds", 1}, {"f_mm", 1}};
    submit(*w.process, "long", payload);
    const std::string id = wait_for(*w.process, "long", payload, running)["metrics"]["slurm_job_id"];
    // The smallest limit sbatch takes is a minute; the limit is brought to now instead.
    REQUIRE(cluster.run({"scontrol", "update", "JobId=" + id, "TimeLimit=0"}).exit_code == 0);
    const json done = wait_for(*w.process, "long", payload, ended, std::chrono::seconds(120));
    CHECK(done["status"] == "failed");
    CHECK(done["error_code"] == "SLURM_TIMEOUT");
    CHECK(done["error_message"].get<std::string>().find("time limit") != std::string::npos);
    CHECK(cluster.job(id).at("JobState") == "TIMEOUT");
  }

  SUBCASE("scontrol requeue in the middle: followed to the end of the second run") {
    const json payload = {{"video_path", video.string()}, {"max_seconds", 1}, {"f_mm", 2}};
    submit(*w.process, "requeued", payload);
    const std::string id = wait_for(*w.process, "requeued", payload, running)["metrics"]["slurm_job_id"];
    REQUIRE(util::write_file_atomic(w.mode, "ok").ok());  // the second run ends at once
    REQUIRE(cluster.run({"scontrol", "requeue", id}).exit_code == 0);
    wait_slurm_state(cluster, id, "PENDING");
    REQUIRE(cluster.run({"scontrol", "update", "JobId=" + id, "StartTime=now"}).exit_code == 0);
    const json done = wait_for(*w.process, "requeued", payload, ended);
    CHECK(done["status"] == "succeeded");
    CHECK(done["metrics"]["slurm_job_id"] == id);
    CHECK(done["metrics"]["slurm_restarts"] == 1);
    const std::string log = job_log(*w.process, "requeued", payload);
    CHECK(count_of(log, "\"event\":\"slurm_step_started\"") == 2);
    CHECK(log.find("(restart 1) on") != std::string::npos);
    CHECK(log.find("\"event\":\"slurm_requeued\"") != std::string::npos);
  }

  SUBCASE("cancel through the controller: scancel, nothing left in Slurm") {
    const json payload = {{"video_path", video.string()}, {"max_seconds", 1}, {"f_mm", 3}};
    submit(*w.process, "stopme", payload);
    const std::string id = wait_for(*w.process, "stopme", payload, running)["metrics"]["slurm_job_id"];
    write_nodes(t.path, {{"hpc", w.process->port()}});
    const auto cancel = run_controller(t.path, {"cancel", "--run-id", "slurm", "--job-id", "stopme", "--node-id", "hpc",
                                                "--inputs-hash", protocol::inputs_hash(payload)});
    CHECK_MESSAGE(cancel.exit_code == 0, cancel.out << cancel.err);
    const json done = wait_for(*w.process, "stopme", payload, ended);
    CHECK(done["status"] == "cancelled");
    CHECK(done["error_code"] == "CANCELLED");
    wait_slurm_state(cluster, id, "CANCELLED");
    CHECK(cluster.live_jobs().empty());
    CHECK(job_log(*w.process, "stopme", payload).find("scancel " + id) != std::string::npos);
  }

  SUBCASE("a job cancelled while pending leaves nothing queued in Slurm") {
    REQUIRE(cluster.run({"scontrol", "update", "nodename=" + cluster.node(), "state=drain", "reason=maintenance"}).exit_code == 0);
    const json payload = {{"video_path", video.string()}, {"max_seconds", 1}, {"f_mm", 4}};
    submit(*w.process, "queued", payload);
    const std::string id =
        wait_for(*w.process, "queued", payload, [](const json& j) { return j["metrics"].contains("slurm_job_id"); })["metrics"]["slurm_job_id"];
    write_nodes(t.path, {{"hpc", w.process->port()}});
    const auto cancel = run_controller(t.path, {"cancel", "--run-id", "slurm", "--job-id", "queued", "--node-id", "hpc",
                                                "--inputs-hash", protocol::inputs_hash(payload)});
    CHECK_MESSAGE(cancel.exit_code == 0, cancel.out << cancel.err);
    CHECK(wait_for(*w.process, "queued", payload, ended)["status"] == "cancelled");
    wait_slurm_state(cluster, id, "CANCELLED");
    CHECK(cluster.live_jobs().empty());
  }

  SUBCASE("a staging folder swapped for a symlink publishes nothing from behind it") {
    REQUIRE(util::write_file_atomic(w.mode, "sleep 10").ok());
    const json payload = {{"video_path", video.string()}, {"max_seconds", 1}, {"f_mm", 6}};
    submit(*w.process, "swapped", payload);
    wait_for(*w.process, "swapped", payload, running);
    // Once the step is under way in its folder (it made its work folder in staging), staging is
    // replaced by a symlink to a folder elsewhere.
    const fs::path base = w.process->root() / "slurm" / "hpc";
    fs::path staging;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (staging.empty() && std::chrono::steady_clock::now() < deadline) {
      for (const auto& e : fs::directory_iterator(base))
        if (fs::exists(e.path() / "staging" / ".pose")) staging = e.path() / "staging";
      if (staging.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    REQUIRE(!staging.empty());
    const fs::path elsewhere = t.path / "elsewhere";
    fs::create_directories(elsewhere);
    fs::rename(staging, t.path / "moved-away");
    fs::create_directory_symlink(elsewhere, staging);
    const json done = wait_for(*w.process, "swapped", payload, ended);
    CHECK(done["status"] == "failed");
    CHECK(done["error_code"] == "SLURM_JOB_FAILED");
    CHECK(done["artifacts"].empty());
    CHECK(done["error_message"].get<std::string>().find("was replaced") != std::string::npos);
    CHECK(fs::is_regular_file(w.process->root() / "worker.db"));
  }

  SUBCASE("scancel by someone else: SLURM_CANCELLED, a fault of the node") {
    const json payload = {{"video_path", video.string()}, {"max_seconds", 1}, {"f_mm", 5}};
    submit(*w.process, "admin", payload);
    const std::string id = wait_for(*w.process, "admin", payload, running)["metrics"]["slurm_job_id"];
    REQUIRE(cluster.run({"scancel", id}).exit_code == 0);
    const json done = wait_for(*w.process, "admin", payload, ended);
    CHECK(done["status"] == "failed");
    CHECK(done["error_code"] == "SLURM_CANCELLED");
    CHECK(done["error_message"].get<std::string>().find("cancelled in Slurm, not by this worker") != std::string::npos);
  }
}

TEST_CASE("slurm: a restarted worker follows its Slurm jobs to their end and never submits one twice") {
  if (!SlurmCluster::usable()) return;
  TempDir t;
  SlurmCluster cluster(t.path);
  const auto video = make_video(t.path, 3);

  SUBCASE("killed while the Slurm job runs") {
    auto w = start_slurm_worker(t.path, cluster, "hpc");
    REQUIRE(util::write_file_atomic(w.mode, "sleep 4").ok());
    const json payload = {{"video_path", video.string()}, {"max_seconds", 1}};
    submit(*w.process, "survivor", payload);
    const json running = wait_for(*w.process, "survivor", payload, [](const json& j) { return j["status"] == "running"; });
    const std::string id = running["metrics"]["slurm_job_id"];
    w.process->crash();  // SIGKILL: no chance to say anything
    w.process->start();
    const json done = wait_for(*w.process, "survivor", payload, ended);
    CHECK(done["status"] == "succeeded");
    CHECK(done["error_code"] == "");
    CHECK(done["metrics"]["slurm_job_id"] == id);
    CHECK(cluster.jobs_named("rayvault.hpc.survivor.") == std::vector<std::string>{id + " COMPLETED"});
    const std::string log = job_log(*w.process, "survivor", payload);
    CHECK(log.find("WORKER_RESTARTED") == std::string::npos);
    CHECK(count_of(log, "\"event\":\"slurm_submitted\"") == 1);
    // Submitted again after it succeeded: the idempotent answer, no second Slurm job.
    submit(*w.process, "survivor", payload);
    CHECK(cluster.jobs_named("rayvault.hpc.survivor.").size() == 1);
  }

  SUBCASE("sbatch answers too late: the job it did submit is found by name and followed") {
    // An sbatch that submits, then hangs past the worker's command timeout (a slurmctld that
    // took the job but whose answer never came back).
    const fs::path bin = t.path / "slow-bin";
    fs::create_directories(bin);
    for (const char* tool : {"squeue", "scontrol", "scancel", "sinfo", "sacct"})
      fs::create_symlink(platform::find_executable(tool), bin / tool);
    REQUIRE(util::write_file_atomic(bin / "sbatch", "#!/bin/sh\n\"" + util::u8(platform::find_executable("sbatch")) +
                                                        "\" \"$@\" >/dev/null\nexec sleep 60\n").ok());
    fs::permissions(bin / "sbatch", fs::perms::owner_all);
    auto w = start_slurm_worker(t.path, cluster, "slow", {{"bin_dir", util::u8(bin)}, {"command_timeout_sec", 8}});
    const json payload = {{"video_path", video.string()}, {"max_seconds", 1}};
    submit(*w.process, "late", payload);
    SUBCASE("followed once Slurm is found to have it") {
      const json done = wait_for(*w.process, "late", payload, ended);
      CHECK(done["status"] == "succeeded");
      CHECK(cluster.jobs_named("rayvault.slow.late.").size() == 1);
      CHECK(job_log(*w.process, "late", payload).find("sbatch did not answer in time, but Slurm has the job") != std::string::npos);
    }
    SUBCASE("cancelled while sbatch hangs: the job it did submit is cancelled in Slurm") {
      REQUIRE(util::write_file_atomic(w.mode, "sleep 300").ok());
      // sbatch has submitted once Slurm lists the job; the worker still waits for its answer.
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      while (cluster.jobs_named("rayvault.slow.late.").empty() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      REQUIRE(cluster.jobs_named("rayvault.slow.late.").size() == 1);
      write_nodes(t.path, {{"slow", w.process->port()}});
      const auto cancel = run_controller(t.path, {"cancel", "--run-id", "slurm", "--job-id", "late", "--node-id", "slow",
                                                  "--inputs-hash", protocol::inputs_hash(payload)});
      CHECK_MESSAGE(cancel.exit_code == 0, cancel.out << cancel.err);
      CHECK(wait_for(*w.process, "late", payload, ended)["status"] == "cancelled");
      const std::string id = cluster.jobs_named("rayvault.slow.late.").at(0).substr(0, cluster.jobs_named("rayvault.slow.late.").at(0).find(' '));
      wait_slurm_state(cluster, id, "CANCELLED");
      CHECK(cluster.live_jobs().empty());
    }
  }
}

TEST_CASE("slurm: sbatch missing gives SLURM_MISSING and a partition Slurm refuses gives SLURM_SUBMIT_FAILED with Slurm's words") {
  TempDir t;
  const auto video = make_video(t.path, 2);
  const json payload = {{"video_path", video.string()}, {"max_seconds", 1}};
  SUBCASE("no sbatch") {
    // Debian puts Slurm's commands in /usr/bin: the settings point the worker at an empty folder.
    fs::create_directories(t.path / "empty-bin");
    REQUIRE(util::write_file_atomic(t.path / "nosl.json", json{{"bin_dir", util::u8(t.path / "empty-bin")}}.dump()).ok());
    WorkerProcess w(t.path, "nosl",
                    WorkerOptions{"s3cret", "", {"--launch", "slurm", "--slurm-config", util::u8(t.path / "nosl.json")},
                                  {{"POSE_RUNNER", pose_runner_command()}}});
    CHECK(w.output().find("sbatch is not installed here") != std::string::npos);
    submit(w, "p", payload);
    const json done = wait_for(w, "p", payload, ended);
    CHECK(done["status"] == "failed");
    CHECK(done["error_code"] == "SLURM_MISSING");
    CHECK(done["error_message"].get<std::string>().find("sbatch is not installed") != std::string::npos);
  }
  SUBCASE("a partition Slurm does not have") {
    if (!SlurmCluster::usable()) return;
    SlurmCluster cluster(t.path);
    auto w = start_slurm_worker(t.path, cluster, "hpc", {{"defaults", {{"partition", "nosuch"}, {"gpus", 1}}}});
    submit(*w.process, "p", payload);
    const json done = wait_for(*w.process, "p", payload, ended);
    CHECK(done["status"] == "failed");
    CHECK(done["error_code"] == "SLURM_SUBMIT_FAILED");
    CHECK(done["error_message"].get<std::string>().find("Invalid partition") != std::string::npos);
    CHECK(cluster.live_jobs().empty());
  }
}
