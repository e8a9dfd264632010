// Train and eval jobs settle their runs: a failure at any stage after the
// run exists leaves it `failed` with the reason (tag failure_reason), a stop
// leaves it `killed`, never `running`. A tiny model on a tiny synthetic set.

#include <gtest/gtest.h>

#include "pipeline/pipeline.h"
#include "pipeline/train_options.h"
#include "testing/testutil.h"

namespace detops {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

class ThreadsEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { SetProcessThreads(2); }
};
const auto* const kThreads = ::testing::AddGlobalTestEnvironment(new ThreadsEnvironment);

class TrainJobTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ws = Workspace::Open({dir_ / "ws"});
    ASSERT_TRUE(ws.ok()) << ws.status().ToString();
    ws_ = std::move(*ws);
    SynthOptions synth;
    synth.kind = SceneKind::kRoad;
    synth.n = 12;
    synth.seed = 4;
    synth.width = 96;
    synth.height = 72;
    synth.val_fraction = 0.25;
    synth.test_fraction = 0.25;
    synth.threads = 1;
    ASSERT_TRUE(WriteSynthDataset(synth, dir_ / "synth").ok());
    ImportOptions io;
    io.name = "road";
    io.source = dir_ / "synth";
    ASSERT_TRUE(ImportDataset(*ws_, io).ok());
  }

  TrainJobOptions Tiny(const std::string& name) {
    TrainJobOptions o;
    o.dataset = "road";
    o.name = name;
    o.force = true;  // a dozen small scenes may trip the leakage check
    o.train.imgsz = 64;
    o.train.batch = 2;
    o.train.epochs = 2;
    o.train.loader_threads = 1;
    o.train.close_mosaic = 0;
    return o;
  }

  RunInfo Run(const std::string& ref) {
    auto tracker = Tracker::Open(*ws_);
    EXPECT_TRUE(tracker.ok());
    auto run = (*tracker)->GetRun(ref);
    EXPECT_TRUE(run.ok()) << run.status().ToString();
    return run.ok() ? *run : RunInfo{};
  }

  // The run is failed and its reason is the job's error, which names `what`.
  void ExpectFailedWith(const std::string& ref, const Status& error, const std::string& what) {
    RunInfo run = Run(ref);
    EXPECT_EQ(run.status, RunStatus::kFailed) << ref << ": " << RunStatusName(run.status);
    EXPECT_FALSE(run.ended_at.empty());
    ASSERT_TRUE(run.tags.count("failure_reason")) << ref << " has no failure_reason";
    EXPECT_EQ(run.tags.at("failure_reason"), error.ToString());
    EXPECT_NE(error.message().find(what), std::string::npos) << error.ToString();
  }

  TempDir dir_;
  std::unique_ptr<Workspace> ws_;
};

TEST_F(TrainJobTest, CorruptInitWeightsFailTheRunWithTheReason) {
  testing::WriteText(dir_ / "junk.pt", "not a weights file");
  TrainJobOptions o = Tiny("bad-init");
  o.init_from = (dir_ / "junk.pt").string();
  auto r = RunTrainJob(*ws_, o, {});
  ASSERT_FALSE(r.ok());
  ExpectFailedWith("bad-init", r.status(), "junk.pt");
}

TEST_F(TrainJobTest, AStopKillsTheRunAndACorruptCheckpointFailsItsResume) {
  std::atomic<bool> stop{false};
  TrainCallbacks ui;
  ui.stop = &stop;
  ui.on_epoch = [&](const EpochSummary&) { stop = true; };
  auto stopped = RunTrainJob(*ws_, Tiny("stopped"), ui);
  ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
  EXPECT_FALSE(stopped->train.completed);
  EXPECT_EQ(Run("stopped").status, RunStatus::kKilled);
  EXPECT_FALSE(Run("stopped").tags.count("failure_reason"));

  const fs::path checkpoint = ws_->root() / "runs" / stopped->run.id / "checkpoint.pt";
  ASSERT_TRUE(fs::exists(checkpoint));
  testing::WriteText(checkpoint, "torn write");
  auto resumed = ResumeTrainJob(*ws_, "stopped", {"abc", "0.0"}, {}, 2);
  ASSERT_FALSE(resumed.ok());
  ExpectFailedWith("stopped", resumed.status(), "checkpoint.pt");
  EXPECT_EQ(Run("stopped").tags.at("resumed_git_commit"), "abc");
}

