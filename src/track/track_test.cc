// Runs: creation and lookup, immutable params, status transitions,
// artifacts, batched metrics from several threads, filters, sorting and
// comparison.

#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "testing/testutil.h"
#include "track/track.h"

namespace detops {
namespace {

using testing::TempDir;

NewRun Spec(std::string kind, std::string name = "", std::string parent = "",
            std::map<std::string, std::string> params = {}) {
  NewRun n;
  n.kind = std::move(kind);
  n.name = std::move(name);
  n.parent_run = std::move(parent);
  n.params = std::move(params);
  return n;
}

RunQuery Query(std::string filter, std::string sort = "", int limit = 0) {
  RunQuery q;
  q.filter = std::move(filter);
  q.sort = std::move(sort);
  q.limit = limit;
  return q;
}

class TrackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ws = Workspace::Open({dir_ / "ws"});
    ASSERT_TRUE(ws.ok()) << ws.status().ToString();
    ws_ = std::move(*ws);
    auto t = Tracker::Open(*ws_);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    tracker_ = std::move(*t);
  }

  RunInfo Create(NewRun spec) {
    auto r = tracker_->CreateRun(spec);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : RunInfo();
  }

  // A train run with a model param and final metrics.
  RunInfo Trained(const std::string& name, const std::string& model, double map50,
                  std::map<std::string, std::string> tags = {}) {
    NewRun spec;
    spec.kind = "train";
    spec.name = name;
    spec.params = {{"model", model}, {"epochs", "10"}};
    spec.tags = std::move(tags);
    RunInfo r = Create(spec);
    EXPECT_TRUE(
        tracker_->LogMetrics(r.id, {{"map50", 0, map50 / 2, 0}, {"map50", 1, map50, 0}}).ok());
    return r;
  }

  std::vector<std::string> Names(const RunQuery& q) {
    auto runs = tracker_->ListRuns(q);
    EXPECT_TRUE(runs.ok()) << q.filter << ": " << runs.status().ToString();
    std::vector<std::string> out;
    if (runs.ok()) {
      for (const RunInfo& r : *runs) out.push_back(r.name);
    }
    return out;
  }

  TempDir dir_;
  std::unique_ptr<Workspace> ws_;
  std::unique_ptr<Tracker> tracker_;
};

