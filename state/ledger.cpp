// Controller ledger persistence.
#include "state/ledger.hpp"
#include "util/files.hpp"

#include <SQLiteCpp/SQLiteCpp.h>

namespace rayvault::state {

Ledger::Ledger(std::unique_ptr<SQLite::Database> db) : db_(std::move(db)) {}
Ledger::~Ledger() = default;

Result<std::unique_ptr<Ledger>> Ledger::open(const std::filesystem::path& state_dir) {
  try {
    std::error_code ec;
    std::filesystem::create_directories(state_dir, ec);
    auto db = std::make_unique<SQLite::Database>(util::u8(state_dir / "controller.db"),
                                                 SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE, 5000);
    db->exec("PRAGMA journal_mode=WAL");
    db->exec(R"sql(
CREATE TABLE IF NOT EXISTS submissions (
  run_id TEXT NOT NULL, job_id TEXT NOT NULL, step_name TEXT NOT NULL, inputs_hash TEXT NOT NULL,
  mode TEXT NOT NULL, node_id TEXT NOT NULL, host TEXT NOT NULL DEFAULT '', port INTEGER NOT NULL DEFAULT 0,
  remote_job_id TEXT NOT NULL DEFAULT '', status TEXT NOT NULL, exit_code INTEGER,
  submitted_at TEXT NOT NULL, finished_at TEXT NOT NULL DEFAULT '', duration_ms INTEGER NOT NULL DEFAULT 0,
  receipt_path TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (run_id, job_id)
))sql");
    return std::unique_ptr<Ledger>(new Ledger(std::move(db)));
  } catch (const std::exception& ex) {
    return Error(ErrorKind::io, std::string("cannot open controller ledger: ") + ex.what());
  }
}

Status Ledger::record(const LedgerEntry& e) {
  try {
    SQLite::Statement q(*db_, "INSERT OR REPLACE INTO submissions VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
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
    q.exec();
    return ok_status();
  } catch (const std::exception& ex) {
    return Error(ErrorKind::io, std::string("controller ledger: ") + ex.what());
  }
}

std::optional<LedgerEntry> Ledger::find(const std::string& run_id, const std::string& job_id) {
  try {
    SQLite::Statement q(*db_, "SELECT * FROM submissions WHERE run_id = ? AND job_id = ?");
    q.bind(1, run_id);
    q.bind(2, job_id);
    if (!q.executeStep()) return std::nullopt;
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
    return e;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace rayvault::state
