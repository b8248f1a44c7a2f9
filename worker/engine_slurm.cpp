// The engine's Slurm lane: jobs of the steps the Slurm settings name are written out as a job
// folder in the shared folder (job.json and a batch script), submitted with sbatch, followed with
// one squeue call a round for all of them (the interval doubling while nothing changes), and
// ended here from the result file the batch job's `rayvault-worker slurm-step` wrote. The Slurm
// job id is stored with the job, so a restarted worker follows its jobs again and never submits
// one twice (a submission cut short is looked up by its job name first).
#include <algorithm>
#include <cstdio>
#include <fstream>

#include "protocol/errors.hpp"
#include "protocol/ids.hpp"
#include "protocol/steps.hpp"
#include "util/crypto.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"
#include "worker/engine.hpp"

namespace rayvault::worker {
namespace {

namespace codes = protocol::codes;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kMaxJoinedLines = 5000;
constexpr auto kResultGrace = std::chrono::seconds(10);

std::string describe(const slurm::Resources& r) {
  std::string s = "partition " + (r.partition.empty() ? std::string("(default)") : r.partition) + ", " +
                  std::to_string(r.time_limit_min) + " min";
  if (r.gpus > 0) s += ", gpu:" + (r.gpu_type.empty() ? "" : r.gpu_type + ":") + std::to_string(r.gpus);
  s += ", " + std::to_string(r.cpus) + " CPU" + (r.cpus == 1 ? "" : "s");
  if (r.mem_mb > 0) s += ", " + std::to_string(r.mem_mb) + " MiB";
  if (!r.account.empty()) s += ", account " + r.account;
  if (!r.qos.empty()) s += ", qos " + r.qos;
  return s;
}

bool slurm_running(std::string_view s) {
  return s == "RUNNING" || s == "COMPLETING" || s == "CONFIGURING" || s == "SUSPENDED" || s == "STOPPED" ||
         s == "SIGNALING" || s == "STAGE_OUT" || s == "RESIZING";
}

// A folder in the shared folder that only this account may use (0700), and not a symlink: no
// other account of the cluster can put, swap or read files there.
Status private_folder(const fs::path& p) {
  std::error_code ec;
  fs::create_directory(p, ec);
  const auto st = fs::symlink_status(p, ec);
  if (ec || st.type() != fs::file_type::directory)
    return Error(ErrorKind::io, "the Slurm job folder " + util::u8(p) + " is not a folder of this worker's own",
                 std::string(codes::kStorageFailed));
  fs::permissions(p, fs::perms::owner_all, fs::perm_options::replace, ec);
  if (ec)
    return Error(ErrorKind::io, "cannot keep " + util::u8(p) + " to this account (" + ec.message() + "): is it another user's?",
                 std::string(codes::kStorageFailed));
  return Ok{};
}

// The last max_bytes of a file (a batch job's output can be long; its end says why it failed).
std::string read_tail(const fs::path& p, std::uintmax_t max_bytes, bool& cut) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return {};
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::uintmax_t>(std::max<std::streamoff>(0, in.tellg()));
  cut = size > max_bytes;
  in.seekg(static_cast<std::streamoff>(cut ? size - max_bytes : 0));
  std::string text(static_cast<std::size_t>(std::min(size, max_bytes)), '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (cut) text.erase(0, text.find('\n') == std::string::npos ? 0 : text.find('\n') + 1);
  return text;
}

json slurm_metrics(const slurm::JobState& st, int restarts) {
  json m{{"slurm_job_id", st.id}, {"slurm_state", st.state}, {"slurm_reason", st.reason}, {"slurm_restarts", restarts}};
  if (!st.nodes.empty()) m["slurm_nodes"] = st.nodes;
  if (!st.partition.empty()) m["slurm_partition"] = st.partition;
  if (!st.exit_code.empty()) m["slurm_exit_code"] = st.exit_code;
  return m;
}

// What Slurm's end of a job means, for a job that left no result of its own.
std::string end_message(const slurm::JobState& st) {
  const std::string job = "Slurm job " + st.id;
  const std::string why = st.reason.empty() ? std::string() : " (" + st.reason + ")";
  const std::string code = st.exit_code.empty() ? std::string() : ", exit code " + st.exit_code;
  if (st.state == "LOST") return job + " is no longer known to Slurm and left no result";
  if (st.state == "PENDING")
    return "Slurm will never start job " + st.id + why + "; it was cancelled there (check the partition, time limit, account and QoS in the Slurm settings)";
  if (st.state == "COMPLETED") return job + " completed but its step left no result file" + code;
  if (st.state == "TIMEOUT" || st.state == "DEADLINE")
    return job + " was stopped at its time limit" + (st.time_limit.empty() ? std::string() : " of " + st.time_limit) + why;
  if (st.state == "OUT_OF_MEMORY") return job + " ran out of memory (raise mem_gb for this step)" + why;
  if (st.state == "NODE_FAIL" || st.state == "BOOT_FAIL") return job + "'s node failed" + why;
  if (st.state == "PREEMPTED") return job + " was preempted" + why;
  if (st.state == "CANCELLED" || st.state == "REVOKED") return job + " was cancelled in Slurm, not by this worker" + why;
  return job + " ended " + st.state + why + code;
}

}  // namespace

bool Engine::slurm_handles(const std::string& step_name) const { return config_.slurm && config_.slurm->handles(step_name); }

json Engine::slurm_info() {
  if (!config_.slurm) return nullptr;
  std::lock_guard lock(mu_);
  return slurm_info_;
}

void Engine::slurm_resume_locked(const state::StoredJob& job) {
  const std::string id = protocol::string_field(job.launch, "slurm_job_id");
  if (id.empty()) {
    // Cut short while sbatch ran: the lane looks the job up by name before it submits it again
    // (in the Slurm queue even if the settings no longer send its step to Slurm).
    const auto at = std::find_if(slurm_queue_.begin(), slurm_queue_.end(), [&job](const Queued& e) { return e.priority < job.priority; });
    slurm_queue_.insert(at, Queued{job.record.job_id, job.priority});
    return;
  }
  Followed f;
  f.slurm_id = id;
  f.dir = util::path_from_utf8(protocol::string_field(job.launch, "dir"));
  if (const auto r = job.launch.find("restarts"); r != job.launch.end() && r->is_number_integer()) f.restarts = r->get<int>();
  f.resumed = true;
  slurm_jobs_[job.record.job_id] = f;  // its state is read again on the first round
}

void Engine::slurm_drop_submission(state::StoredJob& job) {
  const std::string name = protocol::string_field(job.launch, "name");
  if (slurm_client_ && job.launch.contains("submitting") && !name.empty())
    if (auto st = slurm_client_->cancel_by_name(name); !st)
      log(job.record.job_id, LogLevel::warning, "slurm_unavailable", st.error().message + " (scancel it by hand if Slurm runs it)");
  std::error_code ec;
  if (const std::string folder = protocol::string_field(job.launch, "dir"); !folder.empty())
    fs::remove_all(util::path_from_utf8(folder), ec);
  job.launch = json::object();
}

void Engine::slurm_cancel_job(const std::string& slurm_id) {
  if (auto st = slurm_client_->cancel(slurm_id); !st) {
    std::fprintf(stderr, "rayvault-worker: %s; tried again on the next round\n", st.error().message.c_str());
    std::lock_guard lock(mu_);
    slurm_orphans_.push_back(slurm_id);
  }
}

void Engine::slurm_loop() {
  const slurm::Config& cfg = *config_.slurm;
  auto interval = cfg.poll_min;
  auto next_poll = Clock::now();
  auto next_info = Clock::now();
  while (true) {
    std::string to_submit;
    {
      std::unique_lock lock(mu_);
      const auto can_submit = [&] {
        return !slurm_queue_.empty() && static_cast<int>(slurm_jobs_.size()) < cfg.max_jobs && Clock::now() >= slurm_retry_at_;
      };
      auto until = std::min(next_poll, next_info);
      if (!slurm_queue_.empty() && slurm_retry_at_ > Clock::now()) until = std::min(until, slurm_retry_at_);
      slurm_cv_.wait_until(lock, until, [&] { return stopping_ || can_submit(); });
      if (stopping_) return;
      if (can_submit()) {
        to_submit = slurm_queue_.front().job_id;
        slurm_queue_.pop_front();
        slurm_submitting_ = to_submit;
      }
    }
    if (!to_submit.empty()) {
      slurm_submit(to_submit);
      {
        std::lock_guard lock(mu_);
        slurm_submitting_.clear();
      }
      notify();
      interval = cfg.poll_min;
      next_poll = std::min(next_poll, Clock::now() + interval);
    }
    const auto now = Clock::now();
    if (now >= next_info) {
      auto info = slurm_client_->cluster_info();
      json summary = json::object();
      if (info) {
        // Free GPUs in the partitions this worker submits to.
        int total = 0, free = 0;
        for (const auto& p : (*info)["partitions"]) {
          const std::string name = p.value("name", "");
          const bool ours = std::find(cfg.partitions.begin(), cfg.partitions.end(), name) != cfg.partitions.end() ||
                            (cfg.partitions.empty() && p.value("default", false));
          if (!ours) continue;
          total += p.value("gpus", 0);
          free += p.value("gpus_free", 0);
        }
        summary = *info;
        summary["gpus"] = total;
        summary["gpus_free"] = free;
      } else {
        std::lock_guard lock(mu_);
        summary = slurm_info_;
        summary["error"] = info.error().message;
        summary["error_code"] = info.error().code;
      }
      summary["read_at"] = util::format_utc(config_.clock());
      {
        std::lock_guard lock(mu_);
        slurm_info_ = std::move(summary);
      }
      next_info = now + cfg.info_refresh;
    }
    if (now >= next_poll) {
      const bool changed = slurm_poll();
      interval = changed ? cfg.poll_min : std::min(interval * 2, cfg.poll_max);
      next_poll = Clock::now() + interval;
    }
  }
}

void Engine::slurm_submit(const std::string& job_id) {
  auto loaded = store_->get(job_id);
  if (!loaded || loaded->record.status != protocol::status::kQueued) return;
  state::StoredJob job = std::move(*loaded);
  auto& r = job.record;
  const slurm::Config& cfg = *config_.slurm;
  const auto cancelled_meanwhile = [&](std::string& reason) {
    std::lock_guard lock(mu_);
    const auto it = cancel_reasons_.find(job_id);
    if (it == cancel_reasons_.end()) return false;
    reason = it->second;
    cancel_reasons_.erase(it);
    return true;
  };
  std::string reason;
  // Cancelled before it reached Slurm; a submission whose answer never came is cancelled there
  // by its name, in case it arrived.
  const auto cancel_unsubmitted = [&](const std::string& why) {
    log(job_id, LogLevel::warning, "job_cancelled", "cancelled before it went to Slurm" + (why.empty() ? std::string() : ": " + why));
    slurm_drop_submission(job);
    mark_cancelled(job, why);
    finish(job);
  };
  if (cancelled_meanwhile(reason)) return cancel_unsubmitted(reason);
  // Each submission of a job is an attempt with a token of its own in its folder and Slurm job
  // name: a restart finds exactly this attempt, never an earlier run of the same job id. A
  // submission cut short keeps its token, so it is looked up before anything is sent again.
  const bool cut_short = job.launch.contains("submitting") && !protocol::string_field(job.launch, "attempt").empty();
  const std::string attempt = cut_short ? protocol::string_field(job.launch, "attempt") : util::random_hex(4);
  const fs::path dir = cfg.shared_dir / config_.worker_id / (protocol::id_folder_name(job_id) + "." + attempt);
  const std::string name = slurm::job_name(config_.worker_id, job_id, attempt);
  const auto fail = [&](const Error& e) {
    job.launch = json::object();
    mark_failed(job, e);
    finish(job);
    std::error_code ec;
    fs::remove_all(dir, ec);
  };

  // Slurm does not answer now: the job stays queued here and is tried again, less often each
  // time, until Slurm answers or the job is cancelled.
  const auto retry_later = [&](const Error& e) {
    {
      std::lock_guard lock(mu_);
      const auto it = cancel_reasons_.find(job_id);
      if (it == cancel_reasons_.end()) {
        slurm_retry_wait_ = std::clamp(slurm_retry_wait_ * 2, cfg.poll_min, cfg.poll_max);
        slurm_retry_at_ = Clock::now() + slurm_retry_wait_;
        slurm_queue_.push_front(Queued{job_id, job.priority});
        r.message = "waiting for Slurm: " + e.message;
        (void)store_->update(job);
        return;
      }
      reason = it->second;  // cancelled while sbatch ran
      cancel_reasons_.erase(it);
    }
    cancel_unsubmitted(reason);
  };

  std::string slurm_id;
  if (cut_short) {
    // The last sbatch for this job may have reached slurmctld: never submit it twice.
    auto found = slurm_client_->find_by_name(name);
    if (!found) {
      if (found.error().code == codes::kSlurmUnavailable) return retry_later(found.error());
      return fail(found.error());
    }
    if (!found->empty()) {
      slurm_id = found->back();
      log(job_id, LogLevel::info, "slurm_found", "Slurm job " + slurm_id + " (" + name + ") was submitted before; following it");
    }
  }
  slurm::Resources res;
  if (slurm_id.empty()) {
    std::vector<std::string> notes;
    auto asked = slurm::resources_for(cfg, r.step_name, job.payload, notes);
    if (!asked) return fail(asked.error());
    res = *asked;
    auto artifacts = claim_artifact_dir(job);
    if (!artifacts) return fail(artifacts.error());
    std::error_code ec;
    fs::remove_all(dir, ec);
    for (const fs::path& folder : {dir.parent_path(), dir, dir / "staging"})
      if (auto st = private_folder(folder); !st) return fail(st.error());
    // Staged inputs go with the job into the shared folder, where the Slurm node can read them.
    auto payload = resolve_inputs(job.payload, dir / "inputs");
    if (!payload) return fail(payload.error());
    const json spec{{"run_id", r.run_id},
                    {"job_id", r.job_id},
                    {"step_name", r.step_name},
                    {"payload", *payload},
                    {"timeout_sec", res.time_limit_min * 60},
                    {"output_dir", util::u8(*artifacts)},
                    {"workspace_root", util::u8(workspace_root())},
                    {"env_file", util::u8(config_.step_config.env_file)},
                    {"cache_dir", util::u8(config_.step_config.cache_dir)},
                    {"tts_parallel", config_.step_config.tts_parallel},
                    {"tts_cache_max_bytes", config_.step_config.tts_cache_max_bytes},
                    {"gpu_model", cfg.gpu_model},
                    {"worker_id", config_.worker_id}};
    const std::string about = "rayvault-worker " + config_.worker_id + ": step " + r.step_name + " of job " +
                              protocol::id_folder_name(r.job_id) + " (run " + protocol::id_folder_name(r.run_id) + ")";
    Status written = util::write_file_atomic(dir / "job.json", protocol::dump_json(spec, 2));
    if (written) written = util::write_file_atomic(dir / "run.sh", slurm::batch_script(res, name, dir, cfg.worker_binary, about));
    if (!written) return fail(Error(ErrorKind::io, "cannot write the Slurm job folder: " + written.error().message,
                                    std::string(codes::kStorageFailed)));
    for (const auto& note : notes) log(job_id, LogLevel::warning, "slurm_limits", note);
    // Marked before sbatch runs: a restart from here on looks for the job by name first.
    job.launch = {{"submitting", true}, {"dir", util::u8(dir)}, {"name", name}, {"attempt", attempt}};
    (void)store_->update(job);
    auto id = slurm_client_->submit(dir / "run.sh", dir);
    if (!id && id.error().code == codes::kSlurmUnavailable) {
      // It may have reached slurmctld all the same.
      auto found = slurm_client_->find_by_name(name);
      if (found && !found->empty()) {
        log(job_id, LogLevel::warning, "slurm_found",
            "sbatch did not answer in time, but Slurm has the job: following Slurm job " + found->back());
        id = found->back();
      } else {
        log(job_id, LogLevel::warning, "slurm_unavailable", id.error().message + "; trying again");
        return retry_later(id.error());
      }
    }
    if (!id) return fail(id.error());
    slurm_id = *id;
    {
      std::lock_guard lock(mu_);
      slurm_retry_wait_ = std::chrono::milliseconds(0);
    }
    log(job_id, LogLevel::info, "slurm_submitted", "Slurm job " + slurm_id + " (" + name + "): " + describe(res));
  }
  job.launch = {{"slurm_job_id", slurm_id}, {"dir", util::u8(dir)}, {"name", name}, {"attempt", attempt}};
  r.message = "submitted to Slurm as job " + slurm_id;
  r.metrics = {{"slurm_job_id", slurm_id}, {"slurm_state", "PENDING"}};
  (void)store_->update(job);
  // A cancel that came during the submission ends it now; one that comes later finds the job
  // among those followed. Both are looked at under one lock, so none is missed.
  bool cancel_now = false;
  {
    std::lock_guard lock(mu_);
    if (const auto it = cancel_reasons_.find(job_id); it != cancel_reasons_.end()) {
      reason = it->second;
      cancel_reasons_.erase(it);
      cancel_now = true;
    } else {
      Followed f;
      f.slurm_id = slurm_id;
      f.dir = dir;
      slurm_jobs_[job_id] = f;
    }
  }
  if (cancel_now) {
    log(job_id, LogLevel::warning, "job_cancelled", "scancel " + slurm_id + (reason.empty() ? std::string() : ": " + reason));
    mark_cancelled(job, reason);
    finish(job);
    slurm_cancel_job(slurm_id);
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
}

bool Engine::slurm_poll() {
  std::map<std::string, Followed> followed;
  std::vector<std::string> orphans;
  {
    std::lock_guard lock(mu_);
    followed = slurm_jobs_;
    orphans.swap(slurm_orphans_);
  }
  for (const auto& id : orphans) slurm_cancel_job(id);
  if (followed.empty()) return false;
  std::vector<std::string> ids;
  for (const auto& [job_id, f] : followed) ids.push_back(f.slurm_id);
  auto states = slurm_client_->query(ids);
  if (!states) {
    std::fprintf(stderr, "rayvault-worker: cannot follow Slurm jobs now: %s\n", states.error().message.c_str());
    return false;
  }
  bool changed = false;
  const auto stopping = [this] {
    std::lock_guard lock(mu_);
    return stopping_;
  };
  for (const auto& [job_id, f] : followed) {
    if (stopping()) return changed;  // the rest is read again after the restart
    slurm::JobState st;
    if (const auto it = states->find(f.slurm_id); it != states->end()) {
      st = it->second;
    } else {
      auto shown = slurm_client_->show(f.slurm_id);  // purged from squeue: scontrol, then sacct
      if (!shown) continue;                          // Slurm does not answer: the next round
      if (*shown) st = **shown;
      else st.id = f.slurm_id, st.state = "LOST";
    }
    if (st.state == f.state && st.reason == f.reason && f.end_seen == Clock::time_point{}) continue;
    changed = true;
    bool ended = slurm::is_terminal(st.state) || st.state == "LOST" || (st.state == "PENDING" && slurm::never_starts(st.reason));
    const bool result_counts = st.state == "COMPLETED" || st.state == "FAILED" || st.state == "LOST";
    if (ended && result_counts && f.end_seen == Clock::time_point{}) {
      // On a network file system the result the batch job wrote may show a little after Slurm
      // says the job ended: a job without one is given a few seconds more.
      std::error_code ec;
      if (!fs::exists(f.dir / "result.json", ec)) {
        std::lock_guard lock(mu_);
        if (const auto it = slurm_jobs_.find(job_id); it != slurm_jobs_.end()) it->second.end_seen = Clock::now();
        continue;
      }
    }
    if (ended && result_counts && f.end_seen != Clock::time_point{} && Clock::now() - f.end_seen < kResultGrace) {
      std::error_code ec;
      if (!fs::exists(f.dir / "result.json", ec)) continue;
    }
    // Restarts and the exit code come from scontrol: read at the end and when a running job is
    // back in the queue (a requeue).
    if ((ended && st.state != "LOST") || (st.state == "PENDING" && slurm_running(f.state)))
      if (auto shown = slurm_client_->show(f.slurm_id); shown && *shown) {
        st.restarts = (*shown)->restarts;
        if (st.exit_code.empty()) st.exit_code = (*shown)->exit_code;
        if (st.time_limit.empty()) st.time_limit = (*shown)->time_limit;
        if (st.nodes.empty()) st.nodes = (*shown)->nodes;
      }
    if (ended) slurm_end(job_id, st);
    else slurm_update(job_id, st);
  }
  return changed;
}

void Engine::slurm_update(const std::string& job_id, const slurm::JobState& st) {
  std::lock_guard own(slurm_mu_);
  Followed before;
  int restarts = 0;
  {
    std::lock_guard lock(mu_);
    const auto it = slurm_jobs_.find(job_id);
    if (it == slurm_jobs_.end()) return;  // cancelled meanwhile
    before = it->second;
    it->second.state = st.state;
    it->second.reason = st.reason;
    it->second.end_seen = Clock::time_point{};  // back in the queue or running: not ended after all
    it->second.restarts = restarts = std::max(before.restarts, st.restarts);
  }
  auto job = store_->get(job_id);
  if (!job || protocol::is_terminal_status(job->record.status)) return;
  auto& r = job->record;
  const bool running = slurm_running(st.state);
  const std::string where = st.nodes.empty() ? std::string() : " on " + st.nodes;
  if (running) {
    r.status = protocol::status::kRunning;
    r.progress = 0.1;
    if (!r.started_at) r.started_at = util::format_utc(config_.clock());
    r.message = "Slurm job " + st.id + " is " + util::ascii_lower(st.state) + where;
  } else {
    r.status = protocol::status::kQueued;
    r.progress = 0.0;
    r.message = "Slurm job " + st.id + " is " + util::ascii_lower(st.state) + (st.reason.empty() ? "" : " (" + st.reason + ")");
  }
  r.metrics = slurm_metrics(st, restarts);
  job->launch["restarts"] = restarts;
  (void)store_->update(*job);
  if (restarts > before.restarts)
    log(job_id, LogLevel::warning, "slurm_requeued", "Slurm requeued job " + st.id + " (restart " + std::to_string(restarts) + ")");
  log(job_id, LogLevel::info, "slurm_state",
      "Slurm job " + st.id + ": " + st.state + (st.reason.empty() ? "" : " (" + st.reason + ")") + where +
          (before.resumed && before.state.empty() ? " (followed again after the worker restarted)" : ""));
  notify();
}

void Engine::slurm_end(const std::string& job_id, const slurm::JobState& st) {
  // Taking the job out of those followed makes this call its only writer: a cancel no longer
  // finds it there.
  Followed f;
  {
    std::lock_guard lock(mu_);
    const auto it = slurm_jobs_.find(job_id);
    if (it == slurm_jobs_.end()) return;  // cancelled meanwhile
    f = it->second;
    slurm_jobs_.erase(it);
  }
  // A job Slurm keeps (one that will never start, one held after a special exit) is cancelled
  // there: nothing stays in Slurm for a job that has ended here.
  const bool never_started = st.state == "PENDING";
  if (never_started || st.state == "SPECIAL_EXIT" || st.state == "REVOKED") slurm_cancel_job(st.id);
  auto loaded = store_->get(job_id);
  if (!loaded || protocol::is_terminal_status(loaded->record.status)) return;
  state::StoredJob job = std::move(*loaded);
  auto& r = job.record;
  const int restarts = std::max(f.restarts, st.restarts);
  if (restarts > f.restarts)
    log(job_id, LogLevel::warning, "slurm_requeued", "Slurm requeued job " + st.id + " (restart " + std::to_string(restarts) + ")");

  // The job's folder must still be this worker's own (a private folder, no symlink in its place).
  std::error_code ec;
  const bool own_folder = fs::symlink_status(f.dir, ec).type() == fs::file_type::directory &&
                          fs::symlink_status(f.dir / "staging", ec).type() == fs::file_type::directory;

  // The batch job's output joins the job's log: the step's own lines keep their level and event.
  // Long output keeps its end, where a failure says why.
  std::vector<std::pair<bool, std::string>> lines;  // (stdout?, line)
  bool cut = false;
  for (const char* ext : {".out", ".err"}) {
    if (!own_folder) break;
    const fs::path file = f.dir / ("slurm-" + st.id + ext);
    if (fs::symlink_status(file, ec).type() != fs::file_type::regular) continue;
    bool file_cut = false;
    const std::string text = read_tail(file, 16u << 20, file_cut);
    cut = cut || file_cut;
    for (auto& line : util::nonempty_lines(text)) lines.emplace_back(ext[1] == 'o', std::move(line));
  }
  if (lines.size() > kMaxJoinedLines) {
    lines.erase(lines.begin(), lines.end() - static_cast<std::ptrdiff_t>(kMaxJoinedLines));
    cut = true;
  }
  if (cut) log(job_id, LogLevel::warning, "log_truncated", "the Slurm job's output was long: its last lines follow");
  for (const auto& [is_out, line] : lines) {
    state::LogLine entry{util::format_utc(config_.clock()), is_out ? "info" : "warning", is_out ? "slurm_stdout" : "slurm_stderr", line};
    if (line[0] == '{')
      if (auto doc = protocol::parse_json(line); doc && doc->is_object() && doc->contains("event")) {
        entry.ts = protocol::string_field(*doc, "ts");
        entry.level = protocol::string_field(*doc, "level");
        entry.event = protocol::string_field(*doc, "event");
        entry.message = protocol::string_field(*doc, "message");
        if (entry.ts.empty()) entry.ts = util::format_utc(config_.clock());
        if (entry.level != "info" && entry.level != "warning" && entry.level != "error") entry.level = "info";
      }
    (void)store_->append_log(job_id, entry);
  }

  // The step's result, when this Slurm job wrote it (a requeued job's earlier run left none: each
  // run removes it first; a restart count above the one known here means Slurm's was not read).
  json result;
  if (own_folder && fs::symlink_status(f.dir / "result.json", ec).type() == fs::file_type::regular)
    if (auto text = util::read_file(f.dir / "result.json", 16u << 20)) {
      if (auto doc = protocol::parse_json(*text); doc && doc->is_object() && protocol::string_field(*doc, "slurm_job_id") == st.id &&
                                                    util::parse_number_text(protocol::string_field(*doc, "restart")).value_or(0) >= restarts)
        result = *doc;
    }
  r.finished_at = util::format_utc(config_.clock());
  r.progress = 1.0;
  if (!r.started_at) r.started_at = r.finished_at;
  const json slurm_fields = slurm_metrics(st, restarts);
  const bool has_result = result.is_object() && (st.state == "COMPLETED" || st.state == "FAILED" || st.state == "LOST");
  if (!own_folder) {
    mark_failed(job, Error(ErrorKind::internal,
                           "the folder of Slurm job " + st.id + " in the shared folder was replaced (a symlink in its place): nothing from it is used",
                           std::string(codes::kSlurmJobFailed)));
    r.metrics = slurm_fields;
  } else if (has_result && result["ok"].is_boolean() && result["ok"].get<bool>()) {
    std::vector<std::string> names;
    Status valid = Ok{};
    const fs::path staging = f.dir / "staging";
    for (const auto& a : result.value("artifacts", json::array())) {
      const std::string name = a.is_string() ? a.get<std::string>() : std::string();
      // A plain file inside staging: no symlink (to the worker's own files, say) is published.
      const fs::path file = staging / util::path_from_utf8(name);
      if (name.empty() || util::resolve_within(staging, name).empty() || !util::is_within(staging, file) ||
          fs::symlink_status(file, ec).type() != fs::file_type::regular || fs::hard_link_count(file, ec) != 1) {
        valid = Error(ErrorKind::internal, "the Slurm job's result names an artifact it did not leave: " + name,
                      std::string(codes::kSlurmJobFailed));
        break;
      }
      names.push_back(name);
    }
    Result<json> published = valid ? Result<json>(json::array()) : Result<json>(valid.error());
    if (published) published = publish_artifacts(staging, util::path_from_utf8(job.artifact_dir), names);
    if (!published) {
      mark_failed(job, published.error());
      r.metrics = slurm_fields;
    } else {
      r.artifacts = std::move(published).value();
      json metrics = result.value("metrics", json::object());
      if (!metrics.is_object()) metrics = json::object();
      metrics.update(slurm_fields);
      const auto verdict = result.find("verdict_failed");
      mark_finished(job, std::move(metrics), protocol::string_field(result, "message"),
                    verdict != result.end() && verdict->is_boolean() && verdict->get<bool>());
    }
  } else if (has_result) {
    std::string code = protocol::string_field(result, "error_code");
    if (code.empty()) code = std::string(codes::kSlurmJobFailed);
    mark_failed(job, Error(ErrorKind::internal, protocol::string_field(result, "error_message"), code));
    r.metrics = slurm_fields;
  } else {
    const std::string_view code = never_started ? codes::kSlurmSubmitFailed
                                  : st.state == "LOST" ? codes::kSlurmJobLost
                                                       : slurm::error_code_for(st.state);
    mark_failed(job, Error(ErrorKind::internal, end_message(st), std::string(code)));
    r.metrics = slurm_fields;
  }
  fs::remove_all(f.dir, ec);
  finish(job);
}

}  // namespace rayvault::worker
