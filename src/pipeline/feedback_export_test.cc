// Feedback export: a synthetic dataset, a registered model (any file as
// weights: nothing is trained or run), logged predictions with kept images,
// feedback on them, and the dataset versions the export makes.

#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>

#include "monitor/monitor.h"
#include "pipeline/pipeline.h"
#include "testing/testutil.h"

namespace detops {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

constexpr int kW = 80, kH = 60;  // the kept images

std::string Encode(int index, const std::string& ext) {
  SynthScene scene = RenderScene(SceneKind::kCar, 99, index, Lighting::kNormal, kW, kH);
  std::vector<uchar> buf;
  EXPECT_TRUE(cv::imencode(ext, scene.image, buf));
  return std::string(buf.begin(), buf.end());
}

const ImageEntry* Find(const Manifest& m, const std::string& name) {
  for (const ImageEntry& e : m.images) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

class FeedbackExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ws = Workspace::Open({dir_ / "ws"});
    ASSERT_TRUE(ws.ok()) << ws.status().ToString();
    ws_ = std::move(*ws);

    SynthOptions synth;
    synth.n = 10;
    synth.seed = 7;
    synth.width = 64;
    synth.height = 48;
    synth.val_fraction = 0.3;
    synth.test_fraction = 0.2;
    synth.threads = 1;
    ASSERT_TRUE(WriteSynthDataset(synth, dir_ / "synth").ok());
    ImportOptions io;
    io.name = "cars";
    io.source = dir_ / "synth";
    auto imported = ImportDataset(*ws_, io);
    ASSERT_TRUE(imported.ok()) << imported.status().ToString();
    parent_ = imported->version;

    testing::WriteText(dir_ / "w.pt", "weights");
    auto reg = Registry::Open(*ws_);
    ASSERT_TRUE(reg.ok());
    NewModelVersion nv;
    nv.name = "cars";
    nv.run_id = "0123456789ab";
    nv.weights = dir_ / "w.pt";
    nv.profile_json = "{}";
    // "rust" is a class of the model but not of the dataset.
    nv.spec = {"detops-anchor-free", "n", 64, {"scratch", "dent", "rust"}};
    nv.dataset_version = "cars@1";
    nv.dataset_validation = "passed";
    nv.created_by = "test";
    auto v = (*reg)->Register(nv);
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    classes_ = v->spec.classes;
  }

  // Logs a prediction of cars@1 keeping `image` ("" = not kept).
  std::string Predict(const std::string& image) {
    auto log = PredictionLog::Open(*ws_);
    EXPECT_TRUE(log.ok());
    PredictionRecord r;
    r.id = NewPredictionId();
    r.model_name = "cars";
    r.model_version = 1;
    r.width = kW;
    r.height = kH;
    r.image_bytes = image;
    EXPECT_TRUE((*log)->Append(r));
    EXPECT_TRUE((*log)->Flush().ok());
    return r.id;
  }

  void Feedback(const std::string& id, std::vector<FeedbackBox> boxes) {
    auto f = RecordFeedback(*ws_, id, std::move(boxes), classes_, "test");
    ASSERT_TRUE(f.ok()) << f.status().ToString();
  }

  Result<FeedbackExportResult> Export(const std::string& split = "train") {
    FeedbackExportOptions o;
    o.model = "cars";
    o.split = split;
    return RunFeedbackExportJob(*ws_, o);
  }

  Manifest Load(const VersionInfo& v) {
    auto m = LoadManifest(*ws_, v);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.ok() ? *m : Manifest();
  }

  int Versions() {
    auto all = ListVersions(*ws_, "cars");
    return all.ok() ? static_cast<int>(all->size()) : -1;
  }

  TempDir dir_;
  std::unique_ptr<Workspace> ws_;
  VersionInfo parent_;
  std::vector<std::string> classes_;
};

