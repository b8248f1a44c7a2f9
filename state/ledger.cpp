// Controller ledger persistence.
#include "state/ledger.hpp"
#include "state/sqlite_schema.hpp"
#include "util/files.hpp"

#include <SQLiteCpp/SQLiteCpp.h>

namespace rayvault::state {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS submissions (
  run_id TEXT NOT NULL, job_id TEXT NOT NULL, step_name TEXT NOT NULL, inputs_hash TEXT NOT NULL,
  mode TEXT NOT NULL, node_id TEXT NOT NULL, host TEXT NOT NULL DEFAULT '', port INTEGER NOT NULL DEFAULT 0,
  remote_job_id TEXT NOT NULL DEFAULT '', status TEXT NOT NULL, exit_code INTEGER,
  submitted_at TEXT NOT NULL, finished_at TEXT NOT NULL DEFAULT '', duration_ms INTEGER NOT NULL DEFAULT 0,
  receipt_path TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (run_id, job_id)
);
CREATE TABLE IF NOT EXISTS nodes (
  node_id TEXT PRIMARY KEY, host TEXT NOT NULL DEFAULT '', port INTEGER NOT NULL DEFAULT 0,
  last_probe_at TEXT NOT NULL DEFAULT '', last_seen TEXT NOT NULL DEFAULT '', last_error TEXT NOT NULL DEFAULT '',
  latency_ms INTEGER NOT NULL DEFAULT -1, version TEXT NOT NULL DEFAULT '', worker_id TEXT NOT NULL DEFAULT '',
  compat_mode TEXT NOT NULL DEFAULT '', queue_depth INTEGER NOT NULL DEFAULT 0,
  running_jobs INTEGER NOT NULL DEFAULT 0, free_slots INTEGER NOT NULL DEFAULT 0,
  caps_summary TEXT NOT NULL DEFAULT '{}', cooldown_until TEXT NOT NULL DEFAULT '',
  cooldown_reason TEXT NOT NULL DEFAULT ''
);
)sql";

constexpr const char* kSubmissionColumns =
    "run_id, job_id, step_name, inputs_hash, mode, node_id, host, port, remote_job_id, status, exit_code, "
    "submitted_at, finished_at, duration_ms, receipt_path, attempts";

LedgerEntry row_to_entry(SQLite::Statement& q) {
  LedgerEntry e;
  e.run_id = q.getColumn(0).getString();
  e.job_id = q.getColumn(1).getString();
  e.step_name = q.getColumn(2).getString();
  e.inputs_hash = q.getColumn(3).getString();
  e.mode = q.getColumn(4).getString();
  e.node_id = q.getColumn(5).getString();
  e.host = q.getColumn(6).getString();
  e.port = q.getColumn(7).getInt();
  e.remote_job_id = q.getColumn(8).getString();
  e.status = q.getColumn(9).getString();
  if (!q.getColumn(10).isNull()) e.exit_code = q.getColumn(10).getInt();
  e.submitted_at = q.getColumn(11).getString();
  e.finished_at = q.getColumn(12).getString();
  e.duration_ms = q.getColumn(13).getInt64();
  e.receipt_path = q.getColumn(14).getString();
  e.attempts = q.getColumn(15).getString();
  return e;
}

}  // namespace

Ledger::Ledger(std::unique_ptr<SQLite::Database> db) : db_(std::move(db)) {}
Ledger::~Ledger() = default;

Result<std::unique_ptr<Ledger>> Ledger::open(const std::filesystem::path& state_dir) {
  try {
    std::error_code ec;
    std::filesystem::create_directories(state_dir, ec);
    auto db = std::make_unique<SQLite::Database>(util::u8(state_dir / "controller.db"),
                                                 SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE, 5000);
    db->exec("PRAGMA journal_mode=WAL");
    // A commit is safe from a killed controller as soon as it is in the log; only a crash of the
    // machine itself may lose the last ones (the receipts, written atomically, keep what ended).
    // Syncing each commit cost a submit about 7 ms of its overhead.
    db->exec("PRAGMA synchronous=NORMAL");
    db->exec(kSchema);
    add_column_if_missing(*db, "submissions", "attempts", "TEXT NOT NULL DEFAULT '[]'");
    return std::unique_ptr<Ledger>(new Ledger(std::move(db)));
  } catch (const std::exception& ex) {
    return Error(ErrorKind::io, std::string("cannot open controller ledger: ") + ex.what());
  }
}

