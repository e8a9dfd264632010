#pragma once
// Public header of the track module: experiment runs. A run is what
// `detops train` or `detops eval` produces: parameters (immutable once set),
// tags (mutable), metric series (key, step, value, time), artifacts (files in
// the workspace blob store) and the environment it ran in. Runs live in the
// workspace database (tables runs, run_params, run_tags, run_metrics,
// run_metric_summary, run_artifacts; migration 2).
//
// Names: a run's name is unique per kind ("train-3" and "eval-3" may both
// exist, two train runs may not share a name). A run is addressed by its id,
// by its name, or by a unique prefix of at least 4 characters of its id, in
// that order of precedence.
//
// Queries: ListRuns loads the runs and filters and sorts them in C++ (see
// RunFilter). That is simple, works the same on SQLite and PostgreSQL, and
// takes milliseconds for thousands of runs.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/core.h"
#include "store/store.h"

namespace detops {

enum class RunStatus { kRunning, kFinished, kFailed, kKilled };
const char* RunStatusName(RunStatus s);  // "running", "finished", "failed", "killed"
std::optional<RunStatus> ParseRunStatus(std::string_view s);
inline bool IsTerminal(RunStatus s) { return s != RunStatus::kRunning; }

// Where a run ran. Captured once at the edge and stored with the run.
struct RunEnvironment {
  std::string git_commit;     // of the detops build (compiled in by the caller)
  std::string host;           // uname nodename
  std::string os;             // "Linux 6.1.0-18-amd64 x86_64"
  std::string device;         // "cpu", "cuda:0 (NVIDIA H100)", ...
  std::string torch_version;  // "" when LibTorch is not involved
  std::string detops_version;
  int threads = 0;  // worker threads the run used
  int cpus = 0;     // hardware threads of the host
  bool operator==(const RunEnvironment&) const = default;
};

// Fills host, os and cpus from uname(2) and the hardware; the rest come from
// the caller. Never reads environment variables.
RunEnvironment CaptureEnvironment(std::string git_commit, std::string detops_version = "",
                                  std::string device = "cpu", std::string torch_version = "",
                                  int threads = 0);

struct NewRun {
  std::string kind;  // "train" | "eval" (any [a-z0-9_-]+ is accepted)
  std::string name;  // optional; default "<kind>-<n>" with n the next free number
  std::map<std::string, std::string> params;
  std::map<std::string, std::string> tags;
  std::string dataset_version;  // e.g. "cars@3"; not checked here
  std::string parent_run;       // id, name or prefix of an existing run; stored as its id
  RunEnvironment env;
};

struct Artifact {
  std::string name;  // '/'-separated relative path: "checkpoints/last.pt", "eval.json"
  std::string blob;  // SHA-256 in the workspace blob store
  int64_t size = 0;
  std::string created_at;
};

struct MetricPoint {
  std::string key;
  int64_t step = 0;
  double value = 0;
  int64_t time_ms = 0;  // Unix epoch milliseconds
};

// Per-key summary of a run's series.
struct MetricSummary {
  std::string key;
  int64_t count = 0;
  int64_t last_step = 0;
  double last = 0;  // the value at the highest step (the latest logged on a tie)
  double min = 0;
  double max = 0;
};

struct RunInfo {
  std::string id;  // 12 lower-case hex characters, unique
  std::string name, kind;
  RunStatus status = RunStatus::kRunning;
  std::string created_at, ended_at;  // ISO-8601 UTC; ended_at "" while running
  std::string dataset_version, parent_run;
  std::map<std::string, std::string> params, tags;
  std::map<std::string, double> final_metrics;  // last value (highest step) of each key
  RunEnvironment env;
  std::vector<Artifact> artifacts;  // by name
  int64_t seq = 0;                  // creation order within the workspace
};

// A parsed filter expression over runs. Grammar (keywords case-insensitive):
//   expr    := and ("or" and)*
//   and     := unary ("and" unary)*
//   unary   := "not" unary | "(" expr ")" | field op literal
//   field   := one of RunFieldNames(): metrics.KEY, params.KEY, tags.KEY,
//              env.KEY and the run's attributes (one table in filter.cc)
//   op      := = | == | != | <> | < | <= | > | >=
//   literal := number | 'text' | "text"
// KEY is [A-Za-z0-9_./:-]+, or any text in backquotes. Metrics compare as
// numbers (a string literal is an error). Against a number literal, params,
// tags and attributes compare numerically when their text parses as a number
// (text that does not is unequal to and unordered with any number); against a
// string literal they compare as text. A comparison with a key the run lacks
// is false, except != which is true (so `tags.forced != 'true'` keeps runs
// without the tag). env.threads and env.cpus are numbers, like metrics.
// Copyable, immutable, thread-safe.
class RunFilter {
 public:
  RunFilter();  // matches every run
  bool Matches(const RunInfo& run) const;
  bool empty() const { return root_ == nullptr; }
  struct Node;

