// SQLite implementation of Database: one connection, WAL, foreign keys on.

#include <sqlite3.h>

#include <mutex>

#include "store/migrations.h"
#include "store/store.h"

namespace detops {
namespace {

class SqliteDatabase final : public Database {
 public:
  explicit SqliteDatabase(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  ~SqliteDatabase() override { sqlite3_close_v2(db_); }

  Status Exec(std::string_view sql, const std::vector<SqlValue>& params) override {
    std::lock_guard lock(mu_);
    return Run(sql, params, nullptr);
  }

  Result<std::vector<SqlRow>> Query(std::string_view sql,
                                    const std::vector<SqlValue>& params) override {
    std::lock_guard lock(mu_);
    std::vector<SqlRow> rows;
    RETURN_IF_ERROR(Run(sql, params, &rows));
    return rows;
  }

  Status InTransaction(const std::function<Status()>& body) override {
    // The connection stays locked for the whole body (the mutex is
    // recursive, so the body's own calls pass), keeping other threads'
    // statements out of this transaction. BEGIN IMMEDIATE takes the write
    // lock up front, waiting up to busy_timeout for other processes.
    std::lock_guard lock(mu_);
    RETURN_IF_ERROR(Run("BEGIN IMMEDIATE", {}, nullptr));
    Status body_status = body();
    if (!body_status.ok()) {
      (void)Run("ROLLBACK", {}, nullptr);
      return body_status;
    }
    Status c = Run("COMMIT", {}, nullptr);
    if (!c.ok()) (void)Run("ROLLBACK", {}, nullptr);
    return c;
  }

  Status Migrate() override { return ApplyMigrations(*this); }

  int SchemaVersion() override {
    auto rows = Query("SELECT COALESCE(MAX(version), 0) FROM schema_version", {});
    return rows.ok() && !rows->empty() ? static_cast<int>((*rows)[0].Int(0)) : 0;
  }

 private:
  Status Error(int rc, std::string_view sql) {
    std::string msg = std::string(path_) + ": " + sqlite3_errmsg(db_) +
                      " (in: " + std::string(sql.substr(0, 120)) + ")";
    int primary = rc & 0xff;
    if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) return Status::Unavailable(msg);
    if (primary == SQLITE_CONSTRAINT) return Status::AlreadyExists(msg);
    if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) return Status::Corruption(msg);
    if (primary == SQLITE_IOERR || primary == SQLITE_FULL || primary == SQLITE_CANTOPEN)
      return Status::IOError(msg);
    return Status::Internal(msg);
  }

  // Runs every statement in `sql` (params bind to the first); the caller
  // holds mu_ (or owns the transaction).
  Status Run(std::string_view sql, const std::vector<SqlValue>& params, std::vector<SqlRow>* rows) {
    const char* tail = sql.data();
    const char* end = sql.data() + sql.size();
    bool first = true;
    while (tail < end) {
      sqlite3_stmt* stmt = nullptr;
      int rc = sqlite3_prepare_v2(db_, tail, static_cast<int>(end - tail), &stmt, &tail);
      if (rc != SQLITE_OK) return Error(rc, sql);
      if (!stmt) break;  // trailing whitespace or comment
      if (first) {
        for (size_t i = 0; i < params.size(); ++i) Bind(stmt, static_cast<int>(i + 1), params[i]);
        first = false;
      }
      while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (!rows) continue;
        SqlRow row;
        int n = sqlite3_column_count(stmt);
        for (int c = 0; c < n; ++c) row.cols.push_back(Column(stmt, c));
        rows->push_back(std::move(row));
      }
      sqlite3_finalize(stmt);
      if (rc != SQLITE_DONE) return Error(rc, sql);
    }
    return Status::Ok();
  }

  static void Bind(sqlite3_stmt* stmt, int i, const SqlValue& v) {
    if (std::holds_alternative<int64_t>(v)) {
      sqlite3_bind_int64(stmt, i, std::get<int64_t>(v));
    } else if (std::holds_alternative<double>(v)) {
      sqlite3_bind_double(stmt, i, std::get<double>(v));
    } else if (std::holds_alternative<std::string>(v)) {
      const std::string& s = std::get<std::string>(v);
      sqlite3_bind_text(stmt, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    } else {
      sqlite3_bind_null(stmt, i);
    }
  }

  static SqlValue Column(sqlite3_stmt* stmt, int c) {
    switch (sqlite3_column_type(stmt, c)) {
      case SQLITE_INTEGER:
        return static_cast<int64_t>(sqlite3_column_int64(stmt, c));
      case SQLITE_FLOAT:
        return sqlite3_column_double(stmt, c);
      case SQLITE_NULL:
        return nullptr;
      default: {
        const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, c));
        return std::string(p ? p : "", static_cast<size_t>(sqlite3_column_bytes(stmt, c)));
      }
    }
  }

  sqlite3* db_;
  std::string path_;
  std::recursive_mutex mu_;  // guards db_; held for a whole transaction
};

}  // namespace

Result<std::unique_ptr<Database>> OpenSqlite(const SqliteOptions& options) {
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(options.path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = options.path.string() +
                      ": cannot open database: " + (db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close_v2(db);
    return Status::IOError(msg);
  }
  sqlite3_busy_timeout(db, options.busy_timeout_ms);
  auto out = std::make_unique<SqliteDatabase>(db, options.path.string());
  Status s =
      out->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;", {});
  if (!s.ok()) return s.WithContext("configuring database");
  // A file that is not a database fails here, not on first use.
  auto check = out->Query("SELECT count(*) FROM sqlite_master", {});
  if (!check.ok()) return check.status();
  return std::unique_ptr<Database>(std::move(out));
}

}  // namespace detops
