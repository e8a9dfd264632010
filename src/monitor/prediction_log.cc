// PredictionLog: a buffer drained by a background writer, as MetricLogger.
// Kept images become blobs in the writer thread, so Append stays a push.

#include <chrono>
#include <cmath>
#include <ctime>
#include <random>

#include "monitor/monitor_internal.h"

namespace detops {
namespace {

constexpr size_t kColumns = 14;
// 64 rows x 14 columns = 896 bound parameters, under SQLite's old default
// limit of 999 per statement.
constexpr size_t kRowsPerInsert = 64;

std::string InsertSql(size_t rows) {
  std::string sql =
      "INSERT INTO predictions (id, at, at_ms, model_name, model_version, width, height, "
      "profile_json, embedding_json, detections_json, queue_ms, inference_ms, total_ms, "
      "image_blob) VALUES ";
  for (size_t i = 0; i < rows; ++i) {
    sql += i ? ",(?,?,?,?,?,?,?,?,?,?,?,?,?,?)" : "(?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
  }
  // A retried batch whose earlier commit did land writes nothing twice.
  return sql + " ON CONFLICT (id) DO NOTHING";
}

// NOT NULL columns: SQLite stores a NaN as NULL.
double Finite(double v) { return std::isfinite(v) ? v : 0.0; }

}  // namespace

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string NewPredictionId() {
  thread_local std::mt19937_64 rng = [] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd()};
    return std::mt19937_64(seq);
  }();
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

std::string IsoFromMs(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  int frac = static_cast<int>(ms % 1000);
  if (frac < 0) {
    frac += 1000;
    --t;
  }
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, frac);
  return out;
}

Result<std::unique_ptr<PredictionLog>> PredictionLog::Open(Workspace& ws,
                                                           PredictionLogOptions options) {
  // The table comes with migration 4; fail here rather than in the writer.
  ASSIGN_OR_RETURN(auto rows, ws.db().Query("SELECT COUNT(*) FROM predictions WHERE id = ''"));
  (void)rows;
  if (options.buffer_max == 0) return Status::InvalidInput("buffer_max must be at least 1");
  if (options.flush_interval_ms <= 0) {
    return Status::InvalidInput("flush_interval_ms must be positive");
  }
  if (options.flush_records == 0) options.flush_records = 1;
  return std::unique_ptr<PredictionLog>(new PredictionLog(ws, options));
}

PredictionLog::PredictionLog(Workspace& ws, PredictionLogOptions options)
    : ws_(ws), options_(options) {
  writer_ = std::thread([this] { WriterLoop(); });
}

PredictionLog::~PredictionLog() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_one();
  writer_.join();
}

bool PredictionLog::Append(PredictionRecord record) {
  if (record.id.empty()) record.id = NewPredictionId();
  if (record.time_ms == 0) record.time_ms = NowMs();
  std::lock_guard lock(mu_);
  if (buffer_.size() >= options_.buffer_max) {
    dropped_.fetch_add(1);
    return false;
  }
  buffer_.push_back(std::move(record));
  ++appended_;
  if (buffer_.size() == options_.flush_records) wake_.notify_one();
  return true;
}

Status PredictionLog::Flush() {
  std::unique_lock lock(mu_);
  const int64_t target = appended_;
  const int64_t failures = failed_writes_.load();
  if (settled_ >= target) return Status::Ok();
  flush_requested_ = true;
  wake_.notify_one();
  progress_.wait(lock, [&] { return settled_ >= target || failed_writes_.load() > failures; });
  return failed_writes_.load() > failures ? last_error_ : Status::Ok();
}

size_t PredictionLog::buffered() const {
  std::lock_guard lock(mu_);
  return buffer_.size();
}

void PredictionLog::WriterLoop() {
  const auto interval = std::chrono::milliseconds(options_.flush_interval_ms);
  std::vector<PredictionRecord> batch;
  bool failed_last = false;
  std::unique_lock lock(mu_);
  while (true) {
    // After a failure, wait the full interval (or a Flush) before retrying,
    // even though the re-queued records exceed flush_records.
    wake_.wait_for(lock, interval, [&] {
      return stop_ || flush_requested_ ||
             (!failed_last && buffer_.size() >= options_.flush_records);
    });
    flush_requested_ = false;
    if (buffer_.empty()) {
      if (stop_) break;
      continue;
    }
    batch.assign(std::make_move_iterator(buffer_.begin()), std::make_move_iterator(buffer_.end()));
    buffer_.clear();
    lock.unlock();
    Status s = Write(batch);
    lock.lock();
    const auto n = static_cast<int64_t>(batch.size());
    failed_last = !s.ok();
    if (s.ok()) {
      settled_ += n;
      written_.fetch_add(n);
    } else {
      failed_writes_.fetch_add(1);
      last_error_ = s;
      if (stop_) {
        // Going away: what could not be written now is lost (counted).
        settled_ += n;
        dropped_.fetch_add(n);
      } else {
        // Back in front of those appended meanwhile; beyond buffer_max the
        // oldest go.
        buffer_.insert(buffer_.begin(), std::make_move_iterator(batch.begin()),
                       std::make_move_iterator(batch.end()));
        if (buffer_.size() > options_.buffer_max) {
          const size_t extra = buffer_.size() - options_.buffer_max;
          buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<ptrdiff_t>(extra));
          settled_ += static_cast<int64_t>(extra);
          dropped_.fetch_add(static_cast<int64_t>(extra));
        }
      }
    }
    batch.clear();
    progress_.notify_all();
  }
}

Status PredictionLog::Write(std::vector<PredictionRecord>& batch) {
  // Blobs first (outside the transaction): an image stored for a row that
  // then fails to commit is stored again, at no cost, on the retry.
  std::vector<std::string> image_blob(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    if (batch[i].image_bytes.empty()) continue;
    auto sha = ws_.blobs().Put(batch[i].image_bytes);
    if (!sha.ok())
      return sha.status().WithContext("keeping the image of prediction " + batch[i].id);
    image_blob[i] = *sha;
  }
  // Statements and parameters are built before the write lock is taken.
  std::vector<std::pair<std::string, std::vector<SqlValue>>> statements;
  static const std::string kFullInsert = InsertSql(kRowsPerInsert);
  for (size_t i = 0; i < batch.size(); i += kRowsPerInsert) {
    const size_t n = std::min(kRowsPerInsert, batch.size() - i);
    std::vector<SqlValue> params;
    params.reserve(n * kColumns);
    for (size_t j = i; j < i + n; ++j) {
      const PredictionRecord& r = batch[j];
      params.emplace_back(r.id);
      params.emplace_back(IsoFromMs(r.time_ms));
      params.emplace_back(r.time_ms);
      params.emplace_back(r.model_name);
      params.emplace_back(int64_t{r.model_version});
      params.emplace_back(int64_t{r.width});
      params.emplace_back(int64_t{r.height});
      params.emplace_back(ProfileToJson(r.profile).dump());
      params.emplace_back(EmbeddingToJson(r.embedding).dump());
      params.emplace_back(DetectionsToJson(r.detections).dump());
      params.emplace_back(Finite(r.queue_ms));
      params.emplace_back(Finite(r.inference_ms));
      params.emplace_back(Finite(r.total_ms));
      params.emplace_back(image_blob[j]);
    }
    statements.emplace_back(n == kRowsPerInsert ? kFullInsert : InsertSql(n), std::move(params));
  }
  Database& db = ws_.db();
  return db.InTransaction([&]() -> Status {
    for (const auto& [sql, params] : statements) RETURN_IF_ERROR(db.Exec(sql, params));
    return Status::Ok();
  });
}

}  // namespace detops