TEST_F(FeedbackExportTest, AddsFeedbackImagesToANewVersion) {
  const std::string jpeg = Encode(0, ".jpg"), png = Encode(1, ".png");
  const std::string p1 = Predict(jpeg), p2 = Predict(png), p3 = Predict("");
  Feedback(p1, {{"dent", 8, 6, 40, 30}, {"scratch", 0, 0, 80, 12}});
  Feedback(p2, {});  // no damage: a background image
  Feedback(p3, {{"scratch", 1, 1, 5, 5}});

  auto r = Export();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->created);
  EXPECT_EQ(r->version.Ref(), "cars@2");
  EXPECT_EQ(r->version.parent_version, 1);
  EXPECT_EQ(r->images_added, 2);
  EXPECT_EQ(r->boxes, 2);
  EXPECT_EQ(r->skipped_no_image, 1);

  // Every parent image, unchanged and in its split, plus the two new ones.
  Manifest before = Load(parent_), after = Load(r->version);
  EXPECT_EQ(after.classes, before.classes);
  ASSERT_EQ(after.images.size(), before.images.size() + 2);
  int splits_seen[3] = {0, 0, 0};
  for (const ImageEntry& e : before.images) {
    const ImageEntry* a = Find(after, e.name);
    ASSERT_NE(a, nullptr) << e.name;
    EXPECT_EQ(*a, e) << e.name;
    ++splits_seen[static_cast<int>(e.split)];
  }
  EXPECT_GT(splits_seen[static_cast<int>(Split::kVal)], 0);  // the check covers moved splits

  const ImageEntry* j = Find(after, "feedback-" + p1 + ".jpg");
  ASSERT_NE(j, nullptr);
  EXPECT_EQ(j->split, Split::kTrain);
  EXPECT_EQ(j->blob, Sha256Hex(jpeg));
  EXPECT_EQ(j->width, kW);
  EXPECT_EQ(j->height, kH);
  EXPECT_TRUE(j->labelled);
  ASSERT_EQ(j->boxes.size(), 2u);
  // Canonical order sorts boxes; find them by class.
  for (const Box& b : j->boxes) {
    if (b.class_id == 1) {  // dent
      EXPECT_NEAR(b.x1, 0.1, 1e-6);
      EXPECT_NEAR(b.y1, 0.1, 1e-6);
      EXPECT_NEAR(b.x2, 0.5, 1e-6);
      EXPECT_NEAR(b.y2, 0.5, 1e-6);
    } else {
      EXPECT_EQ(b.class_id, 0);  // scratch
      EXPECT_NEAR(b.x1, 0, 1e-6);
      EXPECT_NEAR(b.x2, 1, 1e-6);
      EXPECT_NEAR(b.y2, 0.2, 1e-6);
    }
  }
  const ImageEntry* p = Find(after, "feedback-" + p2 + ".png");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->blob, Sha256Hex(png));
  EXPECT_TRUE(p->labelled);
  EXPECT_TRUE(p->boxes.empty());

  // The feedback is marked; the one without an image is not.
  auto left = ListFeedback(*ws_, "cars", true);
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ((*left)[0].prediction_id, p3);
  auto all = ListFeedback(*ws_, "cars", false);
  for (const FeedbackRecord& f : *all) {
    EXPECT_EQ(f.exported_to, f.prediction_id == p3 ? "" : "cars@2") << f.prediction_id;
  }
  EXPECT_FALSE(fs::exists(ws_->root() / "tmp" / "feedback-cars"));

  // Nothing new: no version.
  auto again = Export();
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->images_added, 0);
  EXPECT_EQ(again->skipped_no_image, 1);
  EXPECT_EQ(Versions(), 2);
}

