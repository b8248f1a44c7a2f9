// The batch's follower of jobs by node (watch.hpp).
#include "controller/watch.hpp"

#include <algorithm>
#include <optional>
#include <tuple>
#include <vector>

#include "protocol/envelope.hpp"
#include "protocol/job_record.hpp"

namespace rayvault::controller {

namespace {
constexpr std::size_t kMaxPerRound = 256;  // what a worker takes in one watch
constexpr long long kMaxRoundMs = 25000;
}  // namespace

struct JobWatch::Node {
  const state::NodeEntry* entry = nullptr;
  struct Job {
    std::string run_id, job_id, inputs_hash;
    json record;
    std::string known;  // the status last answered
    Clock::time_point answered_at;
    std::string error;
    bool gone = false;
    std::uint64_t news = 0;  // grows with each answer the follower should see
  };
  std::map<std::uint64_t, Job> jobs;
  std::uint64_t next_id = 1;
  int submitting = 0;
  std::size_t offset = 0;  // where the next round starts when there are more jobs than one round takes
  WorkerClient* client = nullptr;  // the round in flight's, so that stopping can cut it
  bool done = false;               // run() has returned
  std::condition_variable cv;
  std::thread thread;
};

JobWatch::JobWatch(const Cluster& cluster) : cluster_(cluster) {}

JobWatch::~JobWatch() {
  // A round in flight is cut; one about to open its connection may miss the cut, so it is cut
  // again until its thread has returned.
  std::unique_lock lock(mu_);
  stopping_ = true;
  for (auto& [id, n] : nodes_) {
    while (!n->done) {
      if (n->client) n->client->disconnect();
      n->cv.notify_all();
      n->cv.wait_for(lock, std::chrono::milliseconds(50), [&n = n] { return n->done; });
    }
  }
  lock.unlock();
  for (auto& [id, n] : nodes_)
    if (n->thread.joinable()) n->thread.join();
}

JobWatch::Node& JobWatch::node_for(const state::NodeEntry& entry) {
  auto& n = nodes_[entry.node_id];
  if (!n) {
    n = std::make_unique<Node>();
    n->entry = &entry;
    n->thread = std::thread([this, node = n.get()] {
      run(*node);
      std::lock_guard lock(mu_);
      node->done = true;
      node->cv.notify_all();
    });
  }
  return *n;
}

JobWatch::Submitting JobWatch::submitting(const state::NodeEntry& node) {
  std::lock_guard lock(mu_);
  Node& n = node_for(node);
  ++n.submitting;
  return Submitting(this, &n);
}

JobWatch::Submitting::Submitting(Submitting&& o) noexcept : watch_(o.watch_), node_(o.node_) { o.node_ = nullptr; }

JobWatch::Submitting::~Submitting() {
  if (!node_) return;
  std::lock_guard lock(watch_->mu_);
  --node_->submitting;
}

std::unique_ptr<JobWatch::Follow> JobWatch::follow(const state::NodeEntry& node, const std::string& run_id,
                                                   const std::string& job_id, const std::string& inputs_hash,
                                                   const json& record) {
  std::lock_guard lock(mu_);
  Node& n = node_for(node);
  const std::uint64_t id = n.next_id++;
  n.jobs[id] = Node::Job{run_id, job_id, inputs_hash, record, protocol::string_field(record, "status"), Clock::now(), {}, false, 0};
  n.cv.notify_all();
  return std::unique_ptr<Follow>(new Follow(this, &n, id));
}

JobWatch::Follow::~Follow() {
  std::lock_guard lock(watch_->mu_);
  node_->jobs.erase(id_);
}

JobWatch::Answer JobWatch::Follow::next(Clock::time_point until) {
  std::unique_lock lock(watch_->mu_);
  const auto& job = node_->jobs.at(id_);
  node_->cv.wait_until(lock, until, [&] { return watch_->stopping_ || job.news != seen_news_; });
  seen_news_ = job.news;
  return Answer{job.record, job.answered_at, job.error, job.gone};
}

// One node's rounds, while the watch lasts.
void JobWatch::run(Node& n) {
  const auto& cc = cluster_.config().controller;
  WorkerClient client = cluster_.client_for(*n.entry, cc.request_timeout_sec);
  const long long silence_ms = static_cast<long long>(cc.node_silence_sec * 1000);
  const auto interval = std::chrono::milliseconds(static_cast<long long>(cc.poll_interval_sec * 1000));
  std::optional<std::uint64_t> cursor;
  std::unique_lock lock(mu_);
  while (true) {
    n.cv.wait(lock, [&] { return stopping_ || !n.jobs.empty(); });
    if (stopping_) return;
    // The jobs of this round: all of them, or kMaxPerRound in turn.
    // A job is named once however many follow it (two jobs of a batch that the worker answers
    // as one, idempotently), and its answer goes to each of them.
    json list = json::array();
    using Key = std::tuple<std::string, std::string, std::string>;  // run, job, inputs_hash
    struct Named {
      std::size_t at;                      // where in `list`
      std::vector<std::uint64_t> followers;
    };
    std::map<Key, Named> asked;
    std::vector<std::uint64_t> ids;
    for (const auto& [id, j] : n.jobs) ids.push_back(id);
    const bool over = ids.size() > kMaxPerRound;
    if (over) std::rotate(ids.begin(), ids.begin() + static_cast<long>(n.offset % ids.size()), ids.end());
    ids.resize(std::min(ids.size(), kMaxPerRound));
    n.offset += ids.size();
    for (const auto id : ids) {
      const auto& j = n.jobs.at(id);
      // Named with the status all its followers have seen; when they saw different ones, with
      // none, so that the answer brings them all the job as it is.
      const Key key{j.run_id, j.job_id, protocol::normalize_hash(j.inputs_hash)};
      const auto [it, first] = asked.try_emplace(key, Named{list.size(), {}});
      if (first)
        list.push_back({{"run_id", j.run_id}, {"job_id", j.job_id}, {"inputs_hash", j.inputs_hash}, {"status", j.known}});
      else if (list[it->second.at]["status"] != j.known)
        list[it->second.at]["status"] = "";
      it->second.followers.push_back(id);
    }
    // Short while a submission may add a job the round would not name, when jobs take turns, or
    // before the first cursor (without one, only the named jobs would end the wait); otherwise
    // well under the silence limit, so that a node that stops answering is noticed.
    const bool short_round = n.submitting > 0 || over || !cursor;
    const int wait_ms = static_cast<int>(short_round ? kSubmittingWait.count()
                                                     : std::clamp<long long>(silence_ms / 2, 1, kMaxRoundMs));
    n.client = &client;
    lock.unlock();
    auto answer = client.watch_jobs(list, cursor, wait_ms);
    // A worker's answer is read field by field, whatever its shape (this thread must not throw).
    if (answer && !answer->is_object()) answer = Error(ErrorKind::unavailable, "the worker's watch answer is not a JSON object");
    lock.lock();
    n.client = nullptr;
    if (stopping_) return;
    const auto now = Clock::now();
    if (!answer) {
      for (const auto id : ids) {
        if (auto it = n.jobs.find(id); it != n.jobs.end()) {
          it->second.error = answer.error().message;
          ++it->second.news;
        }
      }
      n.cv.notify_all();
      n.cv.wait_for(lock, interval, [&] { return stopping_; });
      continue;
    }
    if (const auto c = answer->find("cursor"); c != answer->end() && c->is_number_unsigned()) cursor = c->get<std::uint64_t>();
    for (const auto id : ids) {
      if (auto it = n.jobs.find(id); it != n.jobs.end()) {
        it->second.answered_at = now;
        it->second.error.clear();
      }
    }
    const auto listed = answer->find("jobs");
    for (const auto& item : listed != answer->end() && listed->is_array() ? *listed : json::array()) {
      if (!item.is_object()) continue;
      const auto a = asked.find({protocol::string_field(item, "run_id"), protocol::string_field(item, "job_id"),
                                 protocol::normalize_hash(protocol::string_field(item, "inputs_hash"))});
      if (a == asked.end()) continue;
      for (const auto id : a->second.followers) {
        const auto it = n.jobs.find(id);
        if (it == n.jobs.end()) continue;
        auto& j = it->second;
        if (const auto rec = item.find("job"); rec != item.end() && rec->is_object()) {
          j.record = *rec;
          j.known = protocol::string_field(*rec, "status");
        } else {
          j.gone = true;
          const std::string detail = protocol::string_field(item, "detail");
          j.error = detail.empty() ? "the worker cannot read the job" : detail;
        }
        ++j.news;
      }
    }
    n.cv.notify_all();
  }
}

}  // namespace rayvault::controller
