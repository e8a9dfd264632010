// The prediction log (round trips, kept images, drops when the store falls
// behind, retries after failed writes) and feedback (validation, supersede,
// export marks).

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <future>
#include <limits>
#include <set>
#include <thread>

#include "monitor/monitor.h"
#include "testing/testutil.h"

namespace detops {
namespace {

using testing::TempDir;

PredictionRecord Record(const std::string& model, int64_t time_ms, int width = 640,
                        int height = 480) {
  PredictionRecord r;
  r.id = NewPredictionId();
  r.time_ms = time_ms;
  r.model_name = model;
  r.model_version = 2;
  r.width = width;
  r.height = height;
  r.profile = {101.5, 40.25, 812.0, 90, 100, 110};
  r.embedding = {0.123456f, -1.5f, 0.0f, 2.99999f};
  r.detections = {{"dent", 1, 0.875, 10.5, 20, 110.25, 95}, {"scratch", 0, 0.5, 0, 0, 64, 48}};
  r.queue_ms = 1.5;
  r.inference_ms = 12.25;
  r.total_ms = 14;
  return r;
}

// Polls `done` for up to 10 s.
template <typename F>
bool WaitFor(F done) {
  for (int i = 0; i < 2000 && !done(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return done();
}

class MonitorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ws = Workspace::Open({dir_ / "ws"});
    ASSERT_TRUE(ws.ok()) << ws.status().ToString();
    ws_ = std::move(*ws);
  }

  std::unique_ptr<PredictionLog> OpenLog(PredictionLogOptions options = {}) {
    auto log = PredictionLog::Open(*ws_, options);
    EXPECT_TRUE(log.ok()) << log.status().ToString();
    return log.ok() ? std::move(*log) : nullptr;
  }

  // Logs one prediction (written before returning) and returns its id.
  std::string Logged(int width = 640, int height = 480, std::string image = "") {
    auto log = OpenLog();
    PredictionRecord r = Record("cars", 1000, width, height);
    r.image_bytes = std::move(image);
    EXPECT_TRUE(log->Append(r));
    EXPECT_TRUE(log->Flush().ok());
    return r.id;
  }

  size_t Stored() {
    auto all = ListPredictions(*ws_, "", 0);
    EXPECT_TRUE(all.ok()) << all.status().ToString();
    return all.ok() ? all->size() : 0;
  }

  TempDir dir_;
  std::unique_ptr<Workspace> ws_;
  const std::vector<std::string> classes_ = {"scratch", "dent"};
};

TEST_F(MonitorTest, PredictionIdsAreSixteenHexCharacters) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    std::string id = NewPredictionId();
    ASSERT_EQ(id.size(), 16u);
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 100u);
}