// Training succeeds; the best weights it wrote are then unreadable, so the
// test-split evaluation after training fails: the run must not stay running.
TEST_F(TrainJobTest, AFailureInTheTestEvaluationAfterTrainingFailsTheRun) {
  TrainCallbacks ui;
  fs::path runs = ws_->root() / "runs";
  ui.on_epoch = [&](const EpochSummary& e) {
    if (e.epoch < e.planned_epochs) return;
    for (const auto& d : fs::directory_iterator(runs)) {
      testing::WriteText(d.path() / "best.pt", "overwritten");
    }
  };
  auto r = RunTrainJob(*ws_, Tiny("bad-eval"), ui);
  ASSERT_FALSE(r.ok());
  ExpectFailedWith("bad-eval", r.status(), "best.pt");
}

TEST_F(TrainJobTest, AnEvalRunThatCannotRecordItsReportFails) {
  auto trained = RunTrainJob(*ws_, Tiny("good"), {});
  ASSERT_TRUE(trained.ok()) << trained.status().ToString();
  EXPECT_EQ(Run("good").status, RunStatus::kFinished);
  EXPECT_FALSE(Run("good").tags.count("failure_reason"));

  testing::WriteText(dir_ / "plots", "a file where the plots folder should be");
  EvalJobOptions eo;
  eo.model = "good";
  eo.dataset = "road";
  eo.plots_dir = (dir_ / "plots").string();
  auto r = RunEvalJob(*ws_, eo);
  ASSERT_FALSE(r.ok());
  auto tracker = Tracker::Open(*ws_);
  ASSERT_TRUE(tracker.ok());
  auto evals = (*tracker)->ListRuns({"kind = 'eval'", "", 0});
  ASSERT_TRUE(evals.ok()) << evals.status().ToString();
  ASSERT_EQ(evals->size(), 1u);
  ExpectFailedWith(evals->front().id, r.status(), "plots");
}

// A model of other classes starts the car classes: dent from pothole by the
// map, scratch fresh; the run records it, and the recipe keeps the map.
TEST_F(TrainJobTest, InitFromOtherClassesRecordsTheMapping) {
  TrainJobOptions src = Tiny("road-model");
  src.train.epochs = 1;
  ASSERT_TRUE(RunTrainJob(*ws_, src, {}).ok());
  SynthOptions synth;
  synth.kind = SceneKind::kCar;
  synth.n = 6;
  synth.val_fraction = 0.34;
  synth.test_fraction = 0;  // no evaluation after training
  synth.width = 96;
  synth.height = 72;
  synth.threads = 1;
  ASSERT_TRUE(WriteSynthDataset(synth, dir_ / "car").ok());
  ImportOptions io;
  io.name = "car";
  io.source = dir_ / "car";
  ASSERT_TRUE(ImportDataset(*ws_, io).ok());

  TrainJobOptions o = Tiny("car-from-road");
  o.dataset = "car";
  o.train.epochs = 1;
  o.init_from = "road-model";
  o.train.init_class_map = {{"dent", "pothole"}};
  std::vector<std::string> notes;
  TrainCallbacks ui;
  ui.on_note = [&](const std::string& line) { notes.push_back(line); };
  auto r = RunTrainJob(*ws_, o, ui);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const std::string line = "1 of 2 classes kept from road-model (dent<-pothole); 1 fresh";
  EXPECT_EQ(notes, std::vector<std::string>{"init: " + line});
  RunInfo run = Run("car-from-road");
  EXPECT_EQ(run.params.at("init.classes"), line);
  EXPECT_EQ(run.params.at("init_class_map.dent"), "pothole");
  bool recorded = false;
  for (const Artifact& a : run.artifacts) recorded |= a.name == "init_classes.json";
  EXPECT_TRUE(recorded);
  auto j = ParseJson(run.params.at("options_json"), "options");
  ASSERT_TRUE(j.ok());
  auto back = TrainOptionsFromJson(*j);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->init_class_map, o.train.init_class_map);

  o.name = "bad-map";
  o.train.init_class_map = {{"dent", "nope"}};
  auto bad = RunTrainJob(*ws_, o, {});
  ASSERT_FALSE(bad.ok());
  ExpectFailedWith("bad-map", bad.status(), "'nope'");
  EXPECT_NE(bad.status().message().find("{pothole}"), std::string::npos);
}

}  // namespace
}  // namespace detops