 private:
  explicit RunFilter(std::shared_ptr<const Node> root) : root_(std::move(root)) {}
  std::shared_ptr<const Node> root_;
  friend Result<RunFilter> ParseRunFilter(std::string_view text);
};

// InvalidInput naming the 1-based position and the problem, e.g.
// "filter position 15: expected a value after '>', found end of filter".
Result<RunFilter> ParseRunFilter(std::string_view text);

// One sort key: a field as in filters ("metrics.map50", "created_at").
struct RunSortKey {
  std::string field;
  bool descending = false;
};
// "metrics.map50 desc, created_at": comma-separated fields, each optionally
// followed by asc|desc. Runs lacking a key sort last either way; created_at
// sorts in creation order; id does not sort (InvalidInput). `field` is the
// canonical name ("dataset" for "dataset_version").
Result<std::vector<RunSortKey>> ParseRunSort(std::string_view text);

struct RunQuery {
  std::string filter;  // "" = every run
  std::string sort;    // "" = newest first
  int limit = 0;       // 0 = no limit
};

// A RunQuery parsed once: Parse reports a bad filter, sort or limit
// (InvalidInput) before any run is loaded; Apply filters, sorts and limits
// (pure; what ListRuns does after loading). Copyable, immutable, thread-safe.
class RunSelection {
 public:
  static Result<RunSelection> Parse(const RunQuery& query);
  std::vector<RunInfo> Apply(std::vector<RunInfo> runs) const;
  struct SortPlan;

 private:
  RunSelection() = default;
  RunFilter filter_;
  std::shared_ptr<const SortPlan> sort_;
  int limit_ = 0;
};

// The fields filters and sorts accept, for help texts: "metrics.KEY,
// params.KEY, ..., ended_at or parent".
std::string RunFieldNames();

// Runs side by side. Every row has one value per run (nullopt where a run
// lacks the key); `differs` is true when the values are not all equal.
struct ComparisonRow {
  std::string key;
  std::vector<std::optional<std::string>> values;
  bool differs = false;
  // Params only: every value is a JSON object that repeats the run's other
  // params (options_json); a table may leave the row out.
  bool repeats_others = false;
};
struct MetricComparisonRow {
  std::string key;
  std::vector<std::optional<double>> values;
  bool differs = false;
};
struct RunComparison {
  std::vector<std::string> ids, names;
  std::vector<ComparisonRow> attributes;  // kind, status, dataset, git_commit, device, ...
  std::vector<ComparisonRow> params;
  std::vector<ComparisonRow> tags;
  std::vector<MetricComparisonRow> metrics;  // final values
  // Keys of params and metrics whose values differ ("params.lr", "metrics.map50").
  std::vector<std::string> DifferingKeys() const;
};
RunComparison CompareRuns(const std::vector<RunInfo>& runs);

// JSON forms, for storage, the CLI and the HTTP layer.
Json EnvironmentToJson(const RunEnvironment& env);
RunEnvironment EnvironmentFromJson(const Json& j);  // missing fields stay empty
Json RunToJson(const RunInfo& run);
Json MetricSummaryToJson(const MetricSummary& s);
Json ComparisonToJson(const RunComparison& c);

// Creates, updates and reads runs in a workspace. Thread-safe (every call is
// one or a few database statements; writes are transactions). The workspace
// must outlive the tracker.
class Tracker {
 public:
  static Result<std::unique_ptr<Tracker>> Open(Workspace& ws);

