#pragma once
// Public header of the store module: the workspace (a folder holding the
// metadata database and the content-addressed blob store). Other modules
// talk to the Database and BlobStore interfaces, so that PostgreSQL and other
// blob stores can sit behind them.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/core.h"

namespace detops {

// A SQL parameter or column value.
using SqlValue = std::variant<std::nullptr_t, int64_t, double, std::string>;

struct SqlRow {
  std::vector<SqlValue> cols;
  bool IsNull(size_t i) const { return std::holds_alternative<std::nullptr_t>(cols.at(i)); }
  int64_t Int(size_t i) const;       // 0 for NULL
  double Real(size_t i) const;       // 0 for NULL
  std::string Text(size_t i) const;  // "" for NULL
};

// The metadata database. SQL is written in the common subset of SQLite and
// PostgreSQL with `?` placeholders. Thread-safe: calls are serialized on one
// connection. Atomicity comes from InTransaction: one BEGIN IMMEDIATE ...
// COMMIT around a body of Query/Exec calls on this same Database; a body
// must not call InTransaction again (transactions do not nest).
class Database {
 public:
  virtual ~Database() = default;
  virtual Status Exec(std::string_view sql, const std::vector<SqlValue>& params = {}) = 0;
  virtual Result<std::vector<SqlRow>> Query(std::string_view sql,
                                            const std::vector<SqlValue>& params = {}) = 0;
  // Runs `body` inside one write transaction; commits when it returns OK,
  // rolls back otherwise. The write lock is taken before `body` runs,
  // waiting up to the busy timeout for other processes (then Unavailable);
  // the body itself is never retried. Other threads' calls wait meanwhile.
  virtual Status InTransaction(const std::function<Status()>& body) = 0;
  // Applies the schema migrations not yet applied; records them in
  // schema_version. Safe to call from several processes at once.
  virtual Status Migrate() = 0;
  virtual int SchemaVersion() = 0;
};

struct SqliteOptions {
  std::filesystem::path path;   // the database file; created when absent
  int busy_timeout_ms = 10000;  // wait this long for another writer
};
Result<std::unique_ptr<Database>> OpenSqlite(const SqliteOptions& options);

// Content-addressed files named by the SHA-256 of their bytes, in sharded
// folders (ab/cdef…). Writes go to a temp file then rename, so a reader never
// sees a partial blob and a crash leaves at most a temp file. Thread-safe.
class BlobStore {
 public:
  virtual ~BlobStore() = default;
  // Stores bytes; returns their hash. Existing content is not written again.
  virtual Result<std::string> Put(std::string_view bytes) = 0;
  // Stores a copy of a file (streamed; hashed while copying).
  virtual Result<std::string> PutFile(const std::filesystem::path& file) = 0;
  // Stores a file whose hash the caller already knows (skips rehashing when
  // the blob exists; verifies the hash when it must copy).
  virtual Result<std::string> PutFileWithHash(const std::filesystem::path& file,
                                              const std::string& sha) = 0;
  virtual bool Has(const std::string& sha) const = 0;
  virtual Result<std::string> Get(const std::string& sha) const = 0;
  // Local path of a blob (the file may not exist if !Has(sha)).
  virtual std::filesystem::path PathOf(const std::string& sha) const = 0;
  // Every stored hash.
  virtual std::vector<std::string> List() const = 0;
  virtual Status Remove(const std::string& sha) = 0;
};

Result<std::unique_ptr<BlobStore>> OpenFileBlobStore(const std::filesystem::path& root);

struct WorkspaceOptions {
  std::filesystem::path root = "detops-ws";
  bool create = true;  // create the folder when absent; else NotFound
};

// A workspace folder: detops.db (SQLite, WAL) + blobs/ + inbox/ + logs/.
// Owns its database and blob store. Thread-safe as its parts are.
class Workspace {
 public:
  static Result<std::unique_ptr<Workspace>> Open(const WorkspaceOptions& options);

  const std::filesystem::path& root() const { return root_; }
  Database& db() { return *db_; }
  BlobStore& blobs() { return *blobs_; }

  // Removes blobs that no table references (left by an interrupted import,
  // say). Returns how many were removed. Every table that references blobs
  // must be known here. Not safe while another process imports.
  Result<int> CollectGarbage();

 private:
  Workspace() = default;
  std::filesystem::path root_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<BlobStore> blobs_;
};

// Current UTC time as ISO-8601 with milliseconds ("2026-11-25T05:00:00.123Z").
std::string NowIso8601();

}  // namespace detops
