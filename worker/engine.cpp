// Engine: admission, the slot pool, the life of one job, and its receipt.
#include "worker/engine.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

#include "protocol/blobs.hpp"
#include "protocol/errors.hpp"
#include "protocol/ids.hpp"
#include "protocol/steps.hpp"
#include "util/crypto.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"
#include "worker/blob_store.hpp"

namespace rayvault::worker {
namespace {

// The key that holds a submission's blobs while it is admitted: no job id can hold a control character.
constexpr std::string_view kSubmissionPinKey = "\x01submission:";

constexpr std::size_t kMaxLogLinesPerJob = 20000;

json receipt_of(const state::StoredJob& job) {
  const auto& r = job.record;
  json j = protocol::to_json(r);
  json receipt = json::object();
  for (const char* key : {"run_id", "job_id", "step_name", "inputs_hash", "status", "exit_code", "worker_id",
                          "created_at", "started_at", "finished_at", "metrics", "artifacts", "error_code",
                          "error_message", "log_path"})
    receipt[key] = j[key];
  return receipt;
}

}  // namespace

Engine::Engine(EngineConfig config, StepRegistry steps, std::unique_ptr<state::JobStore> store)
    : config_(std::move(config)), steps_(std::move(steps)), store_(std::move(store)) {}

Engine::~Engine() { stop(); }

Result<std::unique_ptr<Engine>> Engine::open(EngineConfig config, StepRegistry steps) {
  std::error_code ec;
  fs::create_directories(config.root / "jobs", ec);
  if (!ec) fs::create_directories(config.root / "workspace", ec);
  if (ec) return Error(ErrorKind::io, "cannot create worker root " + util::u8(config.root) + ": " + ec.message());
  config.root = fs::absolute(config.root);
  if (config.step_config.cache_dir.empty()) config.step_config.cache_dir = config.root / "cache";
  if (config.step_config.env_file.empty()) config.step_config.env_file = config.root / "worker.env";
  if (config.step_config.tts_parallel < 1) config.step_config.tts_parallel = 1;
  if (config.slots < 1) config.slots = 1;
  auto store = state::JobStore::open(config.root / "worker.db");
  if (!store) return store.error();
  auto engine = std::unique_ptr<Engine>(new Engine(std::move(config), std::move(steps), std::move(store).value()));
  if (engine->config_.slurm) engine->slurm_client_ = std::make_unique<slurm::Client>(*engine->config_.slurm);
  const std::string now = util::format_utc(engine->config_.clock());
  // Jobs in Slurm ran on without this process: the Slurm lane follows them again.
  for (const auto& id : engine->store_->fail_interrupted(now, "the worker stopped while this job was running",
                                                         engine->config_.slurm != nullptr)) {
    engine->log(id, LogLevel::error, "job_failed", "worker restarted while the job was running (WORKER_RESTARTED)");
    if (auto job = engine->store_->get(id)) engine->finish(*job);
  }
  // Jobs still queued (or still in Slurm) keep their blobs from now on, before the server takes
  // any upload that could make room by evicting them. One that went is found when the job runs.
  if (engine->config_.blobs) {
    std::vector<std::string> ids = engine->store_->queued_job_ids();
    for (auto& id : engine->store_->running_launched_job_ids()) ids.push_back(std::move(id));
    for (const auto& id : ids)
      if (const auto job = engine->store_->get(id)) engine->pin_blobs(id, job->payload);
  }
  return engine;
}

void Engine::start() {
  std::vector<state::StoredJob> orphaned;  // Slurm jobs this worker no longer runs Slurm for
  {
    std::lock_guard lock(mu_);
    for (auto& id : store_->queued_job_ids()) {
      auto job = store_->get(id);
      if (job && !job->launch.empty()) {
        if (config_.slurm) slurm_resume_locked(*job);
        else orphaned.push_back(std::move(*job));
      } else {
        enqueue_locked(id, job ? job->record.step_name : std::string(), job ? job->priority : 0);
      }
    }
    for (auto& id : store_->running_launched_job_ids())
      if (const auto job = store_->get(id)) slurm_resume_locked(*job);
    stopping_ = false;
  }
  for (auto& job : orphaned) {
    const std::string slurm_id = protocol::string_field(job.launch, "slurm_job_id");
    mark_failed(job, Error(ErrorKind::unavailable,
                           "this job went to Slurm" + (slurm_id.empty() ? std::string() : " as job " + slurm_id) +
                               ", and the worker no longer runs the Slurm launch mode (scancel it if it still runs)",
                           std::string(protocol::codes::kWorkerRestarted)));
    finish(job);
  }
  if (config_.slurm) threads_.emplace_back([this] { slurm_loop(); });
  for (int i = 0; i < config_.slots; ++i) threads_.emplace_back([this] { slot_loop(nullptr); });
  for (const auto& gpu : config_.gpus)
    for (int i = 0; i < config_.jobs_per_gpu; ++i) threads_.emplace_back([this, g = &gpu] { slot_loop(g); });
}

void Engine::enqueue_locked(const std::string& job_id, const std::string& step_name, int priority) {
  const auto step = steps_.find(step_name);
  const bool gpu = step != steps_.end() && step->second->needs_gpu() && !config_.gpus.empty();
  const bool in_slurm = step != steps_.end() && slurm_handles(step_name);
  auto& q = in_slurm ? slurm_queue_ : gpu ? gpu_queue_ : queue_;
  if (in_slurm) slurm_cv_.notify_all();
  const auto at = std::find_if(q.begin(), q.end(), [priority](const Queued& e) { return e.priority < priority; });
  q.insert(at, Queued{job_id, priority});
}

EngineLoad Engine::load() {
  std::lock_guard lock(mu_);
  EngineLoad l;
  l.cpu_slots = config_.slots;
  l.gpu_slots = gpu_slots();
  l.gpu_running = gpu_running_;
  l.cpu_running = cpu_running_;
  l.cpu_queued = static_cast<int>(queue_.size());
  l.gpu_queued = static_cast<int>(gpu_queue_.size());
  if (config_.slurm && slurm_handles(std::string(protocol::steps::kPoseEstimate))) {
    // A Slurm worker is one large GPU node: what this worker may have in Slurm at once, no more
    // than the jobs it has there plus what the cluster's free GPUs can start now.
    const int in_slurm = static_cast<int>(slurm_jobs_.size()) + (slurm_submitting_.empty() ? 0 : 1);
    int capacity = config_.slurm->max_jobs;
    if (const auto free = slurm_info_.find("gpus_free"); free != slurm_info_.end() && free->is_number_integer()) {
      const int per_job = std::max(1, config_.slurm->limits_for(protocol::steps::kPoseEstimate).gpus);
      capacity = std::min(capacity, in_slurm + free->get<int>() / per_job);
    }
    l.gpu_slots = std::max(capacity, in_slurm);
    l.gpu_running = in_slurm;
    l.gpu_queued = static_cast<int>(slurm_queue_.size());
  }
  return l;
}

void Engine::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
    for (auto& [id, flag] : running_) flag->store(true);
  }
  queue_cv_.notify_all();
  change_cv_.notify_all();
  slurm_cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