TEST_F(MonitorTest, RecordsRoundTrip) {
  auto log = OpenLog();
  PredictionRecord a = Record("cars", 1700000000123);
  PredictionRecord b = Record("cars", 1700000001000);
  PredictionRecord c = Record("roads", 1700000002000);
  c.detections.clear();
  c.embedding.push_back(std::numeric_limits<float>::quiet_NaN());
  for (const auto& r : {a, b, c}) EXPECT_TRUE(log->Append(r));
  PredictionRecord d;  // id and time filled in
  d.model_name = "cars";
  EXPECT_TRUE(log->Append(d));
  ASSERT_TRUE(log->Flush().ok());
  EXPECT_EQ(log->written(), 4);
  EXPECT_EQ(log->dropped(), 0);
  EXPECT_EQ(log->buffered(), 0u);

  auto got = GetPrediction(*ws_, a.id);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  const PredictionRecord& r = got->record;
  EXPECT_EQ(r.id, a.id);
  EXPECT_EQ(got->at, "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(r.time_ms, a.time_ms);
  EXPECT_EQ(r.model_name, "cars");
  EXPECT_EQ(r.model_version, 2);
  EXPECT_EQ(r.width, 640);
  EXPECT_EQ(r.height, 480);
  EXPECT_DOUBLE_EQ(r.profile.brightness, 101.5);
  EXPECT_DOUBLE_EQ(r.profile.contrast, 40.25);
  EXPECT_DOUBLE_EQ(r.profile.sharpness, 812);
  EXPECT_DOUBLE_EQ(r.profile.mean_r, 110);
  // The embedding is kept to 4 decimals.
  ASSERT_EQ(r.embedding.size(), 4u);
  EXPECT_FLOAT_EQ(r.embedding[0], 0.1235f);
  EXPECT_FLOAT_EQ(r.embedding[1], -1.5f);
  EXPECT_FLOAT_EQ(r.embedding[3], 3.0f);
  ASSERT_EQ(r.detections.size(), 2u);
  EXPECT_EQ(r.detections[0].class_name, "dent");
  EXPECT_EQ(r.detections[0].class_id, 1);
  EXPECT_DOUBLE_EQ(r.detections[0].score, 0.875);
  EXPECT_DOUBLE_EQ(r.detections[0].x1, 10.5);
  EXPECT_DOUBLE_EQ(r.detections[0].x2, 110.25);
  EXPECT_DOUBLE_EQ(r.detections[0].y2, 95);
  EXPECT_DOUBLE_EQ(r.queue_ms, 1.5);
  EXPECT_DOUBLE_EQ(r.inference_ms, 12.25);
  EXPECT_DOUBLE_EQ(r.total_ms, 14);
  EXPECT_EQ(got->image_blob, "");
  EXPECT_EQ(r.image_bytes, "");

  auto nan = GetPrediction(*ws_, c.id);
  ASSERT_TRUE(nan.ok()) << nan.status().ToString();
  ASSERT_EQ(nan->record.embedding.size(), 5u);
  EXPECT_TRUE(std::isnan(nan->record.embedding[4]));
  EXPECT_TRUE(nan->record.detections.empty());

  // Newest first; by model; limited.
  auto all = ListPredictions(*ws_, "", 0);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 4u);
  EXPECT_EQ((*all)[0].record.model_name, "cars");  // d: now
  EXPECT_EQ((*all)[1].record.id, c.id);
  EXPECT_EQ((*all)[3].record.id, a.id);
  auto cars = ListPredictions(*ws_, "cars", 2);
  ASSERT_TRUE(cars.ok());
  ASSERT_EQ(cars->size(), 2u);
  EXPECT_EQ((*cars)[1].record.id, b.id);
  auto none = ListPredictions(*ws_, "trucks", 0);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  EXPECT_EQ(GetPrediction(*ws_, "0000000000000000").status().code(), StatusCode::kNotFound);

  Json j = PredictionToJson(*got);
  EXPECT_EQ(j["id"], a.id);
  EXPECT_EQ(j["detections"][0]["class"], "dent");
  EXPECT_EQ(j["latency_ms"]["total"], 14.0);
  EXPECT_EQ(j["embedding"][0], 0.1235);
}

TEST_F(MonitorTest, ManyRecordsFromSeveralThreadsSpanSeveralStatements) {
  auto log = OpenLog({.buffer_max = 10000, .flush_interval_ms = 50, .flush_records = 150});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) EXPECT_TRUE(log->Append(Record("cars", 1000 + t * 1000 + i)));
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(log->Flush().ok());
  EXPECT_EQ(log->written(), 400);
  EXPECT_EQ(Stored(), 400u);
}

TEST_F(MonitorTest, KeptImageComesBackFromItsBlob) {
  const std::string image("\xFF\xD8\xFF\xE0 not really a jpeg \xFF\xD9", 24);
  std::string id = Logged(640, 480, image);
  auto got = GetPrediction(*ws_, id);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_FALSE(got->image_blob.empty());
  EXPECT_EQ(got->image_blob, Sha256Hex(image));
  auto bytes = ws_->blobs().Get(got->image_blob);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  EXPECT_EQ(*bytes, image);
  EXPECT_TRUE(got->record.image_bytes.empty());
  // Garbage collection keeps it: a prediction references it.
  auto removed = ws_->CollectGarbage();
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_TRUE(ws_->blobs().Has(got->image_blob));
}

