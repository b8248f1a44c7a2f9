// The batch runner.
#include "controller/batch.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "controller/mesh.hpp"
#include "platform/system_info.hpp"
#include "protocol/errors.hpp"
#include "protocol/job_record.hpp"
#include "protocol/legacy.hpp"
#include "protocol/steps.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"

namespace rayvault::controller {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Jobs a batch has in flight at most, over all workers: a thread each, waiting on its node's watch
// (or, on workers without it, on its own long poll).
constexpr std::size_t kMaxThreads = 256;

Error bad_entry(std::size_t n, const std::string& what) {
  return Error(ErrorKind::invalid_input, "batch job " + std::to_string(n) + ": " + what);
}

Result<BatchJob> read_job(const json& j, std::size_t n, const BatchOptions& o) {
  if (!j.is_object()) return bad_entry(n, "must be a JSON object");
  static const std::set<std::string> known{"job_id", "step_name", "run_id", "payload", "requirements",
                                           "inputs_hash", "priority", "force", "needs"};
  for (const auto& [key, v] : j.items())
    if (!known.count(key)) return bad_entry(n, "unknown key '" + key + "' (known: job_id, step_name, run_id, payload, requirements, inputs_hash, priority, force, needs)");
  auto text = [&](const char* key) -> Result<std::string> {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) return std::string();
    if (!it->is_string()) return bad_entry(n, std::string(key) + " must be a string");
    return it->get<std::string>();
  };
  BatchJob job;
  for (auto [key, out] : {std::pair<const char*, std::string*>{"job_id", &job.spec.job_id}, {"step_name", &job.spec.step_name},
                          {"run_id", &job.spec.run_id}, {"inputs_hash", &job.spec.inputs_hash}}) {
    auto v = text(key);
    if (!v) return v.error();
    *out = std::move(v).value();
  }
  if (util::trim(job.spec.job_id).empty()) return bad_entry(n, "job_id is required");
  if (util::trim(job.spec.step_name).empty()) return bad_entry(n, "step_name is required");
  if (util::trim(job.spec.run_id).empty()) job.spec.run_id = o.run_id;
  if (util::trim(job.spec.run_id).empty()) return bad_entry(n, "run_id is required (in the job, or --run-id for all)");
  job.spec.payload = j.value("payload", json());
  job.spec.requirements = j.value("requirements", json());
  job.spec.force = o.force;
  job.spec.stage = !o.no_stage;
  if (const auto f = j.find("force"); f != j.end() && !f->is_null()) {
    if (!f->is_boolean()) return bad_entry(n, "force must be true or false");
    job.spec.force = job.spec.force || f->get<bool>();
  }
  job.priority = o.priority;
  // Needs are names here; read_batch_file turns them into indices once every job is read.
  if (const auto needs = j.find("needs"); needs != j.end() && !needs->is_null()) {
    if (!needs->is_array()) return bad_entry(n, "needs must be a list of job ids of this batch");
    for (const auto& id : *needs) {
      if (!id.is_string() || util::trim(id.get_ref<const std::string&>()).empty())
        return bad_entry(n, "needs must be a list of job ids of this batch");
      job.need_ids.push_back(util::trim(id.get<std::string>()));
    }
  }
  if (job.spec.payload.is_object()) {
    for (const auto& [field, value] : job.spec.payload.items()) {
      if (!value.is_object() || !value.contains("artifact")) continue;
      const json& from = value["artifact"];
      const auto name = value.find("name");
      if (value.size() != 2 || !from.is_string() || util::trim(from.get_ref<const std::string&>()).empty() ||
          name == value.end() || !name->is_string() || util::trim(name->get_ref<const std::string&>()).empty())
        return bad_entry(n, "payload." + field + " takes an artifact as {\"artifact\": JOB_ID, \"name\": ARTIFACT_NAME}");
      job.artifacts.push_back({field, util::trim(from.get<std::string>()), util::trim(name->get<std::string>())});
      job.need_ids.push_back(job.artifacts.back().job_id);
    }
  }
  if (const auto p = j.find("priority"); p != j.end() && !p->is_null()) {
    if (!p->is_number_integer() || p->get<long long>() < -1000 || p->get<long long>() > 1000)
      return bad_entry(n, "priority must be an integer from -1000 to 1000");
    job.priority = p->get<int>();
  }
  return job;
}