std::vector<std::string> Engine::supported_steps() const {
  std::vector<std::string> out;
  for (const auto& [name, step] : steps_) out.push_back(name);
  return out;
}

int Engine::queue_depth() { return store_->active_count(); }

void Engine::notify() {
  {
    std::lock_guard lock(mu_);
    ++changes_;
  }
  change_cv_.notify_all();
}

std::optional<state::StoredJob> Engine::job(const std::string& job_id) {
  auto found = store_->get(job_id);
  if (found) overlay(*found);
  return found;
}

std::uint64_t Engine::change_count() {
  std::lock_guard lock(mu_);
  return changes_;
}

std::uint64_t Engine::wait_for_change(std::uint64_t seen, std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mu_);
  change_cv_.wait_until(lock, deadline, [&] { return changes_ != seen || stopping_; });
  return changes_;
}

void Engine::log(const std::string& job_id, LogLevel level, std::string_view event, std::string_view message) {
  (void)store_->append_log(job_id, {util::format_utc(config_.clock()), std::string(to_string(level)), std::string(event),
                                    std::string(message)});
}

Result<Admitted> Engine::submit(const Submission& s) {
  auto job_id = protocol::normalize_id(s.job_id, "job_id");
  if (!job_id) return job_id.error();
  auto run_id = protocol::normalize_id(s.run_id, "run_id");
  if (!run_id) return run_id.error();
  state::StoredJob job;
  auto& r = job.record;
  r.run_id = *run_id;
  r.job_id = *job_id;
  r.step_name = protocol::steps::normalize(s.step_name);
  r.inputs_hash = s.inputs_hash;
  r.status = protocol::status::kQueued;
  r.progress = 0.0;
  r.message = "queued";
  r.created_at = util::format_utc(config_.clock());
  r.worker_id = config_.worker_id;
  const fs::path dir = config_.root / "jobs" / protocol::id_folder_name(r.job_id);
  r.log_path = util::u8(dir / "worker.log");
  r.receipt_path = util::u8(dir / "job_receipt.json");
  job.payload = s.payload;
  job.priority = s.priority;
  job.artifact_dir = util::u8(dir / "artifacts");

  // Staged inputs: each blob the payload names must be here, and stays while the job needs it.
  // Held under a key of this submission until the job is queued (its own key from then on).
  auto refs = protocol::find_blob_refs(s.payload);
  if (!refs) return refs.error();
  std::vector<std::string> digests;
  for (const auto& ref : *refs) digests.push_back(ref.digest);
  std::string held_for;
  if (!digests.empty()) {
    if (!config_.blobs)
      return Error(ErrorKind::invalid_input, "payload names blobs, and this node keeps no blob store",
                   std::string(protocol::codes::kInvalidInput));
    held_for = std::string(kSubmissionPinKey) + std::to_string(++submissions_);
    if (auto st = config_.blobs->pin(held_for, digests); !st) return st.error();
  }
  struct Unpin {
    BlobStore* store;
    const std::string& key;
    ~Unpin() {
      if (store && !key.empty()) store->unpin(key);
    }
  } unpin{config_.blobs.get(), held_for};

  auto admitted = store_->admit(job);
  if (!admitted) return admitted.error();
  auto& [stored, how] = admitted.value();
  overlay(stored);
  const bool created = how == state::Admission::created;
  // The job runs its stored payload (a job found by its id keeps the payload it was admitted with):
  // those are the blobs it keeps.
  auto pin_job = [&] { pin_blobs(stored.record.job_id, stored.payload); };
  if (created) {
    pin_job();
    log(r.job_id, LogLevel::info, "job_queued", "queued " + r.step_name + " for run " + r.run_id);
  } else if ((s.force && protocol::is_terminal_status(stored.record.status)) ||
             stored.record.status == protocol::status::kCancelled ||
             (stored.record.status == protocol::status::kFailed &&
              (s.retry_failed || protocol::is_node_fault(stored.record.error_code)))) {
    // The earlier attempt died with its worker or lacked a tool (or force asks): run it again. An
    // earlier cancel does not carry over to the new run.
    {
      std::lock_guard lock(mu_);
      cancel_reasons_.erase(stored.record.job_id);
    }
    auto& er = stored.record;
    er.status = protocol::status::kQueued;
    er.progress = 0.0;
    er.message = s.force ? "queued again (forced)" : "queued again after " + er.error_code;
    er.started_at.reset();
    er.finished_at.reset();
    er.exit_code.reset();
    er.error_code.clear();
    er.error_message.clear();
    er.artifacts = json::array();
    er.metrics = json::object();
    stored.priority = s.priority;
    stored.launch = json::object();  // a new run: a new Slurm job
    pin_job();
    if (auto st = store_->update(stored); !st) {
      if (config_.blobs) config_.blobs->unpin(stored.record.job_id);
      return st.error();
    }
    log(er.job_id, LogLevel::info, "job_requeued", er.message);
  } else {
    return Admitted{stored, true};  // the existing job is the answer
  }
  {
    std::lock_guard lock(mu_);
    enqueue_locked(stored.record.job_id, stored.record.step_name, stored.priority);
  }
  queue_cv_.notify_all();  // CPU and GPU slots wait on one condition
  notify();                // a job is added (or queued again): watches of this worker learn of it
  return Admitted{stored, !created};
}