TEST_F(MonitorTest, DropsAreCountedWhenTheStoreFallsBehind) {
  // A second connection to the same workspace holds the write lock, so the
  // writer blocks in BEGIN IMMEDIATE (within the busy timeout) while the
  // buffer fills up behind it.
  auto other = Workspace::Open({dir_ / "ws"});
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  std::promise<void> held, release;
  std::shared_future<void> released = release.get_future().share();
  std::thread holder([&] {
    Status s = (*other)->db().InTransaction([&]() -> Status {
      held.set_value();
      released.wait();
      return Status::Ok();
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
  });
  held.get_future().wait();

  auto log = OpenLog({.buffer_max = 4, .flush_interval_ms = 10, .flush_records = 1});
  std::vector<std::string> accepted;
  PredictionRecord first = Record("cars", 1000);
  ASSERT_TRUE(log->Append(first));
  accepted.push_back(first.id);
  // The writer has taken it and waits for the lock.
  ASSERT_TRUE(WaitFor([&] { return log->buffered() == 0; }));
  for (int i = 0; i < 4; ++i) {
    PredictionRecord r = Record("cars", 2000 + i);
    EXPECT_TRUE(log->Append(r)) << i;
    accepted.push_back(r.id);
  }
  EXPECT_FALSE(log->Append(Record("cars", 3000)));
  EXPECT_FALSE(log->Append(Record("cars", 3001)));
  EXPECT_EQ(log->dropped(), 2);
  EXPECT_EQ(log->buffered(), 4u);
  EXPECT_EQ(log->written(), 0);

  release.set_value();
  holder.join();
  ASSERT_TRUE(log->Flush().ok());
  EXPECT_EQ(log->written(), 5);
  EXPECT_EQ(log->dropped(), 2);
  EXPECT_EQ(log->failed_writes(), 0);
  auto all = ListPredictions(*ws_, "", 0);
  ASSERT_TRUE(all.ok());
  std::set<std::string> stored;
  for (const auto& p : *all) stored.insert(p.record.id);
  EXPECT_EQ(stored, std::set<std::string>(accepted.begin(), accepted.end()));
}

TEST_F(MonitorTest, FailedWritesAreKeptForRetryWithinTheBuffer) {
  // No timer-driven retries during the test: only Flush wakes the writer.
  auto log = OpenLog({.buffer_max = 3, .flush_interval_ms = 600000, .flush_records = 1000});
  ASSERT_TRUE(ws_->db().Exec("ALTER TABLE predictions RENAME TO predictions_away").ok());
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(log->Append(Record("cars", 1000 + i)));
  Status s = log->Flush();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("predictions"), std::string::npos) << s.ToString();
  EXPECT_EQ(log->failed_writes(), 1);
  // The failed batch is back in the buffer, which is full.
  EXPECT_EQ(log->buffered(), 3u);
  EXPECT_FALSE(log->Append(Record("cars", 2000)));
  EXPECT_EQ(log->dropped(), 1);
  EXPECT_EQ(log->written(), 0);

  ASSERT_TRUE(ws_->db().Exec("ALTER TABLE predictions_away RENAME TO predictions").ok());
  s = log->Flush();
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(log->written(), 3);
  EXPECT_EQ(log->buffered(), 0u);
  EXPECT_EQ(Stored(), 3u);
}

TEST_F(MonitorTest, DestructorFlushes) {
  {
    auto log = OpenLog({.buffer_max = 100, .flush_interval_ms = 600000, .flush_records = 1000});
    EXPECT_TRUE(log->Append(Record("cars", 1)));
    EXPECT_TRUE(log->Append(Record("cars", 2)));
  }
  EXPECT_EQ(Stored(), 2u);
}

TEST_F(MonitorTest, OpenRejectsBadOptions) {
  EXPECT_EQ(PredictionLog::Open(*ws_, {.buffer_max = 0}).status().code(),
            StatusCode::kInvalidInput);
  EXPECT_EQ(PredictionLog::Open(*ws_, {.flush_interval_ms = 0}).status().code(),
            StatusCode::kInvalidInput);
}

// ---- feedback ----

TEST_F(MonitorTest, FeedbackRejectsBadInput) {
  std::string id = Logged(640, 480);
  const FeedbackBox good{"dent", 10, 10, 50, 50};
  auto unknown = RecordFeedback(*ws_, "ffffffffffffffff", {good}, classes_, "t");
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  EXPECT_NE(unknown.status().message().find("ffffffffffffffff"), std::string::npos);

  struct Case {
    FeedbackBox bad;
    std::string reason;
  };
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (const Case& c : std::vector<Case>{
           {{"dent", 50, 10, 10, 50}, "inverted"},
           {{"dent", 10, 50, 50, 50}, "inverted"},
           {{"dent", 10, 10, 650, 50}, "outside the 640x480 image"},
           {{"dent", -5, 10, 50, 50}, "outside the 640x480 image"},
           {{"dent", 10, 10, 50, 482}, "outside the 640x480 image"},
           {{"dent", nan, 10, 50, 50}, "not a finite number"},
           {{"dent", 10, 10, inf, 50}, "not a finite number"},
           {{"rust", 10, 10, 50, 50}, "unknown class 'rust'"},
           {{"", 10, 10, 50, 50}, "unknown class ''"},
       }) {
    auto r = RecordFeedback(*ws_, id, {good, c.bad}, classes_, "t");
    ASSERT_FALSE(r.ok()) << c.reason;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidInput) << c.reason;
    EXPECT_NE(r.status().message().find("boxes[1]"), std::string::npos) << r.status().ToString();
    EXPECT_NE(r.status().message().find(c.reason), std::string::npos) << r.status().ToString();
  }
  auto list = ListFeedback(*ws_, "cars", false);
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
}

