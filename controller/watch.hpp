// Following many jobs on one worker with one long poll at a time (`POST /jobs/watch`, for workers
// that advertise "watch"). A batch with hundreds of jobs in flight on a node holds one connection
// to it for all of them, not one a job: a thread a node asks after every job it follows there, and
// each job's own thread waits on that thread's answers.
//
// A round names every job followed on the node with the status last seen, and the worker holds it
// until one of them changes, its change counter moves past the last round's cursor (a job was
// added or changed in between), or the wait ends. While a job is being submitted to the node a
// round waits at most kSubmittingWait, so that the job joins the next round without waiting out a
// long one that did not name it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "controller/cluster.hpp"

namespace rayvault::controller {

class JobWatch {
  struct Node;  // one followed worker: its jobs, its thread

 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kSubmittingWait{250};

  explicit JobWatch(const Cluster& cluster);
  ~JobWatch();
  JobWatch(const JobWatch&) = delete;
  JobWatch& operator=(const JobWatch&) = delete;

  // What a follower learns from a wait.
  struct Answer {
    json record;                    // the job as last answered (the one given until news)
    Clock::time_point answered_at;  // when the node last answered a round about it
    std::string error;              // the last round's failure, when it failed
    bool gone = false;              // the node answered that it does not know the job (error says how)
  };

  class Follow;
  // Marks a submission to `node` under way while alive (see above).
  class Submitting {
   public:
    ~Submitting();
    Submitting(Submitting&&) noexcept;
    Submitting(const Submitting&) = delete;
   private:
    friend class JobWatch;
    Submitting(JobWatch* watch, Node* node) : watch_(watch), node_(node) {}
    JobWatch* watch_;
    Node* node_;
  };
  Submitting submitting(const state::NodeEntry& node);

  // Follows a job on `node` from `record` (its latest known state) until the Follow ends.
  std::unique_ptr<Follow> follow(const state::NodeEntry& node, const std::string& run_id, const std::string& job_id,
                                 const std::string& inputs_hash, const json& record);

  class Follow {
   public:
    ~Follow();
    // Waits until the job's status is another than the last one answered, the node says it does
    // not know the job, a round fails, or `until`.
    Answer next(Clock::time_point until);
   private:
    friend class JobWatch;
    Follow(JobWatch* watch, Node* node, std::uint64_t id) : watch_(watch), node_(node), id_(id) {}
    JobWatch* watch_;
    Node* node_;
    std::uint64_t id_;
    std::uint64_t seen_news_ = 0;
  };

 private:
  Node& node_for(const state::NodeEntry& node);
  void run(Node& n);

  const Cluster& cluster_;
  std::mutex mu_;  // guards nodes_ and everything in a Node
  std::condition_variable cv_;
  std::map<std::string, std::unique_ptr<Node>> nodes_;
  bool stopping_ = false;
};

}  // namespace rayvault::controller