void Engine::mark_cancelled(state::StoredJob& job, const std::string& reason) {
  auto& r = job.record;
  r.status = protocol::status::kCancelled;
  r.progress = 1.0;
  r.finished_at = util::format_utc(config_.clock());
  r.exit_code = 1;
  r.error_code = protocol::codes::kCancelled;
  r.error_message = reason.empty() ? std::string("cancelled on request") : "cancelled on request: " + reason;
  r.message = r.error_message;
  r.artifacts = json::array();
}

Result<state::StoredJob> Engine::cancel(const std::string& job_id, const std::string& reason, std::chrono::milliseconds within) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (true) {
    bool was_queued = false;
    std::optional<Followed> in_slurm;
    // A job the Slurm lane follows is taken from it with the lane's writer lock held (taken before
    // mu_), so no state the lane reads from Slurm lands after the cancel.
    std::unique_lock slurm_lock(slurm_mu_, std::defer_lock);
    if (config_.slurm) {
      bool followed = false;
      {
        std::lock_guard lock(mu_);
        followed = slurm_jobs_.count(job_id) > 0;
      }
      if (followed) slurm_lock.lock();
    }
    bool look_again = false;
    {
      std::lock_guard lock(mu_);
      if (const auto it = slurm_jobs_.find(job_id); it != slurm_jobs_.end()) {
        if (slurm_lock.owns_lock()) {
          in_slurm = it->second;  // taken from the lane: this call ends it
          slurm_jobs_.erase(it);
        } else {
          look_again = true;  // submitted just now: taken with the writer lock on the next turn
        }
      }
      for (auto* q : {&queue_, &gpu_queue_, &slurm_queue_}) {
        const auto it = std::find_if(q->begin(), q->end(), [&job_id](const Queued& e) { return e.job_id == job_id; });
        if (it != q->end()) {
          q->erase(it);
          was_queued = true;
        }
      }
      if (!was_queued && !in_slurm && !look_again) {
        if (const auto it = running_.find(job_id); it != running_.end()) {
          cancel_reasons_[job_id] = reason;
          it->second->store(true);  // the step's tools are stopped with their whole process tree
        } else if (const auto stored = store_->get(job_id); stored && stored->record.status == protocol::status::kQueued) {
          // Admitted but not on a queue yet: the slot that takes it cancels it instead of running it.
          cancel_reasons_[job_id] = reason;
        }
      }
    }
    if (in_slurm) {
      auto job = store_->get(job_id);
      if (job) {
        log(job_id, LogLevel::warning, "job_cancelled",
            "scancel " + in_slurm->slurm_id + (reason.empty() ? std::string() : ": " + reason));
        mark_cancelled(*job, reason);
        finish(*job);
      }
      slurm_lock.unlock();
      slurm_cv_.notify_all();  // a place among max_jobs is free
      slurm_cancel_job(in_slurm->slurm_id);
      std::error_code ec;
      fs::remove_all(in_slurm->dir, ec);
      if (!job) return Error(ErrorKind::not_found, "job_id not found: " + job_id);
      return *job;
    }
    if (slurm_lock.owns_lock()) slurm_lock.unlock();
    if (look_again && !was_queued) continue;
    if (was_queued) {
      auto job = store_->get(job_id);
      if (!job) return Error(ErrorKind::not_found, "job_id not found: " + job_id);
      log(job_id, LogLevel::warning, "job_cancelled", "cancelled before it ran" + (reason.empty() ? std::string() : ": " + reason));
      // Waiting to be submitted again after an sbatch whose answer never came: that submission
      // may have reached Slurm, under its job name.
      slurm_drop_submission(*job);
      mark_cancelled(*job, reason);
      finish(*job);
      return *job;
    }
    auto job = this->job(job_id);
    if (!job) return Error(ErrorKind::not_found, "job_id not found: " + job_id);
    const std::string& status = job->record.status;
    if (status == protocol::status::kCancelled) return *job;
    if (protocol::is_terminal_status(status))
      return Error(ErrorKind::conflict, "job " + job_id + " already ended: " + status);
    if (std::chrono::steady_clock::now() >= deadline) return *job;  // still stopping: the caller follows it
    // Running (or between the queue and its slot): wait for the change, then look again.
    std::unique_lock lock(mu_);
    change_cv_.wait_until(lock, std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(200)));
    if (stopping_) return Error(ErrorKind::unavailable, "the worker is stopping");
  }
}

