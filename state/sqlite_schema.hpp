// Schema changes shared by the worker's and the controller's SQLite databases.
#pragma once

namespace SQLite {
class Database;
}

namespace rayvault::state {

// Adds a column added after the first release, when a database made by an older version lacks it.
void add_column_if_missing(SQLite::Database& db, const char* table, const char* column, const char* decl);

}  // namespace rayvault::state
