// SQLite persistence for the worker (WAL journal; one connection guarded by a mutex).
#include "state/job_store.hpp"
#include "state/sqlite_schema.hpp"
#include "util/files.hpp"

#include <SQLiteCpp/SQLiteCpp.h>

#include "protocol/errors.hpp"
#include "protocol/steps.hpp"

namespace rayvault::state {
namespace {

using protocol::json;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS jobs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id TEXT NOT NULL UNIQUE,
  run_id TEXT NOT NULL,
  step_name TEXT NOT NULL,
  inputs_hash TEXT NOT NULL,
  payload TEXT NOT NULL,
  status TEXT NOT NULL,
  progress REAL NOT NULL DEFAULT 0,
  message TEXT NOT NULL DEFAULT '',
  created_at TEXT NOT NULL,
  started_at TEXT,
  finished_at TEXT,
  exit_code INTEGER,
  metrics TEXT NOT NULL DEFAULT '{}',
  artifacts TEXT NOT NULL DEFAULT '[]',
  error_code TEXT NOT NULL DEFAULT '',
  error_message TEXT NOT NULL DEFAULT '',
  worker_id TEXT NOT NULL DEFAULT '',
  log_path TEXT NOT NULL DEFAULT '',
  receipt_path TEXT NOT NULL DEFAULT '',
  artifact_dir TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS idempotency (
  idem_key TEXT PRIMARY KEY,
  job_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS aliases (
  run_id TEXT NOT NULL,
  job_id TEXT NOT NULL,
  target_job_id TEXT NOT NULL,
  PRIMARY KEY (run_id, job_id)
);
CREATE INDEX IF NOT EXISTS aliases_target ON aliases(target_job_id, run_id);
CREATE TABLE IF NOT EXISTS logs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id TEXT NOT NULL,
  ts TEXT NOT NULL,
  level TEXT NOT NULL,
  event TEXT NOT NULL,
  message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_job ON logs(job_id, id);
)sql";

constexpr const char* kColumns =
    "job_id, run_id, step_name, inputs_hash, payload, status, progress, message, created_at, started_at, "
    "finished_at, exit_code, metrics, artifacts, error_code, error_message, worker_id, log_path, receipt_path, "
    "artifact_dir, priority, launch";

std::optional<std::string> opt_text(const SQLite::Column& c) {
  if (c.isNull()) return std::nullopt;
  return c.getString();
}

json parse_or(const std::string& text, json fallback) {
  auto parsed = protocol::parse_json(text);
  return parsed ? std::move(parsed).value() : std::move(fallback);
}

StoredJob row_to_job(SQLite::Statement& q) {
  StoredJob j;
  auto& r = j.record;
  r.job_id = q.getColumn(0).getString();
  r.run_id = q.getColumn(1).getString();
  r.step_name = q.getColumn(2).getString();
  r.inputs_hash = q.getColumn(3).getString();
  j.payload = parse_or(q.getColumn(4).getString(), json::object());
  r.status = q.getColumn(5).getString();
  r.progress = q.getColumn(6).getDouble();
  r.message = q.getColumn(7).getString();
  r.created_at = q.getColumn(8).getString();
  r.started_at = opt_text(q.getColumn(9));
  r.finished_at = opt_text(q.getColumn(10));
  if (!q.getColumn(11).isNull()) r.exit_code = q.getColumn(11).getInt();
  r.metrics = parse_or(q.getColumn(12).getString(), json::object());
  r.artifacts = parse_or(q.getColumn(13).getString(), json::array());
  r.error_code = q.getColumn(14).getString();
  r.error_message = q.getColumn(15).getString();
  r.worker_id = q.getColumn(16).getString();
  r.log_path = q.getColumn(17).getString();
  r.receipt_path = q.getColumn(18).getString();
  j.artifact_dir = q.getColumn(19).getString();
  j.priority = q.getColumn(20).getInt();
  j.launch = parse_or(q.getColumn(21).getString(), json::object());
  if (!j.launch.is_object()) j.launch = json::object();
  return j;
}

void bind_opt(SQLite::Statement& q, int i, const std::optional<std::string>& v) {
  if (v) q.bind(i, *v);
  else q.bind(i);
}

// text_bytes, when given, receives the length of the row's JSON texts (payload, metrics, artifacts).
std::optional<StoredJob> select_job(SQLite::Database& db, const std::string& job_id, std::size_t* text_bytes = nullptr) {
  SQLite::Statement q(db, std::string("SELECT ") + kColumns + " FROM jobs WHERE job_id = ?");
  q.bind(1, job_id);
  if (!q.executeStep()) return std::nullopt;
  if (text_bytes)
    *text_bytes = static_cast<std::size_t>(q.getColumn(4).getBytes() + q.getColumn(12).getBytes() + q.getColumn(13).getBytes());
  return row_to_job(q);
}

// Writes every field of a job that changes over its life.
void write_mutable(SQLite::Database& db, const StoredJob& job) {
  const auto& r = job.record;
  SQLite::Statement q(db,
                      "UPDATE jobs SET status=?, progress=?, message=?, started_at=?, finished_at=?, exit_code=?, "
                      "metrics=?, artifacts=?, error_code=?, error_message=?, log_path=?, receipt_path=?, "
                      "artifact_dir=?, priority=?, launch=? WHERE job_id=?");
  q.bind(1, r.status);
  q.bind(2, r.progress);
  q.bind(3, r.message);
  bind_opt(q, 4, r.started_at);
  bind_opt(q, 5, r.finished_at);
  if (r.exit_code) q.bind(6, *r.exit_code);
  else q.bind(6);
  q.bind(7, protocol::dump_json(r.metrics));
  q.bind(8, protocol::dump_json(r.artifacts));
  q.bind(9, r.error_code);
  q.bind(10, r.error_message);
  q.bind(11, r.log_path);
  q.bind(12, r.receipt_path);
  q.bind(13, job.artifact_dir);
  q.bind(14, job.priority);
  q.bind(15, job.launch.empty() ? std::string() : protocol::dump_json(job.launch));
  q.bind(16, r.job_id);
  q.exec();
}

void add_alias(SQLite::Database& db, const std::string& run_id, const std::string& job_id, const std::string& target) {
  SQLite::Statement q(db, "INSERT OR IGNORE INTO aliases(run_id, job_id, target_job_id) VALUES (?, ?, ?)");
  q.bind(1, run_id);
  q.bind(2, job_id);
  q.bind(3, target);
  q.exec();
}

}  // namespace

std::string render_log(const std::string& job_id, const std::vector<LogLine>& lines) {
  std::string out;
  for (const auto& l : lines) {
    out += protocol::dump_json(
        json{{"event", l.event}, {"job_id", job_id}, {"level", l.level}, {"message", l.message}, {"ts", l.ts}});
    out += '\n';
  }
  return out;
}

std::string idempotency_key(const std::string& step_name, const std::string& inputs_hash) {
  return protocol::steps::normalize(step_name) + ":" + inputs_hash;
}

JobStore::JobStore(std::unique_ptr<SQLite::Database> db) : db_(std::move(db)) {}

std::shared_ptr<const JobView> make_view(StoredJob job) {
  auto view = std::make_shared<JobView>();
  view->record_text = protocol::record_json(job.record);
  protocol::JobRecord again = job.record;
  again.idempotent = true;
  again.cached_job_id = again.job_id;
  view->idempotent_text = protocol::record_json(again);
  view->job = std::move(job);
  return view;
}

std::shared_ptr<const JobView> JobStore::view_cached(const std::string& job_id) {
  if (const auto it = cache_.find(job_id); it != cache_.end()) {
    recent_.splice(recent_.begin(), recent_, it->second.at);
    return it->second.view;
  }
  std::size_t text_bytes = 0;
  auto job = select_job(*db_, job_id, &text_bytes);
  if (!job) return nullptr;
  auto view = make_view(std::move(*job));
  // The parsed JSON takes more than its text; the budget is rough.
  const std::size_t bytes = text_bytes + view->record_text.size() + view->idempotent_text.size() + 1024;
  if (bytes > kCachedBytes / 8) return view;  // a very large job is read from the database each time
  const auto [entry, added] = cache_.emplace(job_id, Cached{view, recent_.end(), bytes});
  if (!added) return view;
  try {
    recent_.push_front(job_id);
  } catch (...) {
    cache_.erase(entry);
    throw;
  }
  entry->second.at = recent_.begin();
  cached_bytes_ += bytes;
  while (cache_.size() > kCachedJobs || cached_bytes_ > kCachedBytes) forget(std::string(recent_.back()));
  return view;
}

std::optional<StoredJob> JobStore::select_cached(const std::string& job_id) {
  auto view = view_cached(job_id);
  if (!view) return std::nullopt;
  return view->job;
}

void JobStore::remember_key(const std::string& key, const std::string& job_id) {
  if (idempotency_.size() >= kRememberedKeys) idempotency_.clear();  // a cache: the database has them all
  idempotency_[key] = job_id;
}

void JobStore::forget(const std::string& job_id) {
  if (const auto it = cache_.find(job_id); it != cache_.end()) {
    cached_bytes_ -= it->second.bytes;
    recent_.erase(it->second.at);
    cache_.erase(it);
  }
}
JobStore::~JobStore() = default;

Result<std::unique_ptr<JobStore>> JobStore::open(const std::filesystem::path& db_path) {
  try {
    std::error_code ec;
    std::filesystem::create_directories(db_path.parent_path(), ec);
    auto db = std::make_unique<SQLite::Database>(util::u8(db_path), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE, 5000);
    db->exec("PRAGMA journal_mode=WAL");
    db->exec("PRAGMA synchronous=NORMAL");
    db->exec(kSchema);
    add_column_if_missing(*db, "jobs", "priority", "INTEGER NOT NULL DEFAULT 0");
    add_column_if_missing(*db, "jobs", "launch", "TEXT NOT NULL DEFAULT ''");
    return std::unique_ptr<JobStore>(new JobStore(std::move(db)));
  } catch (const std::exception& ex) {
    return Error(ErrorKind::io, "cannot open job database " + util::u8(db_path) + ": " + ex.what());
  }
}

Result<std::pair<StoredJob, Admission>> JobStore::admit(const StoredJob& job) {
  std::lock_guard lock(mu_);
  try {
    const auto& r = job.record;
    const std::string key = idempotency_key(r.step_name, r.inputs_hash);
    // The same submission again (a retry, a poll by POST): answered from memory.
    if (const auto known = idempotency_.find(key); known != idempotency_.end() && known->second == r.job_id)
      if (auto existing = select_cached(r.job_id); existing && existing->record.run_id == r.run_id)
        return std::pair{*existing, Admission::existing};
    SQLite::Transaction tx(*db_);
    std::optional<StoredJob> existing;
    {
      SQLite::Statement q(*db_, "SELECT job_id FROM idempotency WHERE idem_key = ?");
      q.bind(1, key);
      if (q.executeStep()) {
        const std::string id = q.getColumn(0).getString();
        remember_key(key, id);
        existing = select_cached(id);
      }
    }
    if (!existing) existing = select_cached(r.job_id);
    if (!existing) {
      // A job id first seen under another run may be an alias of an earlier idempotent hit.
      SQLite::Statement q(*db_, "SELECT target_job_id FROM aliases WHERE run_id = ? AND job_id = ?");
      q.bind(1, r.run_id);
      q.bind(2, r.job_id);
      if (q.executeStep()) existing = select_cached(q.getColumn(0).getString());
    }
    if (existing) {
      if (existing->record.run_id != r.run_id || existing->record.job_id != r.job_id)
        add_alias(*db_, r.run_id, r.job_id, existing->record.job_id);
      tx.commit();
      return std::pair{*existing, Admission::existing};
    }
    // The row is created with its fixed fields; write_mutable fills the rest, as update() does.
    SQLite::Statement ins(*db_,
                          "INSERT INTO jobs(job_id, run_id, step_name, inputs_hash, payload, status, created_at, "
                          "worker_id) VALUES (?,?,?,?,?,?,?,?)");
    ins.bind(1, r.job_id);
    ins.bind(2, r.run_id);
    ins.bind(3, r.step_name);
    ins.bind(4, r.inputs_hash);
    ins.bind(5, protocol::canonical_json(job.payload));
    ins.bind(6, r.status);
    ins.bind(7, r.created_at);
    ins.bind(8, r.worker_id);
    ins.exec();
    write_mutable(*db_, job);
    SQLite::Statement idem(*db_, "INSERT INTO idempotency(idem_key, job_id) VALUES (?, ?)");
    idem.bind(1, key);
    idem.bind(2, r.job_id);
    idem.exec();
    tx.commit();
    remember_key(key, r.job_id);
    forget(r.job_id);
    return std::pair{job, Admission::created};
  } catch (const std::exception& ex) {
    return Error(ErrorKind::io, std::string("job database: ") + ex.what());
  }
}

std::optional<StoredJob> JobStore::get(const std::string& job_id) {
  std::lock_guard lock(mu_);
  try {
    return select_cached(job_id);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<JobStore::ViewLookup> JobStore::lookup_view(const std::string& run_id, const std::string& job_id) {
  std::lock_guard lock(mu_);
  try {
    auto view = view_cached(job_id);
    if (!view) {
      SQLite::Statement q(*db_, "SELECT target_job_id FROM aliases WHERE run_id = ? AND job_id = ?");
      q.bind(1, run_id);
      q.bind(2, job_id);
      if (!q.executeStep()) return std::nullopt;
      view = view_cached(q.getColumn(0).getString());
      if (!view) return std::nullopt;
      return ViewLookup{std::move(view), true};
    }
    if (view->job.record.run_id == run_id) return ViewLookup{std::move(view), true};
    SQLite::Statement q(*db_, "SELECT 1 FROM aliases WHERE target_job_id = ? AND run_id = ?");
    q.bind(1, job_id);
    q.bind(2, run_id);
    const bool aliased = q.executeStep();
    return ViewLookup{std::move(view), aliased};
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<JobStore::Lookup> JobStore::lookup(const std::string& run_id, const std::string& job_id) {
  auto found = lookup_view(run_id, job_id);
  if (!found) return std::nullopt;
  return Lookup{found->view->job, found->run_matches};
}

std::shared_ptr<const JobView> JobStore::known_submission(const std::string& step_name, const std::string& inputs_hash,
                                                          const std::string& run_id, const std::string& job_id) {
  std::lock_guard lock(mu_);
  try {
    const auto known = idempotency_.find(idempotency_key(step_name, inputs_hash));
    if (known == idempotency_.end() || known->second != job_id) return nullptr;
    auto view = view_cached(job_id);
    if (!view || view->job.record.run_id != run_id) return nullptr;
    return view;
  } catch (const std::exception&) {
    return nullptr;
  }
}

Status JobStore::update(const StoredJob& job) {
  std::lock_guard lock(mu_);
  forget(job.record.job_id);  // read again from the database, whatever this write does
  try {
    write_mutable(*db_, job);
    return ok_status();
  } catch (const std::exception& ex) {
    return Error(ErrorKind::io, std::string("job database: ") + ex.what());
  }
}

Status JobStore::append_log(const std::string& job_id, const LogLine& line) {
  std::lock_guard lock(mu_);
  try {
    SQLite::Statement q(*db_, "INSERT INTO logs(job_id, ts, level, event, message) VALUES (?,?,?,?,?)");
    q.bind(1, job_id);
    q.bind(2, line.ts);
    q.bind(3, line.level);
    q.bind(4, line.event);
    q.bind(5, line.message);
    q.exec();
    return ok_status();
  } catch (const std::exception& ex) {
    return Error(ErrorKind::io, std::string("job database: ") + ex.what());
  }
}

std::vector<LogLine> JobStore::logs(const std::string& job_id) {
  std::lock_guard lock(mu_);
  std::vector<LogLine> out;
  try {
    SQLite::Statement q(*db_, "SELECT ts, level, event, message FROM logs WHERE job_id = ? ORDER BY id");
    q.bind(1, job_id);
    while (q.executeStep())
      out.push_back({q.getColumn(0).getString(), q.getColumn(1).getString(), q.getColumn(2).getString(),
                     q.getColumn(3).getString()});
  } catch (const std::exception&) {
  }
  return out;
}

std::vector<std::string> JobStore::queued_job_ids() {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  SQLite::Statement q(*db_, "SELECT job_id FROM jobs WHERE status = 'queued' ORDER BY seq");
  while (q.executeStep()) out.push_back(q.getColumn(0).getString());
  return out;
}

std::vector<std::string> JobStore::running_launched_job_ids() {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  SQLite::Statement q(*db_, "SELECT job_id FROM jobs WHERE status = 'running' AND launch != '' ORDER BY seq");
  while (q.executeStep()) out.push_back(q.getColumn(0).getString());
  return out;
}

std::vector<std::string> JobStore::fail_interrupted(const std::string& now, const std::string& message, bool keep_launched) {
  std::lock_guard lock(mu_);
  std::vector<std::string> ids;
  recent_.clear();
  cache_.clear();
  cached_bytes_ = 0;
  SQLite::Transaction tx(*db_);
  const std::string which = keep_launched ? "status = 'running' AND launch = ''" : "status = 'running'";
  {
    SQLite::Statement q(*db_, "SELECT job_id FROM jobs WHERE " + which + " ORDER BY seq");
    while (q.executeStep()) ids.push_back(q.getColumn(0).getString());
  }
  SQLite::Statement u(*db_,
                      "UPDATE jobs SET status='failed', progress=1.0, finished_at=?, exit_code=1, "
                      "error_code=?, error_message=?, message=? WHERE " + which);
  u.bind(1, now);
  u.bind(2, std::string(protocol::codes::kWorkerRestarted));
  u.bind(3, message);
  u.bind(4, message);
  u.exec();
  tx.commit();
  return ids;
}

std::string JobStore::other_job_in(const std::string& artifact_dir, const std::string& job_id) {
  std::lock_guard lock(mu_);
  try {
    SQLite::Statement q(*db_,
                        "SELECT job_id FROM jobs WHERE artifact_dir = ? AND job_id != ? "
                        "AND (status = 'running' OR artifacts != '[]' OR (status = 'queued' AND launch != '')) LIMIT 1");
    q.bind(1, artifact_dir);
    q.bind(2, job_id);
    return q.executeStep() ? q.getColumn(0).getString() : std::string();
  } catch (const std::exception&) {
    return {};  // the database cannot answer now: the folder is taken as free, as before this check existed
  }
}

int JobStore::active_count() {
  std::lock_guard lock(mu_);
  SQLite::Statement q(*db_, "SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')");
  return q.executeStep() ? q.getColumn(0).getInt() : 0;
}

}  // namespace rayvault::state