std::shared_ptr<const state::JobView> Engine::known_submission(const Submission& s) {
  if (s.force) return nullptr;
  auto view = store_->known_submission(protocol::steps::normalize(s.step_name), s.inputs_hash, s.run_id, s.job_id);
  if (!view) return nullptr;
  view = overlay(std::move(view));
  const auto& r = view->job.record;
  // What submit would run again.
  if (r.status == protocol::status::kCancelled ||
      (r.status == protocol::status::kFailed && (s.retry_failed || protocol::is_node_fault(r.error_code))))
    return nullptr;
  return view;
}

std::optional<state::JobStore::ViewLookup> Engine::lookup_view(const std::string& run_id, const std::string& job_id) {
  auto found = store_->lookup_view(run_id, job_id);
  if (found) found->view = overlay(std::move(found->view));
  return found;
}

std::optional<state::JobStore::Lookup> Engine::lookup(const std::string& run_id, const std::string& job_id) {
  auto found = store_->lookup(run_id, job_id);
  if (found) overlay(found->job);
  return found;
}

std::optional<state::StoredJob> Engine::wait(const std::string& job_id, std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mu_);
  while (true) {
    lock.unlock();
    auto job = this->job(job_id);
    lock.lock();
    if (!job || protocol::is_terminal_status(job->record.status) || std::chrono::steady_clock::now() >= deadline ||
        stopping_)
      return job;
    change_cv_.wait_until(lock, deadline);
  }
}