// The batch's view of the workers: their latest probes, and how many of the batch's jobs each
// holds now against its bound.
class Board {
 public:
  Board(const Cluster& cluster, state::Ledger& ledger, int max_per_worker)
      : cluster_(cluster), ledger_(ledger), max_per_worker_(max_per_worker) {}

  void refresh() {
    auto probes = probe_health(cluster_, cluster_.worker_nodes());
    record_probes(ledger_, probes);
    {
      std::lock_guard lock(mu_);
      probes_ = std::move(probes);
      for (const auto& p : probes_) {
        int cap = max_per_worker_;
        if (cap <= 0) {
          const json caps = p.answer.value("caps", json::object());
          cap = std::max(1, (int_field(caps, "cpu_slots", 0) > 0 ? int_field(caps, "cpu_slots", 0) : int_field(caps, "slots", 0)) +
                                int_field(caps, "gpu_slots", 0));
        }
        cap_[p.node->node_id] = cap;
      }
    }
    if (on_room) on_room();
  }

  // Jobs the workers can hold at once: how many threads the batch needs. A node down now counts
  // with --max-per-worker (else 2), so that it has threads when it comes back.
  int capacity() {
    std::lock_guard lock(mu_);
    int total = 0;
    for (const auto& p : probes_) total += p.ok ? cap_[p.node->node_id] : (max_per_worker_ > 0 ? max_per_worker_ : 2);
    return total;
  }

  struct Plan {
    enum Kind { wait, go, local } kind = wait;
    std::string reserved;              // go: the node held for this job
    std::vector<HealthProbe> probes;   // what dispatch orders by: spare room in place of load
  };

  // Holds room for the job on the fitting worker with the most room (`owner` first: the node an
  // earlier run left the job on, when it is up and fits). `local` when no reachable worker fits;
  // `wait` when those that fit have no room now.
  Plan try_reserve(const JobRequest& req, const Requirements& requirements, const std::string& owner) {
    std::lock_guard lock(mu_);
    const HealthProbe* best = nullptr;
    int best_spare = 0;
    bool any_fits = false;
    for (const auto& p : probes_) {
      if (!p.ok) continue;
      const json caps = p.answer.value("caps", json::object());
      if (!unmet_reason(caps, requirements, req.step_name, p.node->tags).empty()) continue;
      if (protocol::string_field(caps, "_compat_mode") == protocol::legacy::kCompatModePlain) continue;
      any_fits = true;
      const int spare = cap_[p.node->node_id] - inflight_[p.node->node_id];
      if (p.node->node_id == owner) {
        best = &p;
        best_spare = spare;
        break;
      }
      // Most room first; equal room: the lower latency class, then the nodes file's order.
      if (spare > 0 && (!best || spare > best_spare ||
                        (spare == best_spare && latency_class(p.elapsed_ms) < latency_class(best->elapsed_ms)))) {
        best = &p;
        best_spare = spare;
      }
    }
    Plan plan;
    if (!any_fits) {
      plan.kind = Plan::local;
      plan.probes = probes_;
      return plan;
    }
    if (!best || best_spare <= 0) return plan;  // wait
    plan.kind = Plan::go;
    plan.reserved = best->node->node_id;
    ++inflight_[plan.reserved];
    plan.probes = probes_;
    for (auto& p : plan.probes) {
      if (!p.ok) continue;
      // Room left for this batch (the reserved node counts its own reservation as free).
      const int spare = cap_[p.node->node_id] - inflight_[p.node->node_id] + (p.node->node_id == plan.reserved ? 1 : 0);
      p.answer["load"] = {{"cpu_slots", spare}, {"cpu_running", 0}, {"cpu_queued", 0},
                          {"gpu_slots", spare}, {"gpu_running", 0}, {"gpu_queued", 0}};
    }
    return plan;
  }