TEST_F(FeedbackExportTest, NewerFeedbackReplacesTheExportedImage) {
  const std::string jpeg = Encode(2, ".jpg");
  const std::string p1 = Predict(jpeg);
  Feedback(p1, {{"dent", 8, 6, 40, 30}});
  auto first = Export();
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_TRUE(first->created);

  Feedback(p1, {{"scratch", 40, 30, 80, 60}});
  auto second = Export("val");
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  ASSERT_TRUE(second->created);
  EXPECT_EQ(second->version.Ref(), "cars@3");
  EXPECT_EQ(second->version.parent_version, 2);
  Manifest m2 = Load(first->version), m3 = Load(second->version);
  EXPECT_EQ(m3.images.size(), m2.images.size());
  int copies = 0;
  for (const ImageEntry& e : m3.images) copies += e.name == "feedback-" + p1 + ".jpg";
  EXPECT_EQ(copies, 1);
  const ImageEntry* e = Find(m3, "feedback-" + p1 + ".jpg");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->split, Split::kVal);
  ASSERT_EQ(e->boxes.size(), 1u);
  EXPECT_EQ(e->boxes[0].class_id, 0);
  EXPECT_NEAR(e->boxes[0].x1, 0.5, 1e-6);
  EXPECT_NEAR(e->boxes[0].y2, 1.0, 1e-6);
}

TEST_F(FeedbackExportTest, GoesToTheDatasetOfTheProductionVersion) {
  ImportOptions io;
  io.name = "cars-b";
  io.source = dir_ / "synth";
  ASSERT_TRUE(ImportDataset(*ws_, io).ok());
  auto reg = Registry::Open(*ws_);
  ASSERT_TRUE(reg.ok());
  auto v1 = (*reg)->Get("cars@1");
  ASSERT_TRUE(v1.ok());
  NewModelVersion nv;
  nv.name = "cars";
  nv.weights = dir_ / "w.pt";
  nv.spec = v1->spec;
  nv.dataset_version = "cars-b@1";
  ASSERT_TRUE((*reg)->Register(nv).ok());
  const std::string p1 = Predict(Encode(4, ".jpg"));

  // No production version: the latest model version's dataset.
  Feedback(p1, {{"dent", 8, 6, 40, 30}});
  auto latest = Export();
  ASSERT_TRUE(latest.ok()) << latest.status().ToString();
  EXPECT_EQ(latest->version.Ref(), "cars-b@2");

  // Production is cars@1, trained on cars.
  AliasChange c;
  c.name = "cars";
  c.alias = kProduction;
  c.to_version = 1;
  c.actor = "test";
  ASSERT_TRUE((*reg)->SetAlias(c).ok());
  Feedback(p1, {{"dent", 8, 6, 40, 31}});
  auto production = Export();
  ASSERT_TRUE(production.ok()) << production.status().ToString();
  EXPECT_EQ(production->version.Ref(), "cars@2");

  // --dataset overrides both.
  Feedback(p1, {{"dent", 8, 6, 40, 32}});
  FeedbackExportOptions o;
  o.model = "cars";
  o.dataset = "cars-b";
  auto given = RunFeedbackExportJob(*ws_, o);
  ASSERT_TRUE(given.ok()) << given.status().ToString();
  EXPECT_EQ(given->version.Ref(), "cars-b@3");
}

TEST_F(FeedbackExportTest, Errors) {
  const std::string p1 = Predict(Encode(3, ".jpg"));
  Feedback(p1, {{"rust", 8, 6, 40, 30}});
  auto r = Export();
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(r.status().message().find("'rust'"), std::string::npos) << r.status().ToString();
  EXPECT_NE(r.status().message().find(p1), std::string::npos) << r.status().ToString();
  EXPECT_EQ(Versions(), 1);
  EXPECT_EQ(ListFeedback(*ws_, "cars", true)->size(), 1u);  // still to export

  EXPECT_EQ(Export("holdout").status().code(), StatusCode::kInvalidInput);
  FeedbackExportOptions o;
  o.model = "trucks";
  EXPECT_EQ(RunFeedbackExportJob(*ws_, o).status().code(), StatusCode::kNotFound);
  o.model = "cars";
  o.dataset = "cars@1";
  EXPECT_EQ(RunFeedbackExportJob(*ws_, o).status().code(), StatusCode::kInvalidInput);
  o.dataset = "roads";
  EXPECT_EQ(RunFeedbackExportJob(*ws_, o).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace detops