  // InvalidInput for a bad kind or name, AlreadyExists for a name taken
  // within the kind, NotFound for an unknown parent_run.
  Result<RunInfo> CreateRun(const NewRun& run);
  // Terminal states set ended_at; setting the same status again is a no-op;
  // running after a terminal state (a resumed run) clears ended_at; one
  // terminal state to another is InvalidInput.
  Status SetStatus(const std::string& run, RunStatus status);
  // Upserts tags (tags are mutable).
  Status SetTags(const std::string& run, const std::map<std::string, std::string>& tags);
  // Params are immutable: setting a key again to the same value is fine, to
  // a different value is AlreadyExists (and nothing of the call is written).
  Status LogParams(const std::string& run, const std::map<std::string, std::string>& params);
  // Copies the file (or bytes) into the blob store and records it under
  // `name` (a relative '/'-path without ".."). Logging a name again points it
  // at the new content (e.g. checkpoints/last.pt each epoch).
  Status LogArtifact(const std::string& run, const std::string& name,
                     const std::filesystem::path& file);
  Status LogArtifactBytes(const std::string& run, const std::string& name, std::string_view bytes);
  // Writes points in one transaction (multi-row inserts). `run_id` must be a
  // run's full id. MetricLogger batches calls to this.
  Status LogMetrics(const std::string& run_id, const std::vector<MetricPoint>& points);

  // By id, name, or unique id prefix (>= 4 chars). NotFound, or InvalidInput
  // when ambiguous (the candidates are named).
  Result<RunInfo> GetRun(const std::string& id_or_prefix_or_name);
  // Points ordered by step (then time).
  Result<std::vector<MetricPoint>> MetricHistory(const std::string& run, const std::string& key);
  // Every key the run logged, by key.
  Result<std::vector<MetricSummary>> MetricSummaries(const std::string& run);
  Result<std::vector<RunInfo>> ListRuns(const RunQuery& query = {});

 private:
  explicit Tracker(Workspace& ws) : ws_(ws) {}
  Result<std::string> ResolveId(const std::string& ref);
  // Every run, or only `run_id`, with params, tags, final metrics, artifacts.
  Result<std::vector<RunInfo>> LoadRuns(const std::string& run_id);
  Status RecordArtifact(const std::string& run, const std::string& name, const std::string& sha,
                        int64_t size);
  Workspace& ws_;
};

struct MetricLoggerOptions {
  int flush_interval_ms = 200;           // the writer wakes at least this often
  size_t flush_points = 20000;           // ... or as soon as this many points wait
  size_t max_buffered_points = 1000000;  // ~60 MB; beyond this Log drops points (counted)
};

// Batched metric logging for training loops. Log() appends to an in-memory
// buffer under a mutex held for a push_back only; a background thread writes
// the buffer every flush_interval_ms or flush_points points in one
// transaction. Log never waits for the disk. A failed write keeps its points
// and is retried on the next cycle; Flush reports the failure. Thread-safe.
// The tracker must outlive the logger.
class MetricLogger {
 public:
  // `run_id` is a run's full id (RunInfo::id). An unknown run makes every
  // Flush return NotFound and the points are dropped.
  MetricLogger(Tracker& tracker, std::string run_id, MetricLoggerOptions options = {});
  ~MetricLogger();  // flushes what is buffered, then stops the writer
  MetricLogger(const MetricLogger&) = delete;
  MetricLogger& operator=(const MetricLogger&) = delete;

  void Log(std::string_view key, double value, int64_t step);
  // Blocks until every point logged before the call is written, or a write
  // after the call failed (returns that error).
  Status Flush();
  int64_t dropped() const { return dropped_.load(); }

 private:
  void WriterLoop();

  Tracker& tracker_;
  const std::string run_id_;
  const MetricLoggerOptions options_;
  std::mutex mu_;                     // guards everything below, except dropped_
  std::condition_variable wake_;      // the writer: points waiting, flush, stop
  std::condition_variable progress_;  // Flush callers: a write finished
  std::vector<MetricPoint> buffer_;
  int64_t logged_ = 0;    // points ever appended (not counting those Log dropped)
  int64_t settled_ = 0;   // points written, or dropped after a write failed for good
  int64_t failures_ = 0;  // failed writes so far
  Status last_error_;
  bool flush_requested_ = false;
  bool stop_ = false;
  std::atomic<int64_t> dropped_{0};
  std::thread writer_;
};

}  // namespace detops
