// data derive: leakage fixing, re-splitting, class maps, dropping findings,
// sampling and merging, each recorded as a version with lineage.

#include "data/derive.h"

#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <set>

#include "data/profile_cache.h"
#include "data/validate_internal.h"
#include "testing/testutil.h"

namespace detops {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using testing::WriteText;

// A photo-like image: smooth random blobs, different for every seed.
cv::Mat Photo(int seed) {
  cv::Mat noise(12, 12, CV_8UC3);
  cv::RNG rng(static_cast<uint64_t>(seed) * 7919 + 1);
  rng.fill(noise, cv::RNG::UNIFORM, 30, 225);
  cv::Mat m;
  cv::resize(noise, m, {96, 96}, 0, 0, cv::INTER_CUBIC);
  return m;
}

void WriteJpeg(const fs::path& path, const cv::Mat& m) {
  fs::create_directories(path.parent_path());
  cv::imwrite(path.string(), m, {cv::IMWRITE_JPEG_QUALITY, 92});
}

// A YOLO export with three classes: 12 train, 4 val, 4 test images, one box
// each; test/t0 is a near-copy of train/p0 (a little brighter), val/v1 the
// same bytes as train/p1.
void WriteLeakyExport(const fs::path& root, const std::string& names = "[scratch, dent, rust]") {
  WriteText(root / "data.yaml",
            "train: images/train\nval: images/val\ntest: images/test\nnames: " + names + "\n");
  auto add = [&](const std::string& split, const std::string& name, const cv::Mat& m, int cls) {
    WriteJpeg(root / "images" / split / (name + ".jpg"), m);
    WriteText(root / "labels" / split / (name + ".txt"),
              std::to_string(cls) + " 0.5 0.5 0.3 0.3\n");
  };
  for (int i = 0; i < 12; ++i) add("train", "p" + std::to_string(i), Photo(i), i % 3);
  for (int i = 0; i < 4; ++i) add("val", "v" + std::to_string(i), Photo(100 + i), i % 3);
  for (int i = 0; i < 4; ++i) add("test", "t" + std::to_string(i), Photo(200 + i), i % 3);
  add("test", "t0", Photo(0) + cv::Scalar(4, 4, 4), 0);
  fs::copy_file(root / "images/train/p1.jpg", root / "images/val/v1.jpg",
                fs::copy_options::overwrite_existing);
}

class Derive : public ::testing::Test {
 protected:
  void SetUp() override {
    ws_ = Workspace::Open({dir_ / "ws"}).value();
    WriteLeakyExport(dir_ / "cars");
  }
  VersionInfo Import(const std::string& name, const fs::path& src, ClassMap map = {}) {
    ImportOptions o;
    o.name = name;
    o.source = src;
    o.class_map = std::move(map);
    auto r = ImportDataset(*ws_, o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->version : VersionInfo{};
  }
  ValidationReport Validate(const VersionInfo& v) {
    auto r = ValidateVersion(*ws_, v, {});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : ValidationReport{};
  }
  Result<DeriveResult> Run(const std::string& from,
                           std::vector<std::pair<std::string, std::string>> ops,
                           const std::string& name = "", uint64_t seed = 0) {
    DeriveOptions o;
    o.from = from;
    o.name = name;
    o.seed = seed;
    for (const auto& [flag, value] : ops) {
      ASSIGN_OR_RETURN(DeriveOp op, ParseDeriveOp(flag, value));
      o.ops.push_back(op);
    }
    return DeriveDataset(*ws_, o);
  }
  Manifest Load(const VersionInfo& v) { return LoadManifest(*ws_, v).value(); }
  // True when no group of copies has members in two splits.
  bool GroupsWhole(const Manifest& m) {
    auto profiles = ProfileManifest(*ws_, m, 1, nullptr).value();
    auto root = validate_internal::DuplicateComponents(m, profiles, 8, 0.95);
    std::map<size_t, std::set<Split>> splits;
    for (size_t i = 0; i < m.images.size(); ++i) splits[root[i]].insert(m.images[i].split);
    for (const auto& [r, s] : splits) {
      if (s.size() > 1) return false;
    }
    return true;
  }
  static std::string SplitOf(const Manifest& m, const std::string& name) {
    for (const ImageEntry& e : m.images) {
      if (e.name == name) return SplitName(e.split);
    }
    return "absent";
  }
  TempDir dir_;
  std::unique_ptr<Workspace> ws_;
};

TEST_F(Derive, FixLeakageMakesAVersionThatPassesWithItsLineageAndOperations) {
  VersionInfo v1 = Import("cars", dir_ / "cars");
  ValidationReport before = Validate(v1);
  ASSERT_FALSE(before.trainable()) << ReportToTable(before);
  EXPECT_EQ(DeriveFixCommand(before, v1.Ref()), "detops data derive cars@1 --fix-leakage");
  EXPECT_FALSE(GroupsWhole(Load(v1)));

  auto r = Run("cars@1", {{"fix-leakage", ""}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->created);
  EXPECT_EQ(r->version.Ref(), "cars@2");
  EXPECT_EQ(r->version.ParentRef(), "cars@1");
  EXPECT_EQ(r->version.source, "cars@1");
  Manifest m = Load(r->version);
  EXPECT_EQ(m.images.size(), 20u);  // moved, not dropped
  // Ties go to the held-out split: p0 joins t0 in test, p1 joins v1 in val.
  EXPECT_EQ(SplitOf(m, "p0.jpg"), "test");
  EXPECT_EQ(SplitOf(m, "p1.jpg"), "val");
  EXPECT_TRUE(GroupsWhole(m));

  ValidationReport after = Validate(r->version);
  EXPECT_TRUE(after.trainable()) << ReportToTable(after);
  EXPECT_EQ(DeriveFixCommand(after, r->version.Ref()), "");

  auto steps = LoadDerivation(*ws_, r->version);
  ASSERT_TRUE(steps.ok()) << steps.status().ToString();
  ASSERT_EQ(steps->size(), 1u);
  EXPECT_EQ((*steps)[0].op, "fix-leakage");
  EXPECT_EQ((*steps)[0].params["policy"], "move");
  EXPECT_EQ((*steps)[0].counts.at("groups"), 2);
  EXPECT_EQ((*steps)[0].counts.at("moved"), 2);
  // An imported version has no derivation.
  EXPECT_TRUE(LoadDerivation(*ws_, v1)->empty());
}

TEST_F(Derive, FixLeakageDropKeepsOnlyTheMajoritySplitsCopiesIntoANewDataset) {
  VersionInfo v1 = Import("cars", dir_ / "cars");
  auto r = Run("cars@1", {{"fix-leakage", "drop"}}, "cars-clean");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->version.Ref(), "cars-clean@1");
  EXPECT_EQ(r->version.ParentRef(), "cars@1");
  Manifest m = Load(r->version);
  EXPECT_EQ(m.images.size(), 18u);
  EXPECT_EQ(SplitOf(m, "p0.jpg"), "absent");
  EXPECT_EQ(SplitOf(m, "t0.jpg"), "test");
  EXPECT_TRUE(GroupsWhole(m));
  EXPECT_TRUE(Validate(r->version).trainable());
}

TEST_F(Derive, ResplitKeepsGroupsWholeAndIsDeterministicPerSeed) {
  Import("cars", dir_ / "cars");
  auto a = Run("cars@1", {{"resplit", "train=0.5,val=0.25,test=0.25"}}, "a", 7);
  auto b = Run("cars@1", {{"resplit", "train=0.5,val=0.25,test=0.25"}}, "b", 7);
  auto c = Run("cars@1", {{"resplit", "0.5,0.25,0.25"}}, "c", 8);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok()) << a.status().ToString();
  EXPECT_EQ(a->version.manifest_sha, b->version.manifest_sha);
  EXPECT_NE(a->version.manifest_sha, c->version.manifest_sha);
  for (const auto* r : {&*a, &*c}) {
    Manifest m = Load(r->version);
    EXPECT_TRUE(GroupsWhole(m));
    EXPECT_EQ(SplitOf(m, "p0.jpg"), SplitOf(m, "t0.jpg"));
    EXPECT_EQ(SplitOf(m, "p1.jpg"), SplitOf(m, "v1.jpg"));
    EXPECT_EQ(r->version.stats.splits.at("train").images, 10);
    EXPECT_EQ(r->version.stats.splits.at("val").images, 5);
    EXPECT_EQ(r->version.stats.splits.at("test").images, 5);
  }
  EXPECT_EQ(a->steps[0].counts.at("groups"), 18);
  EXPECT_EQ(a->steps[0].params["seed"], 7);
}

TEST_F(Derive, MapAndDropClassesRenumberBoxesAndUnknownNamesAreRefused) {
  Import("cars", dir_ / "cars");
  auto r = Run("cars@1", {{"map-classes", "scratch=damage,rust=damage"}, {"drop-classes", "dent"}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  Manifest m = Load(r->version);
  EXPECT_EQ(m.classes, (std::vector<std::string>{"damage"}));
  int boxes = 0;
  for (const ImageEntry& e : m.images) {
    for (const Box& b : e.boxes) EXPECT_EQ(b.class_id, 0);
    boxes += static_cast<int>(e.boxes.size());
  }
  EXPECT_EQ(boxes, 20 - 6);  // 6 of the 20 boxes were dents
  EXPECT_EQ(r->steps[1].counts.at("boxes_dropped"), 6);

  auto bad = Run("cars@1", {{"map-classes", "cizik=scratch"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(bad.status().message().find("'cizik' is not a class of cars@1 (its classes: "
                                        "scratch, dent, rust)"),
            std::string::npos)
      << bad.status().message();
  EXPECT_EQ(ListVersions(*ws_, "cars")->size(), 2u);  // nothing recorded
}

TEST_F(Derive, MergeMatchesClassesByNameAndRefusesUnknownOnes) {
  Import("cars", dir_ / "cars");
  // Another export, its classes in another order and language.
  fs::path other = dir_ / "other";
  WriteText(other / "data.yaml", "train: images/train\nnames: [gocuk, cizik]\n");
  for (int i = 0; i < 3; ++i) {
    WriteJpeg(other / "images/train" / ("o" + std::to_string(i) + ".jpg"), Photo(300 + i));
    WriteText(other / "labels/train" / ("o" + std::to_string(i) + ".txt"), "0 0.5 0.5 0.2 0.2\n");
  }
  // Same name as one of cars' train images, another photo: renamed.
  WriteJpeg(other / "images/train/p2.jpg", Photo(400));
  WriteText(other / "labels/train/p2.txt", "1 0.5 0.5 0.2 0.2\n");
  Import("other", other);

  auto refused = Run("cars@1", {{"merge", "other@1"}});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("its classes gocuk, cizik are not classes of cars@1"),
            std::string::npos)
      << refused.status().message();

  auto r = Run("cars@1", {{"map-classes", "rust=rust"}, {"merge", "other@1"}}, "both");
  ASSERT_FALSE(r.ok());  // the map names no class of other: still refused
  r = Run("other@1", {{"map-classes", "gocuk=dent,cizik=scratch"}}, "other-en");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  r = Run("cars@1", {{"merge", "other-en@1"}}, "both");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  Manifest m = Load(r->version);
  EXPECT_EQ(m.classes, (std::vector<std::string>{"scratch", "dent", "rust"}));
  EXPECT_EQ(m.images.size(), 24u);
  std::map<std::string, int> cls;
  for (const ImageEntry& e : m.images) cls[e.name] = e.boxes.at(0).class_id;
  EXPECT_EQ(cls.at("o0.jpg"), 1);  // gocuk -> dent
  EXPECT_EQ(cls.at("p2.jpg"), 2);  // cars' own p2 (rust)
  std::string renamed;
  for (const auto& [name, id] : cls) {
    if (name.rfind("p2-", 0) == 0) renamed = name;
  }
  ASSERT_FALSE(renamed.empty());
  EXPECT_EQ(cls.at(renamed), 0);  // cizik -> scratch
  EXPECT_EQ(r->steps[0].counts.at("added"), 4);
  EXPECT_EQ(r->steps[0].counts.at("renamed"), 1);
}

TEST_F(Derive, DropFindingDropsTheImagesAValidationCheckFlagged) {
  // A truncated JPEG in train.
  std::string bytes = ReadFile(dir_ / "cars/images/train/p5.jpg").value();
  WriteText(dir_ / "cars/images/train/p5.jpg", bytes.substr(0, bytes.size() / 2));
  VersionInfo v1 = Import("cars", dir_ / "cars");

  auto unvalidated = Run("cars@1", {{"drop-finding", "images_decode"}});
  ASSERT_FALSE(unvalidated.ok());
  EXPECT_NE(unvalidated.status().message().find("has not been validated"), std::string::npos);

  ValidationReport report = Validate(v1);
  EXPECT_EQ(DeriveFixCommand(report, "cars@1"),
            "detops data derive cars@1 --drop-finding images_decode --fix-leakage");
  auto r = Run("cars@1", {{"drop-finding", "images_decode"}, {"fix-leakage", ""}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  Manifest m = Load(r->version);
  EXPECT_EQ(SplitOf(m, "p5.jpg"), "absent");
  EXPECT_EQ(m.images.size(), 19u);
  EXPECT_EQ(r->steps[0].counts.at("dropped"), 1);
  ValidationReport after = Validate(r->version);
  EXPECT_TRUE(after.trainable()) << ReportToTable(after);

  auto unknown = ParseDeriveOp("drop-finding", "images_decodes");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("not a validation check"), std::string::npos);
}

TEST_F(Derive, SampleKeepsAStratifiedShareOfEachSplit) {
  Import("cars", dir_ / "cars");
  auto r = Run("cars@1", {{"sample", "0.5"}}, "half", 3);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->version.stats.splits.at("train").images, 6);
  EXPECT_EQ(r->version.stats.splits.at("val").images, 2);
  EXPECT_EQ(r->version.stats.splits.at("test").images, 2);
  // Train holds 4 boxes of each class: 2 of each are kept.
  for (int n : r->version.stats.splits.at("train").boxes_per_class) EXPECT_EQ(n, 2);
  auto again = Run("cars@1", {{"sample", "0.5"}}, "half2", 3);
  EXPECT_EQ(again->version.manifest_sha, r->version.manifest_sha);
  auto two = Run("cars@1", {{"sample", "2"}}, "two", 3);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two->version.stats.total.images, 6);
  EXPECT_FALSE(ParseDeriveOp("sample", "2.5").ok());
  EXPECT_FALSE(ParseDeriveOp("sample", "0").ok());
}

TEST_F(Derive, BadOperationsAreRefusedNamingTheFlagAndValue) {
  auto ratio = ParseDeriveOp("resplit", "train=0.8,valid=x");
  ASSERT_FALSE(ratio.ok());
  EXPECT_NE(ratio.status().message().find("--resplit 'train=0.8,valid=x': 'x' is not a ratio"),
            std::string::npos)
      << ratio.status().message();
  EXPECT_FALSE(ParseDeriveOp("resplit", "holdout=0.2").ok());
  EXPECT_FALSE(ParseDeriveOp("fix-leakage", "keep").ok());
  EXPECT_FALSE(ParseDeriveOp("merge", "bad name@x").ok());
  Import("cars", dir_ / "cars");
  DeriveOptions none;
  none.from = "cars@1";
  EXPECT_NE(DeriveDataset(*ws_, none).status().message().find("nothing to derive"),
            std::string::npos);
}

TEST_F(Derive, ImportAppliesAClassMap) {
  fs::path src = dir_ / "tr";
  WriteText(src / "data.yaml", "train: images/train\nnames: [cizik, gocuk, cam]\n");
  for (int i = 0; i < 3; ++i) {
    WriteJpeg(src / "images/train" / ("a" + std::to_string(i) + ".jpg"), Photo(500 + i));
    WriteText(src / "labels/train" / ("a" + std::to_string(i) + ".txt"),
              std::to_string(i) + " 0.5 0.5 0.2 0.2\n");
  }
  VersionInfo v = Import("tr", src, ParseClassMap("cizik=scratch,gocuk=dent", "cam").value());
  Manifest m = Load(v);
  EXPECT_EQ(m.classes, (std::vector<std::string>{"scratch", "dent"}));
  std::map<std::string, size_t> boxes;
  for (const ImageEntry& e : m.images) boxes[e.name] = e.boxes.size();
  EXPECT_EQ(boxes.at("a2.jpg"), 0u);
  EXPECT_EQ(m.images[1].boxes.at(0).class_id, 1);

  ImportOptions o;
  o.name = "tr";
  o.source = src;
  o.class_map = ParseClassMap("kirik=broken", "").value();
  auto refused = ImportDataset(*ws_, o);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("'kirik' is not a class of"), std::string::npos);
  EXPECT_NE(refused.status().message().find("cizik, gocuk, cam"), std::string::npos);
}

}  // namespace
}  // namespace detops

namespace detops {
namespace {

TEST(DeriveFixCommand, NamesOnlyWhatDeriveCanDrop) {
  ExpectationResult unlabelled{"labels_match_images",
                               Severity::kError,
                               false,
                               false,
                               "",
                               1,
                               {{"train/a.jpg", 0, "image without label"}}};
  ExpectationResult orphan = unlabelled;
  orphan.findings.push_back({"labels/train/b.txt", 0, "label without image: b.txt"});
  ExpectationResult parse{
      "labels_parse", Severity::kError, false, false, "", 1, {{"labels/train/c.txt", 2, "bad"}}};
  ExpectationResult warn{"no_split_leakage", Severity::kWarning, false, false, "", 1, {}};
  EXPECT_EQ(DeriveFixCommand({"default", {unlabelled}}, "cars@3"),
            "detops data derive cars@3 --drop-finding labels_match_images");
  EXPECT_EQ(DeriveFixCommand({"default", {orphan, parse, warn}}, "cars@3"), "");
}

}  // namespace
}  // namespace detops