std::vector<state::LogLine> Engine::logs(const std::string& job_id) { return store_->logs(job_id); }

void Engine::slot_loop(const GpuDevice* gpu) {
  auto& queue = gpu ? gpu_queue_ : queue_;
  while (true) {
    std::string job_id, pending_reason;
    bool pending_cancel = false;
    auto cancel = std::make_shared<std::atomic<bool>>(false);
    {
      std::unique_lock lock(mu_);
      queue_cv_.wait(lock, [&] { return stopping_ || !queue.empty(); });
      if (stopping_) return;
      job_id = queue.front().job_id;
      queue.pop_front();
      if (const auto it = cancel_reasons_.find(job_id); it != cancel_reasons_.end()) {
        pending_reason = it->second;  // cancelled while on its way to the queue
        cancel_reasons_.erase(it);
        pending_cancel = true;
      } else {
        running_[job_id] = cancel;
        ++(gpu ? gpu_running_ : cpu_running_);
      }
    }
    if (pending_cancel) {
      if (auto job = store_->get(job_id); job && job->record.status == protocol::status::kQueued) {
        log(job_id, LogLevel::warning, "job_cancelled",
            "cancelled before it ran" + (pending_reason.empty() ? std::string() : ": " + pending_reason));
        mark_cancelled(*job, pending_reason);
        finish(*job);
      }
      continue;
    }
    run_job(job_id, *cancel, gpu);
    {
      // Only this run's entries: a new run of the same job may already hold its own.
      std::lock_guard lock(mu_);
      --(gpu ? gpu_running_ : cpu_running_);
      if (const auto it = running_.find(job_id); it != running_.end() && it->second == cancel) {
        running_.erase(it);
        cancel_reasons_.erase(job_id);  // a cancel that came too late for this run
      }
    }
    change_cv_.notify_all();
  }
}

Result<fs::path> Engine::artifact_dir_for(const state::StoredJob& job) const {
  const auto it = job.payload.find("output_dir");
  if (it == job.payload.end() || it->is_null()) return util::path_from_utf8(job.artifact_dir);
  const fs::path ws = workspace_root();
  const auto refuse = [&ws](const std::string& why) {
    return Error(ErrorKind::invalid_input, "payload.output_dir " + why + " (it must resolve inside the worker workspace " +
                                               util::u8(ws) + ")",
                 std::string(protocol::codes::kInvalidOutputDir));
  };
  if (!it->is_string()) return refuse("must be a string");
  // As the Python worker does: trimmed, leading '/' dropped, the rest under the workspace.
  std::string rel = util::trim(it->get_ref<const std::string&>());
  rel.erase(0, rel.find_first_not_of('/'));
  if (rel.empty()) return util::path_from_utf8(job.artifact_dir);
  if (rel.find('\0') != std::string::npos) return refuse("holds a NUL byte");
  if (rel.size() >= 2 && std::isalpha(static_cast<unsigned char>(rel[0])) && rel[1] == ':')
    return refuse("names a drive");
  fs::path resolved = util::resolve_within(ws, rel);
  if (resolved.empty()) return refuse("leaves the workspace");
  // One spelling per folder ("shots/a/" is "shots/a"), so folders compare as text.
  if (!resolved.has_filename()) resolved = resolved.parent_path();
  return resolved;
}