  bool try_acquire(const std::string& node_id) {
    std::lock_guard lock(mu_);
    if (inflight_[node_id] >= cap_[node_id]) return false;
    ++inflight_[node_id];
    return true;
  }

  void release(const std::string& node_id) {
    {
      std::lock_guard lock(mu_);
      --inflight_[node_id];
    }
    if (on_room) on_room();
  }

  std::function<void()> on_room;  // room was freed on a worker

 private:
  const Cluster& cluster_;
  state::Ledger& ledger_;
  const int max_per_worker_;
  std::mutex mu_;
  std::vector<HealthProbe> probes_;
  std::map<std::string, int> cap_, inflight_;
};

struct Outcome {
  bool done = false, ok = false, skipped = false, running = false, local = false;
  json row;
};

std::string duration_text(double sec) {
  if (sec < 60) return fmt::format("{:.0f}s", sec);
  if (sec < 3600) return fmt::format("{}m{:02}s", static_cast<int>(sec) / 60, static_cast<int>(sec) % 60);
  return fmt::format("{}h{:02}m", static_cast<int>(sec) / 3600, static_cast<int>(sec) % 3600 / 60);
}

}  // namespace

Result<std::vector<BatchJob>> read_batch_file(const fs::path& file, const BatchOptions& o) {
  auto text = util::read_file(file, 64u << 20);
  if (!text) return Error(ErrorKind::invalid_input, "cannot read the batch file: " + text.error().message);
  std::vector<json> entries;
  const std::string body = util::trim(*text);
  if (!body.empty() && body.front() == '[') {
    auto doc = protocol::parse_json(body);
    if (!doc) return Error(ErrorKind::invalid_input, "batch file: " + doc.error().message);
    for (auto& e : *doc) entries.push_back(std::move(e));
  } else {
    std::size_t at = 0, line_no = 0;
    while (at <= text->size()) {
      const auto end = std::min(text->find('\n', at), text->size());
      const std::string line = util::trim(text->substr(at, end - at));
      ++line_no;
      at = end + 1;
      if (line.empty() || line.front() == '#') continue;
      auto doc = protocol::parse_json(line);
      if (!doc) return Error(ErrorKind::invalid_input, "batch file line " + std::to_string(line_no) + ": " + doc.error().message);
      entries.push_back(std::move(doc).value());
    }
  }
  if (entries.empty()) return Error(ErrorKind::invalid_input, "the batch file holds no job");
  std::vector<BatchJob> jobs;
  std::set<std::pair<std::string, std::string>> seen;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    auto job = read_job(entries[i], i + 1, o);
    if (!job) return job.error();
    auto ready = prepare_job(job->spec);
    if (!ready) return bad_entry(i + 1, ready.error().message);
    if (!seen.insert({ready->first.run_id, ready->first.job_id}).second)
      return bad_entry(i + 1, "run " + ready->first.run_id + " job " + ready->first.job_id + " is given twice");
    jobs.push_back(std::move(job).value());
  }
  // Needs: each names one job of the batch, and they form no cycle (checked before anything runs).
  std::map<std::string, std::vector<std::size_t>> by_id;
  for (std::size_t i = 0; i < jobs.size(); ++i) by_id[util::trim(jobs[i].spec.job_id)].push_back(i);
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    for (const auto& id : jobs[i].need_ids) {
      const auto it = by_id.find(id);
      if (it == by_id.end()) return bad_entry(i + 1, "needs job " + id + ", which is not in the batch");
      if (it->second.size() > 1) return bad_entry(i + 1, "needs job " + id + ", which names more than one job of the batch");
      if (it->second[0] == i) return bad_entry(i + 1, "needs itself");
      if (std::find(jobs[i].needs.begin(), jobs[i].needs.end(), it->second[0]) == jobs[i].needs.end())
        jobs[i].needs.push_back(it->second[0]);
    }
    for (auto& a : jobs[i].artifacts) a.from = by_id[a.job_id][0];
  }
  // No cycle: every job can be ordered after its needs (jobs with none first, then those whose needs
  // are all ordered). Jobs left over sit on a cycle or behind one; walking needs among them from
  // any of them comes back to a job already met: that is the cycle named.
  std::vector<std::size_t> waiting(jobs.size());
  std::vector<std::vector<std::size_t>> needed_by(jobs.size());
  std::deque<std::size_t> free;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    waiting[i] = jobs[i].needs.size();
    for (const std::size_t n : jobs[i].needs) needed_by[n].push_back(i);
    if (waiting[i] == 0) free.push_back(i);
  }
  std::size_t ordered = 0;
  for (; !free.empty(); ++ordered) {
    const std::size_t i = free.front();
    free.pop_front();
    for (const std::size_t d : needed_by[i])
      if (--waiting[d] == 0) free.push_back(d);
  }
  if (ordered < jobs.size()) {
    std::size_t at = 0;
    while (waiting[at] == 0) ++at;
    std::vector<std::size_t> walk;
    std::vector<bool> met(jobs.size(), false);
    while (!met[at]) {
      met[at] = true;
      walk.push_back(at);
      for (const std::size_t n : jobs[at].needs)
        if (waiting[n] > 0) {
          at = n;
          break;
        }
    }
    std::string cycle;
    for (auto it = std::find(walk.begin(), walk.end(), at); it != walk.end(); ++it) cycle += jobs[*it].spec.job_id + " -> ";
    return Error(ErrorKind::invalid_input, "the batch's needs form a cycle: " + cycle + jobs[at].spec.job_id);
  }
  return jobs;
}