TEST_F(TrackTest, CreateAndGetByIdPrefixAndName) {
  NewRun spec;
  spec.kind = "train";
  spec.params = {{"lr", "0.01"}};
  spec.tags = {{"owner", "ana"}};
  spec.dataset_version = "cars@3";
  spec.env = CaptureEnvironment("abc123", "0.1.0", "cpu", "", 2);
  RunInfo r = Create(spec);
  ASSERT_EQ(r.id.size(), 12u);
  EXPECT_EQ(r.id.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(r.name, "train-1");
  EXPECT_EQ(r.status, RunStatus::kRunning);
  EXPECT_TRUE(r.ended_at.empty());
  EXPECT_EQ(r.params.at("lr"), "0.01");
  EXPECT_EQ(r.tags.at("owner"), "ana");
  EXPECT_EQ(r.env.git_commit, "abc123");
  EXPECT_FALSE(r.env.host.empty());
  EXPECT_FALSE(r.env.os.empty());
  EXPECT_EQ(r.env.threads, 2);

  EXPECT_EQ(Create(Spec("train")).name, "train-2");
  EXPECT_EQ(Create(Spec("eval")).name, "eval-1");

  for (const std::string& ref : {r.id, r.id.substr(0, 6), std::string("train-1")}) {
    auto got = tracker_->GetRun(ref);
    ASSERT_TRUE(got.ok()) << ref << ": " << got.status().ToString();
    EXPECT_EQ(got->id, r.id);
    EXPECT_EQ(got->dataset_version, "cars@3");
    EXPECT_EQ(got->env, r.env);
  }
  EXPECT_EQ(tracker_->GetRun("nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(tracker_->GetRun("").status().code(), StatusCode::kInvalidInput);

  // Names are unique per kind.
  auto dup = tracker_->CreateRun(Spec("train", "train-1"));
  EXPECT_EQ(dup.status().code(), StatusCode::kAlreadyExists);
  EXPECT_NE(dup.status().message().find(r.id), std::string::npos);
  RunInfo same_name = Create(Spec("eval", "train-1"));
  auto ambiguous = tracker_->GetRun("train-1");
  EXPECT_EQ(ambiguous.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(ambiguous.status().message().find("ambiguous"), std::string::npos);
  EXPECT_TRUE(tracker_->GetRun(same_name.id).ok());

  EXPECT_EQ(tracker_->CreateRun(Spec("Train!")).status().code(), StatusCode::kInvalidInput);
  EXPECT_EQ(tracker_->CreateRun(Spec("train", "a b")).status().code(), StatusCode::kInvalidInput);
  EXPECT_EQ(tracker_->CreateRun(Spec("eval", "", "missing")).status().code(),
            StatusCode::kNotFound);
  RunInfo child = Create(Spec("eval", "", r.id.substr(0, 5)));
  EXPECT_EQ(child.parent_run, r.id);
}

TEST_F(TrackTest, ParamsAreImmutableTagsAreNot) {
  RunInfo r = Create(Spec("train", "", "", {{"lr", "0.01"}}));
  EXPECT_TRUE(tracker_->LogParams(r.id, {{"lr", "0.01"}, {"batch", "16"}}).ok());
  Status s = tracker_->LogParams(r.id, {{"epochs", "5"}, {"lr", "0.02"}});
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists);
  EXPECT_NE(s.message().find("'lr'"), std::string::npos) << s.message();
  auto got = tracker_->GetRun(r.id);
  EXPECT_EQ(got->params.at("lr"), "0.01");
  EXPECT_EQ(got->params.count("epochs"), 0u) << "a rejected call writes nothing";
  EXPECT_EQ(got->params.at("batch"), "16");

  EXPECT_TRUE(tracker_->SetTags(r.id, {{"stage", "a"}}).ok());
  EXPECT_TRUE(tracker_->SetTags(r.id, {{"stage", "b"}}).ok());
  EXPECT_EQ(tracker_->GetRun(r.id)->tags.at("stage"), "b");
  EXPECT_EQ(tracker_->LogParams("nope", {{"a", "b"}}).code(), StatusCode::kNotFound);
}

TEST_F(TrackTest, StatusTransitionsSetEndedAt) {
  RunInfo r = Create(Spec("train"));
  EXPECT_TRUE(tracker_->SetStatus(r.id, RunStatus::kFinished).ok());
  RunInfo done = *tracker_->GetRun(r.id);
  EXPECT_EQ(done.status, RunStatus::kFinished);
  EXPECT_FALSE(done.ended_at.empty());
  EXPECT_GE(done.ended_at, done.created_at);
  // Same status again: a no-op that keeps the end time.
  EXPECT_TRUE(tracker_->SetStatus(r.id, RunStatus::kFinished).ok());
  EXPECT_EQ(tracker_->GetRun(r.id)->ended_at, done.ended_at);
  // One terminal state to another is refused.
  Status s = tracker_->SetStatus(r.id, RunStatus::kKilled);
  EXPECT_EQ(s.code(), StatusCode::kInvalidInput);
  EXPECT_NE(s.message().find("already finished"), std::string::npos) << s.message();
  // Resumed: running again clears ended_at; then it may fail.
  EXPECT_TRUE(tracker_->SetStatus(r.id, RunStatus::kRunning).ok());
  EXPECT_TRUE(tracker_->GetRun(r.id)->ended_at.empty());
  EXPECT_TRUE(tracker_->SetStatus(r.id, RunStatus::kFailed).ok());
  EXPECT_EQ(tracker_->GetRun(r.id)->status, RunStatus::kFailed);
  EXPECT_FALSE(tracker_->GetRun(r.id)->ended_at.empty());
}

TEST_F(TrackTest, ArtifactsLandInTheBlobStoreAndDedupe) {
  RunInfo a = Create(Spec("train"));
  RunInfo b = Create(Spec("train"));
  testing::WriteText(dir_ / "last.pt", "weights v1");
  ASSERT_TRUE(tracker_->LogArtifact(a.id, "checkpoints/last.pt", dir_ / "last.pt").ok());
  ASSERT_TRUE(tracker_->LogArtifactBytes(b.id, "copy.pt", "weights v1").ok());
  ASSERT_TRUE(tracker_->LogArtifactBytes(a.id, "eval.json", "{}").ok());
  RunInfo got = *tracker_->GetRun(a.id);
  ASSERT_EQ(got.artifacts.size(), 2u);
  EXPECT_EQ(got.artifacts[0].name, "checkpoints/last.pt");
  EXPECT_EQ(got.artifacts[0].size, 10);
  EXPECT_EQ(got.artifacts[0].blob, Sha256Hex("weights v1"));
  EXPECT_EQ(*ws_->blobs().Get(got.artifacts[0].blob), "weights v1");
  EXPECT_EQ(tracker_->GetRun(b.id)->artifacts[0].blob, got.artifacts[0].blob);
  EXPECT_EQ(ws_->blobs().List().size(), 2u) << "same bytes, one blob";

  // Logging a name again points it at the new content.
  ASSERT_TRUE(tracker_->LogArtifactBytes(a.id, "checkpoints/last.pt", "weights v2").ok());
  EXPECT_EQ(tracker_->GetRun(a.id)->artifacts[0].blob, Sha256Hex("weights v2"));

  for (const char* bad : {"", "/abs", "../up", "a//b", "a/./b"}) {
    EXPECT_EQ(tracker_->LogArtifactBytes(a.id, bad, "x").code(), StatusCode::kInvalidInput) << bad;
  }
  EXPECT_EQ(tracker_->LogArtifact(a.id, "x", dir_ / "missing").code(), StatusCode::kNotFound);
}

TEST_F(TrackTest, MetricLoggerFromFourThreadsLosesNothing) {
  RunInfo r = Create(Spec("train"));
  constexpr int kThreads = 4, kPerThread = 25000;
  {
    MetricLoggerOptions options;
    options.flush_interval_ms = 20;
    options.flush_points = 5000;
    MetricLogger logger(*tracker_, r.id, options);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        std::string key = "loss" + std::to_string(t);
        for (int i = 0; i < kPerThread; ++i) logger.Log(key, i * 0.5, i);
      });
    }
    for (auto& th : threads) th.join();
    ASSERT_TRUE(logger.Flush().ok());
    // After Flush everything is visible.
    auto sums = tracker_->MetricSummaries(r.id);
    ASSERT_TRUE(sums.ok());
    ASSERT_EQ(sums->size(), 4u);
    for (const MetricSummary& s : *sums) {
      EXPECT_EQ(s.count, kPerThread) << s.key;
      EXPECT_EQ(s.last_step, kPerThread - 1);
      EXPECT_DOUBLE_EQ(s.last, (kPerThread - 1) * 0.5);
      EXPECT_DOUBLE_EQ(s.min, 0);
    }
    logger.Log("tail", 1, 0);  // written by the destructor
    EXPECT_EQ(logger.dropped(), 0);
  }
  auto hist = tracker_->MetricHistory(r.id, "loss2");
  ASSERT_TRUE(hist.ok());
  ASSERT_EQ(hist->size(), static_cast<size_t>(kPerThread));
  for (int i = 0; i < kPerThread; ++i) ASSERT_EQ((*hist)[i].step, i);
  EXPECT_EQ(tracker_->MetricHistory(r.id, "tail")->size(), 1u);
  EXPECT_DOUBLE_EQ(tracker_->GetRun(r.id)->final_metrics.at("loss0"), (kPerThread - 1) * 0.5);
}