void Engine::run_job(const std::string& job_id, const std::atomic<bool>& cancel, const GpuDevice* gpu) {
  auto loaded = store_->get(job_id);
  if (!loaded || loaded->record.status != protocol::status::kQueued) return;
  state::StoredJob job = std::move(*loaded);
  auto& r = job.record;
  r.status = protocol::status::kRunning;
  r.progress = 0.1;
  r.message = "running";
  r.started_at = util::format_utc(config_.clock());
  auto dir = claim_artifact_dir(job);
  notify();
  log(job_id, LogLevel::info, "job_started", "running " + r.step_name + (gpu ? " on GPU " + gpu->index + " (" + gpu->model + ")" : ""));

  const fs::path job_dir = util::path_from_utf8(r.log_path).parent_path();
  const fs::path staging = job_dir / ".staging";
  std::error_code ec;
  fs::remove_all(staging, ec);
  fs::create_directories(staging, ec);

  Result<StepOutput> outcome = Error(ErrorKind::internal, "not run");
  const auto step_it = steps_.find(r.step_name);
  const fs::path inputs = job_dir / ".inputs";
  auto payload = resolve_inputs(job.payload, inputs);
  if (!dir) {
    outcome = dir.error();
  } else if (!payload) {
    outcome = payload.error();
  } else if (step_it == steps_.end()) {
    outcome = Error(ErrorKind::unavailable, r.step_name + " is not supported by this worker build",
                    std::string(protocol::codes::kStepUnsupported));
  } else if (step_it->second->needs_gpu() && gpu == nullptr) {
    outcome = Error(ErrorKind::unavailable, r.step_name + " needs a CUDA GPU and this node has none (nvidia-smi lists no GPU)",
                    std::string(protocol::codes::kGpuRequired));
  } else {
    std::chrono::seconds timeout = config_.job_timeout;
    // payload.timeout_sec may only lower the worker's limit; compared as a double first, so a
    // huge value cannot overflow the conversion.
    const auto t = job.payload.find("timeout_sec");
    if (!step_it->second->owns_timeout_sec() && t != job.payload.end() && t->is_number()) {
      const double asked = t->get<double>();
      if (asked > 0 && asked < static_cast<double>(config_.job_timeout.count()))
        timeout = std::chrono::seconds(static_cast<long long>(std::ceil(asked)));
    }
    std::atomic<std::size_t> lines{0};  // steps may log from several threads (TTS chunks)
    StepContext ctx{r.run_id, job_id, r.step_name, *payload, staging, *dir, workspace_root(), timeout, &cancel,
                    [&](LogLevel level, std::string_view event, std::string_view message) {
                      const std::size_t n = ++lines;
                      if (n == kMaxLogLinesPerJob) log(job_id, LogLevel::warning, "log_truncated", "log line limit reached");
                      if (n < kMaxLogLinesPerJob) log(job_id, level, event, message);
                    },
                    config_.step_config,
                    gpu,
                    std::chrono::steady_clock::now() + timeout};
    try {
      outcome = step_it->second->run(ctx);
    } catch (const std::exception& ex) {
      outcome = Error(ErrorKind::internal, std::string("unexpected error: ") + ex.what(),
                      std::string(protocol::codes::kUnhandledException));
    }
  }

  fs::remove_all(inputs, ec);

  // Cancelled on request while it ran: whatever the step made stays unpublished.
  std::string cancel_reason;
  bool cancelled_on_request = false;
  {
    std::lock_guard lock(mu_);
    if (const auto it = cancel_reasons_.find(job_id); it != cancel_reasons_.end()) {
      cancelled_on_request = !outcome;  // a step that finished anyway keeps its result
      cancel_reason = it->second;
      cancel_reasons_.erase(it);
    }
  }
  if (cancelled_on_request) {
    fs::remove_all(staging, ec);
    if (dir) job.artifact_dir = util::u8(*dir);
    log(job_id, LogLevel::warning, "job_cancelled", "stopped while running" + (cancel_reason.empty() ? std::string() : ": " + cancel_reason));
    mark_cancelled(job, cancel_reason);
    finish(job);
    return;
  }

  // Publish: each artifact moves from staging to its folder, so no partial file is ever visible.
  if (outcome) {
    auto artifacts = publish_artifacts(staging, *dir, outcome->artifacts);
    if (artifacts) r.artifacts = std::move(artifacts).value();
    else outcome = artifacts.error();
    // Artifacts are blobs too: a job chained after this one here needs no upload of them.
    if (artifacts && config_.blobs)
      for (const auto& a : r.artifacts)
        config_.blobs->adopt(protocol::string_field(a, "sha256"), util::path_from_utf8(protocol::string_field(a, "path")));
  }
  fs::remove_all(staging, ec);
  if (dir) job.artifact_dir = util::u8(*dir);

  r.finished_at = util::format_utc(config_.clock());
  r.progress = 1.0;
  if (outcome) {
    mark_finished(job, outcome->metrics, outcome->message, outcome->verdict_failed);
  } else {
    mark_failed(job, outcome.error());
  }
  finish(job);
}