TEST_F(MonitorTest, FeedbackWithinOnePixelIsClamped) {
  std::string id = Logged(640, 480);
  auto r = RecordFeedback(*ws_, id, {{"scratch", -0.5, -1, 640.75, 481}}, classes_, "alice");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->boxes.size(), 1u);
  EXPECT_EQ(r->boxes[0].x1, 0);
  EXPECT_EQ(r->boxes[0].y1, 0);
  EXPECT_EQ(r->boxes[0].x2, 640);
  EXPECT_EQ(r->boxes[0].y2, 480);
  EXPECT_EQ(r->actor, "alice");
  EXPECT_GT(r->id, 0);
  // A sliver wholly in the tolerance band is empty once clamped.
  auto sliver = RecordFeedback(*ws_, id, {{"scratch", 640.2, 10, 640.9, 20}}, classes_, "a");
  EXPECT_EQ(sliver.status().code(), StatusCode::kInvalidInput);
  // No boxes: the image shows no damage.
  auto empty = RecordFeedback(*ws_, id, {}, classes_, "alice");
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_TRUE(empty->boxes.empty());
}

TEST_F(MonitorTest, LaterFeedbackSupersedesAndExportMarks) {
  std::string p1 = Logged(), p2 = Logged(), p3 = Logged();
  auto f1 = RecordFeedback(*ws_, p1, {{"dent", 1, 2, 3, 4}}, classes_, "a");
  auto f2 = RecordFeedback(*ws_, p2, {{"scratch", 5, 6, 7, 8}}, classes_, "b");
  auto f1b =
      RecordFeedback(*ws_, p1, {{"scratch", 10, 20, 30, 40}, {"dent", 1, 1, 2, 2}}, classes_, "c");
  ASSERT_TRUE(f1.ok() && f2.ok() && f1b.ok());
  EXPECT_GT(f1b->id, f2->id);

  auto list = ListFeedback(*ws_, "cars", false);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 2u);  // p1's first feedback is superseded
  EXPECT_EQ((*list)[0].id, f2->id);
  EXPECT_EQ((*list)[1].id, f1b->id);
  EXPECT_EQ((*list)[1].prediction_id, p1);
  EXPECT_EQ((*list)[1].actor, "c");
  ASSERT_EQ((*list)[1].boxes.size(), 2u);
  EXPECT_EQ((*list)[1].boxes[0].class_name, "scratch");
  EXPECT_DOUBLE_EQ((*list)[1].boxes[0].y2, 40);
  EXPECT_EQ((*list)[1].exported_to, "");
  EXPECT_TRUE(ListFeedback(*ws_, "roads", false)->empty());
  EXPECT_EQ(ListFeedback(*ws_, "", false)->size(), 2u);

  ASSERT_TRUE(MarkFeedbackExported(*ws_, {f2->id, 999}, "cars@4").ok());
  auto unexported = ListFeedback(*ws_, "cars", true);
  ASSERT_TRUE(unexported.ok());
  ASSERT_EQ(unexported->size(), 1u);
  EXPECT_EQ((*unexported)[0].id, f1b->id);
  auto again = ListFeedback(*ws_, "cars", false);
  EXPECT_EQ((*again)[0].exported_to, "cars@4");

  // New feedback on an exported prediction is unexported again.
  auto f2b = RecordFeedback(*ws_, p2, {}, classes_, "b");
  ASSERT_TRUE(f2b.ok());
  unexported = ListFeedback(*ws_, "cars", true);
  ASSERT_EQ(unexported->size(), 2u);
  EXPECT_EQ((*unexported)[1].id, f2b->id);
  (void)p3;

  Json j = FeedbackToJson((*again)[0]);
  EXPECT_EQ(j["exported_to"], "cars@4");
  EXPECT_EQ(j["boxes"][0]["class"], "scratch");
}

TEST_F(MonitorTest, FeedbackBoxesJson) {
  auto boxes = FeedbackBoxesFromJson(
      Json::parse(R"([{"class": "dent", "x1": 1, "y1": 2.5, "x2": 3, "y2": 4}])"));
  ASSERT_TRUE(boxes.ok()) << boxes.status().ToString();
  ASSERT_EQ(boxes->size(), 1u);
  EXPECT_EQ((*boxes)[0].class_name, "dent");
  EXPECT_DOUBLE_EQ((*boxes)[0].y1, 2.5);
  EXPECT_EQ(FeedbackBoxesToJson(*boxes)[0]["y1"], 2.5);
  for (const char* bad : {R"({"class": "dent"})", R"([1])", R"([{"x1": 1, "y1": 2, "x2": 3}])",
                          R"([{"class": "dent", "x1": "1", "y1": 2, "x2": 3, "y2": 4}])"}) {
    auto r = FeedbackBoxesFromJson(Json::parse(bad));
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidInput) << bad;
  }
  auto r = FeedbackBoxesFromJson(Json::parse(R"([{"class": "a", "x1": 1, "y1": 2, "x2": 3,
      "y2": 4}, {"class": "b", "x1": 1, "y1": 2, "x2": 3}])"));
  EXPECT_NE(r.status().message().find("boxes[1]: 'y2'"), std::string::npos)
      << r.status().ToString();
}

}  // namespace
}  // namespace detops