TEST_F(TrackTest, HistoryIsOrderedByStepAndFinalIsTheHighestStep) {
  RunInfo r = Create(Spec("train"));
  {
    MetricLogger logger(*tracker_, r.id);
    logger.Log("map50", 0.3, 3);
    logger.Log("map50", 0.1, 1);
    logger.Log("map50", 0.2, 2);
    logger.Log("loss", std::nan(""), 0);  // a diverged step is kept, as NaN
  }
  auto h = *tracker_->MetricHistory(r.id, "map50");
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h[0].step, 1);
  EXPECT_EQ(h[2].step, 3);
  EXPECT_GT(h[0].time_ms, 1600000000000);
  // A later batch with a lower step does not change the final value.
  ASSERT_TRUE(tracker_->LogMetrics(r.id, {{"map50", 0, 0.9, 0}}).ok());
  RunInfo got = *tracker_->GetRun(r.id);
  EXPECT_DOUBLE_EQ(got.final_metrics.at("map50"), 0.3);
  EXPECT_TRUE(std::isnan(got.final_metrics.at("loss")));
  auto sums = *tracker_->MetricSummaries(r.id);
  ASSERT_EQ(sums.size(), 2u);
  EXPECT_EQ(sums[1].key, "map50");
  EXPECT_EQ(sums[1].count, 4);
  EXPECT_DOUBLE_EQ(sums[1].max, 0.9);
}