void Engine::mark_finished(state::StoredJob& job, json metrics, std::string message, bool verdict_failed) {
  auto& r = job.record;
  r.metrics = std::move(metrics);
  r.message = std::move(message);
  if (verdict_failed) {
    r.status = protocol::status::kFailed;
    r.exit_code = 1;
    log(r.job_id, LogLevel::warning, "job_failed", "verdict: failed; " + r.message);
  } else {
    r.status = protocol::status::kSucceeded;
    r.exit_code = 0;
    log(r.job_id, LogLevel::info, "job_succeeded", r.message);
  }
}

void Engine::mark_failed(state::StoredJob& job, const Error& e) {
  auto& r = job.record;
  r.status = protocol::status::kFailed;
  r.progress = 1.0;
  if (!r.finished_at) r.finished_at = util::format_utc(config_.clock());
  r.error_code = e.code.empty() ? std::string(protocol::codes::kUnhandledException) : e.code;
  // A structured step error is exit 2; an unexpected error or a stop of the worker is exit 1.
  const bool not_the_step = r.error_code == protocol::codes::kUnhandledException ||
                            r.error_code == protocol::codes::kWorkerRestarted;
  r.exit_code = not_the_step ? 1 : 2;
  r.error_message = e.message;
  r.message = e.message;
  log(r.job_id, LogLevel::error, "job_failed", r.error_code + ": " + e.message);
}

Result<fs::path> Engine::claim_artifact_dir(state::StoredJob& job) {
  // The job claims its artifact folder as it starts: a folder that holds, or is receiving, another
  // job's artifacts is refused, so no job's files are replaced under it.
  auto dir = artifact_dir_for(job);
  std::lock_guard claim(claim_mu_);
  if (dir) {
    if (const std::string other = store_->other_job_in(util::u8(*dir), job.record.job_id); !other.empty())
      dir = Error(ErrorKind::invalid_input, "payload.output_dir holds the artifacts of job " + other + "; give this job a folder of its own",
                  std::string(protocol::codes::kInvalidOutputDir));
    else
      job.artifact_dir = util::u8(*dir);
  }
  (void)store_->update(job);
  return dir;
}

Result<json> Engine::publish_artifacts(const fs::path& staging, const fs::path& dir, const std::vector<std::string>& names) {
  json artifacts = json::array();
  std::error_code ec;
  for (const auto& name : names) {
    const fs::path from = staging / name;
    const fs::path to = dir / name;
    fs::create_directories(to.parent_path(), ec);
    fs::rename(from, to, ec);
    if (ec == std::errc::cross_device_link) {
      // Another file system (a Slurm job's shared folder): copied beside the target, then renamed.
      const fs::path tmp = to.parent_path() / ("." + util::u8(to.filename()) + ".partial");
      ec.clear();
      fs::copy_file(from, tmp, fs::copy_options::overwrite_existing, ec);
      if (!ec) fs::rename(tmp, to, ec);
      std::error_code cleanup;
      fs::remove(ec ? tmp : from, cleanup);
    }
    if (ec)
      return Error(ErrorKind::io, "cannot publish artifact " + name + ": " + ec.message(), std::string(protocol::codes::kStorageFailed));
    auto sha = util::sha256_file_hex(to);
    const auto size = fs::file_size(to, ec);
    artifacts.push_back({{"path", util::u8(to)}, {"name", name}, {"sha256", sha ? *sha : ""}, {"size_bytes", size}});
  }
  return artifacts;
}