int run_batch(const Cluster& cluster, const fs::path& file, const BatchOptions& o) {
  auto jobs = read_batch_file(file, o);
  if (!jobs) return print_error(jobs.error());
  auto opened = state::Ledger::open(cluster.config().state_dir);
  if (!opened) return print_error(opened.error());
  state::Ledger& ledger = **opened;

  // Ctrl-C (or a service stop): no new job starts; the summary says what had ended. The flag
  // lives as long as the process (the signal thread outlives this function); the main thread
  // looks at it at least twice a second.
  static std::atomic<bool> stop{false};
  platform::on_shutdown_signal([] { stop = true; });

  const std::size_t total = jobs->size();
  std::vector<Outcome> outcomes(total);
  std::vector<std::pair<JobRequest, Requirements>> ready;
  std::deque<std::size_t> queue;
  std::vector<std::string> owners(total);  // the node an earlier run left a job running on
  std::vector<char> chained_ready(total, 0);  // a job that needed others, prepared with what they made
  // Already succeeded with the same inputs (an earlier run of this batch): the outcome that skips
  // it. Left on a node by an earlier run (running, being sent, or ended there before its receipt
  // was written): *owner names that node, where a resubmission answers the same job.
  auto earlier_run = [&](const JobRequest& req, std::string* owner) -> std::optional<Outcome> {
    const auto entry = ledger.find(req.run_id, req.job_id);
    if (!entry) return std::nullopt;
    std::error_code ec;
    const bool succeeded = entry->status == protocol::status::kSucceeded ||
                           (entry->status == "completed" && entry->exit_code.value_or(0) == 0);
    // The ledger knows a staged job by the hash of its staged payload.
    const bool same_inputs = entry->inputs_hash == req.inputs_hash || (req.staged && entry->inputs_hash == req.staged->inputs_hash);
    if (!req.force && succeeded && same_inputs && !entry->receipt_path.empty() &&
        fs::exists(util::path_from_utf8(entry->receipt_path), ec))
      return Outcome{true, true, true, false, false,
                     {{"run_id", req.run_id}, {"job_id", req.job_id}, {"step_name", req.step_name}, {"ok", true},
                      {"status", entry->status}, {"mode", entry->mode}, {"node_id", entry->node_id}, {"skipped", true},
                      {"message", "succeeded in an earlier run of the batch"}, {"receipt_path", entry->receipt_path}}};
    if (owner && entry->mode == "remote" && !entry->node_id.empty() && same_inputs) *owner = entry->node_id;
    return std::nullopt;
  };
  // Jobs that need others wait until those have succeeded (then they are prepared again with the
  // artifacts they take, and checked against earlier runs).
  std::vector<std::size_t> waiting(total);
  std::vector<std::vector<std::size_t>> needed_by(total);
  std::size_t skipped = 0;
  std::size_t failed_early = 0;  // input files that went since read_batch_file checked them
  for (std::size_t i = 0; i < total; ++i) {
    auto prepared = prepare_job((*jobs)[i].spec);
    waiting[i] = (*jobs)[i].needs.size();
    for (const std::size_t n : (*jobs)[i].needs) needed_by[n].push_back(i);
    if (!prepared) {
      const auto& spec = (*jobs)[i].spec;
      ready.push_back({JobRequest{util::trim(spec.run_id), util::trim(spec.job_id), protocol::steps::normalize(spec.step_name),
                                  "", json::object(), false, {}},
                       Requirements{}});
      outcomes[i] = Outcome{true, false, false, false, false,
                            {{"run_id", ready.back().first.run_id}, {"job_id", ready.back().first.job_id},
                             {"step_name", ready.back().first.step_name}, {"ok", false}, {"status", "failed"},
                             {"message", prepared.error().message}}};
      ++failed_early;
      continue;
    }
    ready.push_back(std::move(prepared).value());
    if (waiting[i] > 0) continue;
    if (auto done = earlier_run(ready.back().first, &owners[i])) {
      outcomes[i] = std::move(*done);
      ++skipped;
      continue;
    }
    queue.push_back(i);
  }
  // Higher priority first; equal ones in file order.
  std::stable_sort(queue.begin(), queue.end(), [&](std::size_t a, std::size_t b) {
    return (*jobs)[a].priority.value_or(0) > (*jobs)[b].priority.value_or(0);
  });

  Board board(cluster, ledger, o.max_per_worker);
  board.refresh();
  const int threads = static_cast<int>(std::clamp<std::size_t>(
      std::min<std::size_t>(total - skipped, static_cast<std::size_t>(board.capacity()) + 1), 1, kMaxThreads));
  JobWatch watch(cluster);
  std::mutex mu;  // outcomes, queue, counters, local_busy
  std::condition_variable work_cv, main_cv;
  board.on_room = [&work_cv] { work_cv.notify_all(); };
  std::mutex local_mutex;
  bool local_busy = false;  // a thread runs a job locally (one at a time)
  std::size_t finished = skipped + failed_early, failed = failed_early, running = 0;
  const auto started = Clock::now();
  const bool terminal = platform::stderr_is_terminal();

  auto report = [&](const Outcome& oc) {
    // One line per finished job where nobody watches a status line.
    if (terminal) return;
    const json& r = oc.row;
    std::fprintf(stderr, "batch: [%zu/%zu] %s %s on %s (%s)\n", finished, total, r.value("job_id", "").c_str(),
                 r.value("status", "").c_str(), r.value("node_id", "").c_str(), r.value("message", "").c_str());
  };

  // A job has ended (caller holds mu): the jobs that need it go on, or, when it did not succeed,
  // end without running, and so do the jobs that need those.
  std::function<void(std::size_t)> settle = [&](std::size_t i) {
    for (const std::size_t d : needed_by[i]) {
      if (outcomes[d].done) continue;
      if (outcomes[i].ok) {
        if (--waiting[d] == 0) queue.push_back(d);
        continue;
      }
      const auto& req = ready[d].first;
      const std::string why = outcomes[i].row.value("message", std::string());
      Outcome oc;
      oc.done = true;
      oc.row = {{"run_id", req.run_id}, {"job_id", req.job_id}, {"step_name", req.step_name}, {"ok", false},
                {"status", "failed"}, {"error_code", "NEEDS_FAILED"},
                {"message", "not run: it needs job " + ready[i].first.job_id + ", which did not succeed" +
                                (why.empty() ? std::string() : " (" + why + ")")}};
      outcomes[d] = std::move(oc);
      ++finished;
      ++failed;
      report(outcomes[d]);
      settle(d);
    }
    work_cv.notify_all();
    main_cv.notify_all();
  };
  for (std::size_t i = 0; i < total; ++i)
    if (outcomes[i].done) settle(i);  // skipped: they succeeded

  // A job whose needs have succeeded, made ready to send: each artifact it takes is the synced
  // copy named in its job's receipt, staged like any input file. Error when one is not there.
  auto with_artifacts = [&](std::size_t i) -> Result<std::pair<JobRequest, Requirements>> {
    const BatchJob& job = (*jobs)[i];
    JobSpec spec = job.spec;
    for (const auto& a : job.artifacts) {
      std::string receipt_path;
      {
        std::lock_guard lock(mu);
        receipt_path = outcomes[a.from].row.value("receipt_path", std::string());
      }
      auto text = util::read_file(util::path_from_utf8(receipt_path), 64u << 20);
      auto receipt = text ? protocol::parse_json(*text) : Result<json>(text.error());
      std::string local;
      if (receipt && receipt->is_object())
        for (const auto& row : receipt->value("downloaded_artifacts", json::array()))
          if (row.is_object() && row.value("name", "") == a.name) local = row.value("local_path", "");
      if (local.empty())
        return Error(ErrorKind::invalid_input, "payload." + a.field + ": job " + a.job_id + " has no synced artifact named " +
                                                   a.name + " on the controller");
      spec.payload[a.field] = local;
      spec.input_fields.push_back(a.field);
    }
    return prepare_job(spec);
  };

  // Each thread takes the first queued job that can go now (room on a worker that fits, or the
  // local lane when none fits and no other job runs locally), so a job waiting for one busy node
  // never holds up jobs other nodes could take.
  auto take = [&](std::unique_lock<std::mutex>& lock) -> std::optional<std::pair<std::size_t, Board::Plan>> {
    while (!stop && finished < total) {
      for (auto it = queue.begin(); it != queue.end(); ++it) {
        const auto& [req, requirements] = ready[*it];
        auto plan = board.try_reserve(req, requirements, owners[*it]);
        if (plan.kind == Board::Plan::wait || (plan.kind == Board::Plan::local && local_busy)) continue;
        const std::size_t i = *it;
        queue.erase(it);
        if (plan.kind == Board::Plan::local) local_busy = true;
        return std::pair{i, std::move(plan)};
      }
      work_cv.wait_for(lock, std::chrono::milliseconds(500));
    }
    return std::nullopt;
  };

  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      while (true) {
        std::unique_lock lock(mu);
        auto next = take(lock);
        if (!next) return;
        auto& [i, plan] = *next;
        ++running;
        outcomes[i].running = true;
        outcomes[i].local = plan.kind == Board::Plan::local;
        lock.unlock();

        // A job that needed others is prepared again now, with what they made.
        std::optional<Outcome> early;
        if (!(*jobs)[i].needs.empty() && !chained_ready[i]) {
          auto chained = with_artifacts(i);
          if (chained) {
            std::string owner;
            early = earlier_run(chained->first, &owner);
            lock.lock();
            ready[i] = std::move(chained).value();
            chained_ready[i] = 1;
            // An earlier run left it on a node this plan did not pick (only now is its inputs_hash
            // known): it is placed again, where a resubmission answers the job it left there.
            if (!early && !owner.empty() && !(plan.kind == Board::Plan::go && plan.reserved == owner)) {
              owners[i] = owner;
              if (plan.kind == Board::Plan::go) board.release(plan.reserved);
              if (plan.kind == Board::Plan::local) local_busy = false;
              --running;
              outcomes[i].running = false;
              queue.push_front(i);
              work_cv.notify_all();
              continue;
            }
            lock.unlock();
          } else {
            const auto& r0 = ready[i].first;
            early = Outcome{true, false, false, false, false,
                            {{"run_id", r0.run_id}, {"job_id", r0.job_id}, {"step_name", r0.step_name}, {"ok", false},
                             {"status", "failed"}, {"message", chained.error().message}}};
          }
        }
        if (early) {
          if (plan.kind == Board::Plan::go) board.release(plan.reserved);
          lock.lock();
          --running;
          if (plan.kind == Board::Plan::local) local_busy = false;
          ++finished;
          if (!early->ok) ++failed;
          if (early->skipped) ++skipped;
          outcomes[i] = std::move(*early);
          report(outcomes[i]);
          settle(i);
          continue;
        }

        const auto& [req, requirements] = ready[i];
        bool reservation_unused = plan.kind == Board::Plan::go;
        DispatchOptions d;
        d.no_local_fallback = o.no_local_fallback;
        d.priority = (*jobs)[i].priority;
        d.local_mutex = &local_mutex;
        d.preferred = plan.reserved;
        d.busy_means_retry = true;
        d.watch = &watch;
        d.acquire = [&](const state::NodeEntry& node) {
          if (reservation_unused && node.node_id == plan.reserved) {
            reservation_unused = false;
            return true;
          }
          return board.try_acquire(node.node_id);
        };
        d.release = [&](const state::NodeEntry& node) { board.release(node.node_id); };
        Result<json> out = Error(ErrorKind::internal, "not run");
        try {
          out = dispatch_job(cluster, ledger, req, requirements, d, &plan.probes);
        } catch (const std::exception& ex) {
          out = Error(ErrorKind::internal, std::string("unexpected error: ") + ex.what());
        }
        if (reservation_unused) board.release(plan.reserved);

        lock.lock();
        --running;
        if (plan.kind == Board::Plan::local) local_busy = false;
        if (!out && out.error().message == kBusyRetry) {
          // Its workers filled up while it failed over: it waits for room like the others.
          outcomes[i].running = false;
          queue.push_front(i);
          work_cv.notify_all();
          continue;
        }
        Outcome oc;
        oc.done = true;
        if (out) {
          oc.ok = out->value("ok", false) == true;
          const json attempts = out->value("attempts", json::array());
          oc.row = {{"run_id", req.run_id},   {"job_id", req.job_id},
                    {"step_name", req.step_name}, {"ok", oc.ok},
                    {"status", out->value("status", json(""))}, {"mode", out->value("mode", json(""))},
                    {"node_id", out->value("node_id", json(""))}, {"exit_code", out->value("exit_code", json(0))},
                    {"error_code", out->value("error_code", json(""))}, {"message", out->value("message", json(""))},
                    {"attempts", attempts.size()},           {"receipt_path", out->value("receipt_path", json(""))}};
          if (out->contains("staged")) oc.row["staged"] = (*out)["staged"];
        } else {
          oc.row = {{"run_id", req.run_id}, {"job_id", req.job_id}, {"step_name", req.step_name}, {"ok", false},
                    {"status", "failed"}, {"message", out.error().message}};
        }
        ++finished;
        if (!oc.ok) ++failed;
        outcomes[i] = std::move(oc);
        report(outcomes[i]);
        settle(i);
      }
    });
  }

  // The main thread: the status line, and probes again now and then.
  auto last_refresh = Clock::now();
  bool interrupted = false;
  {
    std::unique_lock lock(mu);
    while (finished < total) {
      main_cv.wait_for(lock, std::chrono::milliseconds(500));
      if (stop) {
        interrupted = true;
        break;
      }
      const double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
      const std::size_t ran = finished - skipped;
      const double rate = elapsed > 0 ? static_cast<double>(ran) / elapsed : 0;
      if (terminal) {
        const std::string eta = rate > 0 ? duration_text(static_cast<double>(total - finished) / rate) : "-";
        std::fprintf(stderr, "\rbatch: %zu/%zu done, %zu running, %zu failed, %.2f jobs/s, ETA %s   ", finished, total,
                     running, failed, rate, eta.c_str());
        std::fflush(stderr);
      }
      if (Clock::now() - last_refresh > std::chrono::milliseconds(static_cast<long long>(o.refresh_sec * 1000))) {
        lock.unlock();
        board.refresh();
        lock.lock();
        last_refresh = Clock::now();
        work_cv.notify_all();
      }
    }
  }
  if (terminal) std::fputc('\n', stderr);
  if (!interrupted)
    for (auto& t : pool) t.join();

  // The summary: on stdout, and kept beside the receipts.
  std::lock_guard lock(mu);
  const double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
  json rows = json::array();
  std::map<std::string, int> per_node;
  std::size_t succeeded = 0, not_run = 0, in_flight = 0;
  for (std::size_t i = 0; i < total; ++i) {
    const auto& oc = outcomes[i];
    if (oc.done) {
      rows.push_back(oc.row);
      if (oc.ok) ++succeeded;
      if (!oc.skipped) ++per_node[oc.row.value("node_id", "")];
    } else {
      const auto& req = ready[i].first;
      const char* why = !oc.running ? "the batch stopped before it started"
                        : oc.local ? "the batch stopped while it ran here; it did not finish and runs again next time"
                                   : "the batch stopped while it ran; it goes on on its node, and the next run of the "
                                     "batch follows it there";
      rows.push_back({{"run_id", req.run_id}, {"job_id", req.job_id}, {"step_name", req.step_name}, {"ok", false},
                      {"status", oc.running ? "interrupted" : "not_run"}, {"message", why}});
      ++(oc.running ? in_flight : not_run);
    }
  }
  const std::size_t ran = finished - skipped;
  json summary{{"ok", !interrupted && failed == 0},
               {"mode", "batch"},
               {"batch_file", util::u8(fs::absolute(file))},
               {"total", total},
               {"succeeded", succeeded},
               {"failed", failed},
               {"skipped", skipped},
               {"interrupted", interrupted},
               {"in_flight", in_flight},
               {"not_run", not_run},
               {"elapsed_sec", std::round(elapsed * 1000) / 1000},
               {"jobs_per_sec", elapsed > 0 ? std::round(static_cast<double>(ran) / elapsed * 1000) / 1000 : 0.0},
               {"threads", threads},
               {"per_node", per_node},
               {"finished_at", util::now_utc()},
               {"jobs", rows}};
  std::string stamp = util::now_utc();
  std::erase(stamp, ':');
  const std::string stem = util::u8(file.stem()).empty() ? "batch" : util::u8(file.stem());
  const fs::path saved = cluster.config().state_dir / "batches" / util::path_from_utf8(stem + "-" + stamp + ".json");
  if (util::write_file_atomic(saved, protocol::dump_json(summary, 2))) summary["summary_path"] = util::u8(saved);
  print_json(summary);
  if (interrupted) {
    // Jobs in flight go on on their workers; this process leaves them (the next run follows them).
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(130);
  }
  return failed == 0 ? 0 : 2;
}

}  // namespace rayvault::controller