TEST_F(TrackTest, MetricLoggerForAnUnknownRunReportsNotFound) {
  MetricLogger logger(*tracker_, "000000000000");
  logger.Log("x", 1, 0);
  EXPECT_EQ(logger.Flush().code(), StatusCode::kNotFound);
  EXPECT_EQ(logger.dropped(), 1);
}

TEST_F(TrackTest, Filters) {
  Trained("a", "n", 0.6, {{"forced", "true"}});
  Trained("b", "s", 0.4);
  Trained("c", "n", 0.8);
  RunInfo e = Create(Spec("eval", "e"));
  ASSERT_TRUE(tracker_->SetStatus("c", RunStatus::kFinished).ok());

  EXPECT_EQ(Names(Query("metrics.map50 > 0.5", "name")), (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(Names(Query("metrics.map50 > 0.5 and params.model = 'n' and tags.forced != "
                        "'true' and kind = 'train' and status = 'finished'")),
            (std::vector<std::string>{"c"}));
  EXPECT_EQ(Names(Query("params.model = \"s\" or name = 'e'", "name")),
            (std::vector<std::string>{"b", "e"}));
  EXPECT_EQ(Names(Query("not (kind = 'train') ")), (std::vector<std::string>{"e"}));
  // Numbers in params compare as numbers: "10" >= 9.5.
  EXPECT_EQ(Names(Query("params.epochs >= 9.5", "name")),
            (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(Names(Query("metrics.map50 <= 0.4 OR metrics.map50 == 0.8", "name")),
            (std::vector<std::string>{"b", "c"}));
  // A missing key: false for every comparison but !=.
  EXPECT_EQ(Names(Query("metrics.map50 < 1")).size(), 3u) << "the eval run has no map50";
  EXPECT_EQ(Names(Query("metrics.map50 != 1")).size(), 4u);
  EXPECT_EQ(Names(Query("tags.forced = 'true'")), (std::vector<std::string>{"a"}));
  EXPECT_EQ(Names(Query("dataset = 'cars@1'")).size(), 0u);
  EXPECT_EQ(Names(Query("id = '" + e.id + "'")), (std::vector<std::string>{"e"}));
  // Precedence: and binds tighter than or.
  EXPECT_EQ(Names(Query("name = 'a' or name = 'b' and kind = 'eval'")),
            (std::vector<std::string>{"a"}));
  EXPECT_EQ(Names(Query("metrics.`map50` > 0.7")), (std::vector<std::string>{"c"}));
  EXPECT_EQ(Names(Query("   ")).size(), 4u);
}

TEST_F(TrackTest, MalformedFiltersNameThePositionAndTheProblem) {
  struct Case {
    const char* filter;
    const char* expect;  // part of the message
  } cases[] = {
      {"metrics.map50 >", "position 16: expected a value after '>', found end of filter"},
      {"metrics.map50 > 'high'", "position 17: 'metrics.map50' is a metric"},
      {"metrix.map50 > 1", "position 1: unknown field 'metrix.map50'"},
      {"params.model = n", "position 16: expected a value after '=', found 'n' (quote"},
      {"params.model = 'n", "position 16: unterminated string"},
      {"(kind = 'train'", "position 16: expected ')' to close '(' at position 1"},
      {"kind = 'train' name = 'a'", "position 16: unexpected 'name' after a complete condition"},
      {"status = 'done'", "position 10: unknown status 'done'"},
      {"kind 'train'", "position 6: expected a comparison"},
      {"metrics. > 1", "position 1: 'metrics.' needs a key"},
      {"kind = 'a' and", "position 15: expected a field"},
      {"kind ! 'a'", "position 6: '!' must be followed by '='"},
      {"kind = 'a' ; drop", "position 12: unexpected character ';'"},
      {"()", "position 2: empty parentheses"},
  };
  for (const Case& c : cases) {
    auto f = ParseRunFilter(c.filter);
    ASSERT_FALSE(f.ok()) << c.filter;
    EXPECT_EQ(f.status().code(), StatusCode::kInvalidInput);
    EXPECT_NE(f.status().message().find(c.expect), std::string::npos)
        << c.filter << "\n  got: " << f.status().message();
  }
  auto viaList = tracker_->ListRuns(Query("metrics.x >"));
  EXPECT_EQ(viaList.status().code(), StatusCode::kInvalidInput);
}

TEST_F(TrackTest, SortAscDescMissingLastAndLimit) {
  Trained("a", "n", 0.6);
  Trained("b", "s", 0.4);
  Trained("c", "n", 0.8);
  Create(Spec("eval", "e"));
  EXPECT_EQ(Names(Query("", "metrics.map50 desc")), (std::vector<std::string>{"c", "a", "b", "e"}));
  EXPECT_EQ(Names(Query("", "metrics.map50")), (std::vector<std::string>{"b", "a", "c", "e"}));
  EXPECT_EQ(Names(Query("", "metrics.map50 DESC", 2)), (std::vector<std::string>{"c", "a"}));
  EXPECT_EQ(Names(Query("")), (std::vector<std::string>{"e", "c", "b", "a"})) << "newest first";
  EXPECT_EQ(Names(Query("", "created_at")), (std::vector<std::string>{"a", "b", "c", "e"}));
  EXPECT_EQ(Names(Query("", "params.model desc, metrics.map50 desc")),
            (std::vector<std::string>{"b", "c", "a", "e"}));
  auto bad = ParseRunSort("metrics.map50 downward");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("position 15: expected asc or desc"), std::string::npos)
      << bad.status().message();
  EXPECT_FALSE(ParseRunSort("colour").ok());
  EXPECT_FALSE(ParseRunSort("name,").ok());
  EXPECT_FALSE(tracker_->ListRuns(Query("", "", -1)).ok());
}

// Every field the help names filters and sorts (they come from one table),
// and each reads the run's own value.
TEST_F(TrackTest, EveryListedFieldFiltersAndSortsOnItsOwnValue) {
  NewRun spec = Spec("train", "a", "", {{"lr", "0.01"}});
  spec.dataset_version = "cars@2";
  spec.tags = {{"team", "x"}};
  spec.env = CaptureEnvironment("abc", "1.0", "cpu", "2.1", 3);
  RunInfo a = Create(spec);
  ASSERT_TRUE(tracker_->LogMetrics(a.id, {{"map50", 0, 0.5, 0}}).ok());
  ASSERT_TRUE(tracker_->SetStatus(a.id, RunStatus::kFinished).ok());
  RunInfo b = Create(Spec("eval", "b", "a"));
  std::string names = RunFieldNames();
  for (size_t p; (p = names.find(" or ")) != std::string::npos;) names.replace(p, 4, ", ");
  std::vector<std::string> fields;
  for (size_t start = 0; start <= names.size();) {
    size_t comma = std::min(names.find(", ", start), names.size());
    fields.push_back(names.substr(start, comma - start));
    start = comma + 2;
  }
  ASSERT_GE(fields.size(), 12u) << RunFieldNames();
  for (std::string f : fields) {
    if (f.ends_with(".KEY")) f.replace(f.size() - 3, 3, f == "env.KEY" ? "host" : "zz");
    EXPECT_TRUE(ParseRunFilter(f + (f == "status" ? " != 'failed'" : " != 7")).ok()) << f;
    EXPECT_EQ(ParseRunSort(f + " desc").ok(), f != "id") << f;
  }
  // Each field reads its own value (a table row wired to the wrong member fails here).
  const std::pair<std::string, std::string> expect_a[] = {
      {"metrics.map50 = 0.5", "a"},
      {"params.lr = 0.01", "a"},
      {"tags.team = 'x'", "a"},
      {"env.git_commit = 'abc'", "a"},
      {"env.detops_version = '1.0'", "a"},
      {"env.torch_version = '2.1'", "a"},
      {"env.device = 'cpu'", "a"},
      {"env.threads = 3", "a"},
      {"env.cpus >= 1", "a"},
      {"name = 'a'", "a"},
      {"kind = 'train'", "a"},
      {"status = 'finished'", "a"},
      {"dataset = 'cars@2'", "a"},
      {"dataset_version = 'cars@2'", "a"},
      {"ended_at > '2000'", "a"},
      {"parent = ''", ""},
      {"METRIC.map50 > 0.4", "a"},
      {"id = '' or name = 'a'", "a"},
  };
  for (const auto& [filter, who] : expect_a) {
    std::vector<std::string> want;
    if (!who.empty()) want.push_back(who);
    EXPECT_EQ(Names(Query(filter)), want) << filter;
  }
  EXPECT_EQ(Names(Query("parent = '" + a.id + "'")), (std::vector<std::string>{"b"}));
  EXPECT_EQ(Names(Query("env.host = '" + a.env.host + "'")), (std::vector<std::string>{"a"}));
  EXPECT_EQ(Names(Query("env.os = '" + a.env.os + "'")), (std::vector<std::string>{"a"}));
  EXPECT_EQ(Names(Query("id = '" + b.id + "'")), (std::vector<std::string>{"b"}));
  EXPECT_EQ(Names(Query("", "created_at desc")), (std::vector<std::string>{"b", "a"}));
  // The sort names the field canonically; ids are random and do not sort.
  auto keys = ParseRunSort("dataset_version desc, Metrics.map50");
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  EXPECT_EQ((*keys)[0].field, "dataset");
  EXPECT_TRUE((*keys)[0].descending);
  EXPECT_EQ((*keys)[1].field, "metrics.map50");
  auto by_id = ParseRunSort("name, id");
  ASSERT_FALSE(by_id.ok());
  EXPECT_NE(by_id.status().message().find("position 7: runs do not sort by 'id'"),
            std::string::npos)
      << by_id.status().message();
  // Numeric env fields take numbers, as metrics do.
  auto text_threads = ParseRunFilter("env.threads = '3'");
  ASSERT_FALSE(text_threads.ok());
  EXPECT_NE(text_threads.status().message().find("'env.threads' is a number"), std::string::npos);
  // A reversed operator is two tokens; the error says which operators exist.
  auto reversed = ParseRunFilter("metrics.map50 =< 1");
  ASSERT_FALSE(reversed.ok());
  EXPECT_NE(reversed.status().message().find(
                "position 16: expected a value after '=', found '<' (the operators are"),
            std::string::npos)
      << reversed.status().message();
  auto env = ParseRunFilter("env.gpu = 'x'");
  ASSERT_FALSE(env.ok());
  EXPECT_NE(env.status().message().find("(env has git_commit, host,"), std::string::npos)
      << env.status().message();
}

TEST_F(TrackTest, CompareMarksDifferences) {
  RunInfo a = Trained("a", "n", 0.6);
  RunInfo b = Trained("b", "s", 0.6);
  ASSERT_TRUE(tracker_->LogParams(b.id, {{"lr", "0.1"}}).ok());
  ASSERT_TRUE(tracker_->LogMetrics(b.id, {{"loss", 0, 1.5, 0}}).ok());
  RunComparison c = CompareRuns({*tracker_->GetRun(a.id), *tracker_->GetRun(b.id)});
  ASSERT_EQ(c.ids.size(), 2u);
  ASSERT_EQ(c.params.size(), 3u);  // epochs, lr, model
  EXPECT_EQ(c.params[0].key, "epochs");
  EXPECT_FALSE(c.params[0].differs);
  EXPECT_EQ(c.params[1].key, "lr");
  EXPECT_TRUE(c.params[1].differs);
  EXPECT_FALSE(c.params[1].values[0].has_value());
  EXPECT_EQ(*c.params[1].values[1], "0.1");
  EXPECT_TRUE(c.params[2].differs);
  ASSERT_EQ(c.metrics.size(), 2u);  // loss, map50
  EXPECT_TRUE(c.metrics[0].differs);
  EXPECT_FALSE(c.metrics[1].differs);
  EXPECT_EQ(c.DifferingKeys(),
            (std::vector<std::string>{"params.lr", "params.model", "metrics.loss"}));
  Json j = ComparisonToJson(c);
  EXPECT_EQ(j["params"][1]["values"][0], nullptr);
  EXPECT_EQ(j["differing"].size(), 3u);
}

}  // namespace
}  // namespace detops