Status Ledger::record(const LedgerEntry& e) {
  std::lock_guard lock(mu_);
  try {
    SQLite::Statement q(*db_, std::string("INSERT OR REPLACE INTO submissions (") + kSubmissionColumns +
                                  ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    q.bind(1, e.run_id);
    q.bind(2, e.job_id);
    q.bind(3, e.step_name);
    q.bind(4, e.inputs_hash);
    q.bind(5, e.mode);
    q.bind(6, e.node_id);
    q.bind(7, e.host);
    q.bind(8, e.port);
    q.bind(9, e.remote_job_id);
    q.bind(10, e.status);
    if (e.exit_code) q.bind(11, *e.exit_code);
    else q.bind(11);
    q.bind(12, e.submitted_at);
    q.bind(13, e.finished_at);
    q.bind(14, static_cast<int64_t>(e.duration_ms));
    q.bind(15, e.receipt_path);
    q.bind(16, e.attempts);
    q.exec();
    return ok_status();
  } catch (const std::exception& ex) {
    return Error(ErrorKind::io, std::string("controller ledger: ") + ex.what());
  }
}

std::optional<LedgerEntry> Ledger::find(const std::string& run_id, const std::string& job_id) {
  std::lock_guard lock(mu_);
  try {
    SQLite::Statement q(*db_, std::string("SELECT ") + kSubmissionColumns + " FROM submissions WHERE run_id = ? AND job_id = ?");
    q.bind(1, run_id);
    q.bind(2, job_id);
    if (!q.executeStep()) return std::nullopt;
    return row_to_entry(q);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

Result<std::vector<LedgerEntry>> Ledger::list(const std::string& status, const std::string& run_id, int limit) {
  std::lock_guard lock(mu_);
  try {
    SQLite::Statement q(*db_, std::string("SELECT ") + kSubmissionColumns +
                                  " FROM submissions WHERE (?1 = '' OR status = ?1) AND (?2 = '' OR run_id = ?2)"
                                  " ORDER BY submitted_at DESC, rowid DESC LIMIT ?3");
    q.bind(1, status);
    q.bind(2, run_id);
    q.bind(3, limit);
    std::vector<LedgerEntry> out;
    while (q.executeStep()) out.push_back(row_to_entry(q));
    return out;
  } catch (const std::exception& ex) {
    return Error(ErrorKind::io, std::string("controller ledger: ") + ex.what());
  }
}

Status Ledger::record_probe(const NodeState& p, bool answered) {
  std::lock_guard lock(mu_);
  try {
    SQLite::Statement ins(*db_, "INSERT OR IGNORE INTO nodes (node_id) VALUES (?)");
    ins.bind(1, p.node_id);
    ins.exec();
    if (answered) {
      SQLite::Statement q(*db_,
                          "UPDATE nodes SET host=?, port=?, last_probe_at=?, last_seen=?, last_error='', latency_ms=?, "
                          "version=?, worker_id=?, compat_mode=?, queue_depth=?, running_jobs=?, free_slots=?, "
                          "caps_summary=? WHERE node_id=?");
      q.bind(1, p.host);
      q.bind(2, p.port);
      q.bind(3, p.last_probe_at);
      q.bind(4, p.last_probe_at);
      q.bind(5, static_cast<int64_t>(p.latency_ms));
      q.bind(6, p.version);
      q.bind(7, p.worker_id);
      q.bind(8, p.compat_mode);
      q.bind(9, p.queue_depth);
      q.bind(10, p.running_jobs);
      q.bind(11, p.free_slots);
      q.bind(12, p.caps_summary);
      q.bind(13, p.node_id);
      q.exec();
    } else {
      SQLite::Statement q(*db_, "UPDATE nodes SET host=?, port=?, last_probe_at=?, last_error=? WHERE node_id=?");
      q.bind(1, p.host);
      q.bind(2, p.port);
      q.bind(3, p.last_probe_at);
      q.bind(4, p.last_error);
      q.bind(5, p.node_id);
      q.exec();
    }
    return ok_status();
  } catch (const std::exception& ex) {
    return Error(ErrorKind::io, std::string("controller ledger: ") + ex.what());
  }
}

Status Ledger::set_cooldown(const std::string& node_id, const std::string& until, const std::string& reason) {
  std::lock_guard lock(mu_);
  try {
    SQLite::Statement ins(*db_, "INSERT OR IGNORE INTO nodes (node_id) VALUES (?)");
    ins.bind(1, node_id);
    ins.exec();
    SQLite::Statement q(*db_, "UPDATE nodes SET cooldown_until=?, cooldown_reason=? WHERE node_id=?");
    q.bind(1, until);
    q.bind(2, reason);
    q.bind(3, node_id);
    q.exec();
    return ok_status();
  } catch (const std::exception& ex) {
    return Error(ErrorKind::io, std::string("controller ledger: ") + ex.what());
  }
}

std::vector<NodeState> Ledger::nodes() {
  std::lock_guard lock(mu_);
  std::vector<NodeState> out;
  try {
    SQLite::Statement q(*db_,
                        "SELECT node_id, host, port, last_probe_at, last_seen, last_error, latency_ms, version, "
                        "worker_id, compat_mode, queue_depth, running_jobs, free_slots, caps_summary, cooldown_until, "
                        "cooldown_reason FROM nodes ORDER BY node_id");
    while (q.executeStep()) {
      NodeState n;
      n.node_id = q.getColumn(0).getString();
      n.host = q.getColumn(1).getString();
      n.port = q.getColumn(2).getInt();
      n.last_probe_at = q.getColumn(3).getString();
      n.last_seen = q.getColumn(4).getString();
      n.last_error = q.getColumn(5).getString();
      n.latency_ms = q.getColumn(6).getInt64();
      n.version = q.getColumn(7).getString();
      n.worker_id = q.getColumn(8).getString();
      n.compat_mode = q.getColumn(9).getString();
      n.queue_depth = q.getColumn(10).getInt();
      n.running_jobs = q.getColumn(11).getInt();
      n.free_slots = q.getColumn(12).getInt();
      n.caps_summary = q.getColumn(13).getString();
      n.cooldown_until = q.getColumn(14).getString();
      n.cooldown_reason = q.getColumn(15).getString();
      out.push_back(std::move(n));
    }
  } catch (const std::exception&) {
  }
  return out;
}

void add_column_if_missing(SQLite::Database& db, const char* table, const char* column, const char* decl) {
  SQLite::Statement cols(db, std::string("PRAGMA table_info(") + table + ")");
  while (cols.executeStep())
    if (cols.getColumn(1).getString() == column) return;
  db.exec(std::string("ALTER TABLE ") + table + " ADD COLUMN " + column + " " + decl);
}

}  // namespace rayvault::state