void Engine::pin_blobs(const std::string& job_id, const json& payload) {
  if (!config_.blobs) return;
  // One at a time: a blob that is not held (the job fails BLOB_MISSING when it runs) does not stop
  // the others being kept.
  if (auto refs = protocol::find_blob_refs(payload))
    for (const auto& ref : *refs) (void)config_.blobs->pin(job_id, {ref.digest});
}

Result<json> Engine::resolve_inputs(const json& payload, const fs::path& inputs) const {
  auto refs = protocol::find_blob_refs(payload);
  if (!refs) return Error(refs.error().kind, refs.error().message, std::string(protocol::codes::kInvalidInput));
  if (refs->empty()) return payload;
  std::error_code ec;
  fs::remove_all(inputs, ec);
  json out = payload;
  for (std::size_t i = 0; i < refs->size(); ++i) {
    const auto& ref = (*refs)[i];
    const fs::path blob = config_.blobs ? config_.blobs->path_of(ref.digest) : fs::path();
    if (blob.empty())
      return Error(ErrorKind::unavailable, "payload." + ref.field + " names blob " + ref.digest + ", which this worker does not hold",
                   std::string(protocol::codes::kBlobMissing));
    // One folder a reference: two of them may share a file name.
    const fs::path dest = inputs / std::to_string(i) / util::path_from_utf8(ref.name);
    fs::create_directories(dest.parent_path(), ec);
    if (!ec) fs::create_hard_link(blob, dest, ec);
    if (ec) {  // a file system without hard links: a copy
      ec.clear();
      fs::copy_file(blob, dest, fs::copy_options::overwrite_existing, ec);
    }
    if (ec) {
      std::error_code gone;
      if (!fs::is_regular_file(fs::symlink_status(blob, gone)))  // its file went behind the store's back
        return Error(ErrorKind::unavailable, "payload." + ref.field + " names blob " + ref.digest + ", whose file is gone",
                     std::string(protocol::codes::kBlobMissing));
      return Error(ErrorKind::io, "cannot give the step blob " + ref.digest + ": " + ec.message(),
                   std::string(protocol::codes::kStorageFailed));
    }
    out[ref.field] = util::u8(dest);
  }
  return out;
}

void Engine::finish(state::StoredJob& job) {
  // The log and the receipt are written before the terminal state is stored, so a client that
  // sees the job terminal can fetch both. A job whose receipt cannot be written (a full disk)
  // fails with STORAGE_FAILED, a node fault: the controller runs it elsewhere.
  auto& r = job.record;
  if (config_.blobs) config_.blobs->unpin(r.job_id);
  const Status log = util::write_file_atomic(util::path_from_utf8(r.log_path), state::render_log(r.job_id, store_->logs(r.job_id)));
  const Status receipt = util::write_file_atomic(util::path_from_utf8(r.receipt_path), protocol::dump_json(receipt_of(job), 2));
  if ((!log || !receipt) && r.error_code != protocol::codes::kWorkerRestarted) {
    r.status = protocol::status::kFailed;
    r.exit_code = 1;
    r.error_code = protocol::codes::kStorageFailed;
    r.error_message = "the worker cannot write the job's files: " + (!receipt ? receipt : log).error().message;
    r.message = r.error_message;
  }
  // A state the store cannot take now (the same full disk) is kept in memory and answered from
  // there, and written as soon as the store takes it, so the job never looks running forever.
  if (!store_->update(job)) {
    std::fprintf(stderr, "rayvault-worker: cannot store the end of job %s; kept in memory until the store takes it\n",
                 r.job_id.c_str());
    std::lock_guard lock(unsaved_mu_);
    unsaved_[r.job_id] = job;
  }
  notify();
}

std::shared_ptr<const state::JobView> Engine::overlay(std::shared_ptr<const state::JobView> view) {
  {
    std::lock_guard lock(unsaved_mu_);
    if (unsaved_.empty()) return view;
  }
  state::StoredJob job = view->job;
  overlay(job);
  return state::make_view(std::move(job));
}

void Engine::overlay(state::StoredJob& job) {
  std::lock_guard lock(unsaved_mu_);
  if (unsaved_.empty()) return;
  if (const auto it = unsaved_.find(job.record.job_id); it != unsaved_.end()) job = it->second;
  for (auto it = unsaved_.begin(); it != unsaved_.end();)
    it = store_->update(it->second) ? unsaved_.erase(it) : std::next(it);
}

}  // namespace rayvault::worker
