#include "data/validate.h"

#include <gtest/gtest.h>

#include <chrono>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <set>

#include "data/synth.h"
#include "data/validate_internal.h"
#include "testing/testutil.h"

namespace detops {
namespace {

uint64_t SplitMix(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

ImageProfile Undecodable(const std::string& error) {
  ImageProfile p;
  p.error = error;
  return p;
}

// A clean dataset: 20 train, 5 val, 5 test images of 640x480, each labelled
// with one box of each of 2 classes, unique blobs, well exposed, unrelated
// hashes. Tests break one thing at a time.
struct Fixture {
  Manifest manifest;
  std::vector<SourceIssue> issues;
  std::vector<ImageProfile> profiles;

  Fixture() {
    manifest.classes = {"scratch", "dent"};
    uint64_t seed = 42;
    for (int i = 0; i < 30; ++i) {
      ImageEntry e;
      e.split = i < 20 ? Split::kTrain : i < 25 ? Split::kVal : Split::kTest;
      e.name = "img" + std::to_string(i) + ".jpg";
      e.blob = "blob" + std::to_string(i);
      e.width = 640;
      e.height = 480;
      e.labelled = true;
      e.boxes = {{0, 0.1, 0.1, 0.4, 0.5}, {1, 0.5, 0.5, 0.9, 0.9}};
      manifest.images.push_back(e);
      ImageProfile p;
      p.decodes = true;
      p.format = "jpeg";
      p.width = 640;
      p.height = 480;
      p.channels = 3;
      p.brightness = 120;
      p.contrast = 40;
      p.dhash = SplitMix(seed);
      profiles.push_back(p);
    }
  }
  ValidationInput Input() const { return {&manifest, &issues, &profiles}; }
  ValidationReport Run(const Suite& suite = DefaultSuite()) const {
    return RunSuite(suite, Input());
  }
};

const ExpectationResult& Get(const ValidationReport& report, const std::string& type) {
  for (const auto& r : report.results) {
    if (r.type == type) return r;
  }
  static const ExpectationResult kMissing;
  ADD_FAILURE() << "no result for " << type;
  return kMissing;
}

bool HasFinding(const ExpectationResult& r, const std::string& file, int line,
                const std::string& text) {
  for (const auto& f : r.findings) {
    if (f.file == file && f.line == line && f.message.find(text) != std::string::npos) return true;
  }
  return false;
}

std::string Dump(const ExpectationResult& r) {
  std::string s = r.summary;
  for (const auto& f : r.findings)
    s += "\n  " + f.file + ":" + std::to_string(f.line) + ": " + f.message;
  return s;
}

// Asserts that exactly the expectations in `failing` fail.
void ExpectOnlyFailing(const ValidationReport& report, std::set<std::string> failing) {
  for (const auto& r : report.results) {
    EXPECT_EQ(!r.passed, failing.count(r.type) > 0) << r.type << ": " << Dump(r);
  }
}

TEST(ValidateTest, CleanSetPassesEverything) {
  Fixture f;
  ValidationReport report = f.Run();
  EXPECT_EQ(report.results.size(), ExpectationCatalog().size());
  for (const auto& r : report.results) {
    EXPECT_TRUE(r.passed) << r.type << ": " << Dump(r);
    EXPECT_FALSE(r.skipped) << r.type;
    EXPECT_TRUE(r.findings.empty()) << r.type << ": " << Dump(r);
    EXPECT_FALSE(r.summary.empty()) << r.type;
  }
  EXPECT_TRUE(report.trainable());
  EXPECT_EQ(report.failed_warnings(), 0);
}

TEST(ValidateTest, ImagesDecode) {
  Fixture f;
  f.profiles[3] = Undecodable("truncated JPEG (no EOI marker)");
  ValidationReport report = f.Run();
  ExpectOnlyFailing(report, {"images_decode"});
  const auto& r = Get(report, "images_decode");
  EXPECT_TRUE(HasFinding(r, "train/img3.jpg", 0, "truncated JPEG")) << Dump(r);
  EXPECT_EQ(r.summary, "1 of 30 images do not decode");
  EXPECT_FALSE(report.trainable());
}

TEST(ValidateTest, ResolutionWithin) {
  Fixture f;
  f.manifest.images[2].width = 16;
  f.manifest.images[21].height = 20000;
  ValidationReport report = f.Run();
  ExpectOnlyFailing(report, {"resolution_within"});
  const auto& r = Get(report, "resolution_within");
  EXPECT_TRUE(HasFinding(r, "train/img2.jpg", 0, "16x480 outside 32x32..10000x10000"));
  EXPECT_TRUE(HasFinding(r, "val/img21.jpg", 0, "640x20000"));
  EXPECT_EQ(r.observed, 2);
}

TEST(ValidateTest, ExactDuplicatesWithinOneSplitAreAWarning) {
  Fixture f;
  f.manifest.images[5].blob = f.manifest.images[4].blob;
  ValidationReport report = f.Run();
  ExpectOnlyFailing(report, {"no_exact_duplicates"});
  const auto& r = Get(report, "no_exact_duplicates");
  EXPECT_TRUE(HasFinding(r, "train/img5.jpg", 0, "same bytes as train/img4.jpg")) << Dump(r);
  EXPECT_EQ(r.severity, Severity::kWarning);
  EXPECT_TRUE(report.trainable());
}

TEST(ValidateTest, SplitLeakageExactAndNear) {
  Fixture f;
  f.manifest.images[22].blob = f.manifest.images[1].blob;  // val copy of train/img1
  f.profiles[22].dhash = f.profiles[1].dhash;
  f.profiles[27].dhash = f.profiles[7].dhash ^ 0b101;  // test near-duplicate of train/img7
  ValidationReport report = f.Run();
  ExpectOnlyFailing(report, {"no_exact_duplicates", "no_split_leakage", "near_duplicates"});
  const auto& r = Get(report, "no_split_leakage");
  EXPECT_TRUE(HasFinding(r, "train/img1.jpg", 0, "same bytes as val/img22.jpg")) << Dump(r);
  EXPECT_TRUE(HasFinding(r, "val/img22.jpg", 0, "same bytes as train/img1.jpg")) << Dump(r);
  EXPECT_TRUE(
      HasFinding(r, "test/img27.jpg", 0, "near-duplicate of train/img7.jpg (dhash distance 2)"))
      << Dump(r);
  EXPECT_TRUE(HasFinding(r, "train/img7.jpg", 0, "near-duplicate of test/img27.jpg")) << Dump(r);
  EXPECT_EQ(r.findings.size(), 4u);
  EXPECT_FALSE(report.trainable());
}

TEST(ValidateTest, NearDuplicatesReportPairs) {
  Fixture f;
  f.profiles[9].dhash = f.profiles[8].dhash ^ 0b1001;  // distance 2
  f.profiles[10].dhash = f.profiles[8].dhash;          // distance 0, different blob
  ValidationReport report = f.Run();
  ExpectOnlyFailing(report, {"near_duplicates"});
  const auto& r = Get(report, "near_duplicates");
  EXPECT_EQ(r.observed, 3);  // 8-9, 8-10, 9-10
  EXPECT_TRUE(HasFinding(r, "train/img8.jpg", 0,
                         "near-duplicate of train/img10.jpg (dhash distance 0) and 1 more"))
      << Dump(r);
  EXPECT_TRUE(
      HasFinding(r, "train/img9.jpg", 0, "near-duplicate of train/img8.jpg (dhash distance 2)"))
      << Dump(r);
  EXPECT_EQ(r.findings.size(), 3u);
  EXPECT_TRUE(report.trainable());
}

TEST(ValidateTest, BoxExpectations) {
  Fixture f;
  f.manifest.images[0].boxes[0].x2 = 1.2;                     // outside
  f.manifest.images[1].boxes[1].x2 = 1.0005;                  // within tolerance
  f.manifest.images[2].boxes[0] = {0, 0.5, 0.2, 0.3, 0.4};    // inverted
  f.manifest.images[3].boxes[0] = {0, 0.5, 0.5, 0.502, 0.6};  // 1.28 px wide
  f.manifest.images[4].boxes[1].class_id = 5;
  ValidationReport report = f.Run();
  ExpectOnlyFailing(
      report, {"boxes_inside_image", "boxes_positive_area", "boxes_min_size", "class_ids_known"});
  const auto& inside = Get(report, "boxes_inside_image");
  EXPECT_TRUE(HasFinding(inside, "train/img0.jpg", 0, "box 1 (class 0")) << Dump(inside);
  EXPECT_EQ(inside.findings.size(), 1u);
  EXPECT_EQ(inside.summary, "1 of 60 boxes outside the image (in 1 images)");
  EXPECT_TRUE(HasFinding(Get(report, "boxes_positive_area"), "train/img2.jpg", 0, "x2 <= x1"));
  const auto& small = Get(report, "boxes_min_size");
  EXPECT_TRUE(HasFinding(small, "train/img3.jpg", 0, "1.28x48 px (min 2)")) << Dump(small);
  EXPECT_EQ(small.findings.size(), 1u);
  EXPECT_TRUE(
      HasFinding(Get(report, "class_ids_known"), "train/img4.jpg", 0,
                 "box 2 (class 5, 0.5,0.5,0.9,0.9) has unknown class id 5; known ids are 0..1"));
}

TEST(ValidateTest, LabelIssues) {
  Fixture f;
  f.issues.push_back({"label_parse", "labels/train/img1.txt", 3, "expected 5 fields, got 4"});
  f.issues.push_back({"orphan_label", "labels/train/ghost.txt", 0, "no image named ghost"});
  f.manifest.images[6].labelled = false;
  f.manifest.images[6].boxes.clear();
  f.manifest.images[6].boxes.clear();
  ValidationReport report = f.Run();
  ExpectOnlyFailing(report, {"labels_parse", "labels_match_images"});
  EXPECT_TRUE(HasFinding(Get(report, "labels_parse"), "labels/train/img1.txt", 3, "expected 5"));
  const auto& match = Get(report, "labels_match_images");
  EXPECT_TRUE(HasFinding(match, "labels/train/ghost.txt", 0, "label without image"));
  EXPECT_TRUE(HasFinding(match, "train/img6.jpg", 0, "image without label"));
  EXPECT_EQ(match.summary, "1 labels without image, 1 images without label");
}

TEST(ValidateTest, LabelledFraction) {
  Fixture f;
  for (int i = 0; i < 5; ++i) f.manifest.images[i].labelled = false;
  ValidationReport report = f.Run();
  ExpectOnlyFailing(report, {"labels_match_images", "labelled_fraction"});
  const auto& r = Get(report, "labelled_fraction");
  EXPECT_NEAR(r.observed, 25.0 / 30, 1e-9);
  EXPECT_EQ(r.summary, "25 of 30 images labelled (83.3%, min 90.0%)");
  EXPECT_EQ(r.findings.size(), 5u);
}

TEST(ValidateTest, ClassCountsAndImbalance) {
  Fixture f;
  for (int i = 1; i < 30; ++i) f.manifest.images[i].boxes.pop_back();  // 1 'dent' box left
  ValidationReport report = f.Run();
  ExpectOnlyFailing(report, {"class_min_count", "class_imbalance"});
  const auto& count = Get(report, "class_min_count");
  EXPECT_TRUE(HasFinding(count, "", 0, "class 1 'dent': 1 boxes (min 10)")) << Dump(count);
  const auto& imbalance = Get(report, "class_imbalance");
  EXPECT_EQ(imbalance.observed, 30);
  EXPECT_TRUE(HasFinding(imbalance, "", 0, "class 1 'dent': 1 boxes vs 30 of class 0 'scratch'"))
      << Dump(imbalance);

  // A class without boxes is class_min_count's business, not imbalance's.
  Fixture g;
  g.manifest.classes.push_back("pothole");
  report = g.Run();
  ExpectOnlyFailing(report, {"class_min_count"});
}

TEST(ValidateTest, BrightnessAndContrastAllowAFraction) {
  Fixture f;
  f.profiles[11].brightness = 10;  // 1 of 30 = 3.3% <= 5%: passes, still listed
  f.profiles[12].contrast = 3;
  ValidationReport report = f.Run();
  ExpectOnlyFailing(report, {});
  EXPECT_TRUE(HasFinding(Get(report, "brightness_within"), "train/img11.jpg", 0, "too dark"));

  f.profiles[13].brightness = 250;
  f.profiles[14].contrast = 1;
  report = f.Run();
  ExpectOnlyFailing(report, {"brightness_within", "contrast_within"});
  const auto& b = Get(report, "brightness_within");
  EXPECT_TRUE(HasFinding(b, "train/img13.jpg", 0, "too bright: mean luma 250 outside [40, 220]"));
  EXPECT_EQ(b.summary, "2 of 30 images (6.7%) have mean luma outside [40, 220] (max 5.0%)");
  EXPECT_TRUE(HasFinding(Get(report, "contrast_within"), "train/img14.jpg", 0, "std-dev 1 < 15"));
  EXPECT_TRUE(report.trainable());
  EXPECT_EQ(report.failed_warnings(), 2);
}

TEST(ValidateTest, ImportIssuesSeverityDependsOnKind) {
  Fixture f;
  f.issues.push_back({"duplicate_name", "images/train/a.JPG", 0, "differs from a.jpg by case"});
  ValidationReport report = f.Run();
  ExpectOnlyFailing(report, {"import_issues"});
  EXPECT_EQ(Get(report, "import_issues").severity, Severity::kWarning);
  EXPECT_TRUE(report.trainable());

  f.issues.push_back({"image_unreadable", "images/train/b.jpg", 0, "permission denied"});
  report = f.Run();
  const auto& r = Get(report, "import_issues");
  EXPECT_EQ(r.severity, Severity::kError);
  EXPECT_TRUE(HasFinding(r, "images/train/b.jpg", 0, "image_unreadable: permission denied"));
  EXPECT_FALSE(report.trainable());
}

TEST(ValidateTest, WithoutProfilesImageChecksAreSkipped) {
  Fixture f;
  ValidationReport report = RunSuite(DefaultSuite(), {&f.manifest, nullptr, nullptr});
  EXPECT_TRUE(Get(report, "images_decode").skipped);
  EXPECT_TRUE(Get(report, "brightness_within").skipped);
  EXPECT_TRUE(Get(report, "near_duplicates").skipped);
  EXPECT_FALSE(Get(report, "no_split_leakage").skipped);  // the exact part still runs
  EXPECT_TRUE(report.trainable());
  f.profiles.pop_back();
  report = f.Run();
  EXPECT_EQ(Get(report, "images_decode").summary, "skipped: 29 image profiles for 30 images");
}

TEST(ValidateTest, YamlOverridesThresholdsSeverityAndEnabled) {
  auto suite = ParseSuite(R"(
name: strict
expectations:
  resolution_within: {min_width: 700, severity: warning}
  near_duplicates: false
  class_min_count:
    enabled: false
)",
                          "suite.yaml");
  ASSERT_TRUE(suite.ok()) << suite.status().ToString();
  EXPECT_EQ(suite->name, "strict");
  Fixture f;
  ValidationReport report = f.Run(*suite);
  EXPECT_EQ(report.suite, "strict");
  EXPECT_EQ(report.results.size(), ExpectationCatalog().size() - 2);
  for (const auto& r : report.results) {
    EXPECT_NE(r.type, "near_duplicates");
    EXPECT_NE(r.type, "class_min_count");
  }
  const auto& res = Get(report, "resolution_within");
  EXPECT_FALSE(res.passed);
  EXPECT_EQ(res.severity, Severity::kWarning);
  EXPECT_EQ(res.findings.size(), 30u);
  EXPECT_TRUE(report.trainable());

  auto only = ParseSuite("base: none\nexpectations:\n  images_decode:\n", "only.yaml");
  ASSERT_TRUE(only.ok()) << only.status().ToString();
  ASSERT_EQ(only->expectations.size(), 1u);
  EXPECT_EQ(only->expectations[0].type, "images_decode");
}

TEST(ValidateTest, YamlErrorsNameTheLine) {
  struct Case {
    const char* yaml;
    const char* want;
  };
  for (const Case& c : std::vector<Case>{
           {"expectations:\n  images_decode: [1, 2\n", "suite.yaml:3:"},
           {"expectations:\n  images_decode: {}\n  no_such_check: {}\n",
            "suite.yaml:3: unknown expectation type 'no_such_check'"},
           {"expectations:\n  resolution_within:\n    min_width: wide\n",
            "suite.yaml:3: resolution_within.min_width: expected a number, got 'wide'"},
           {"expectations:\n  labelled_fraction: {min: 1.5}\n",
            "suite.yaml:2: labelled_fraction.min: 1.5 is outside [0, 1]"},
           {"expectations:\n\n  near_duplicates: {max_hammming: 3}\n",
            "suite.yaml:3: near_duplicates: unknown parameter 'max_hammming'"},
           {"expectations:\n  images_decode: {severity: fatal}\n",
            "suite.yaml:2: images_decode.severity"},
           {"name: x\nbogus: 1\n", "suite.yaml:2: unknown key 'bogus'"},
           {"- a\n- b\n", "suite.yaml:1: expected a mapping"},
       }) {
    auto suite = ParseSuite(c.yaml, "suite.yaml");
    ASSERT_FALSE(suite.ok()) << c.yaml;
    EXPECT_EQ(suite.status().code(), StatusCode::kInvalidInput);
    EXPECT_NE(suite.status().message().find(c.want), std::string::npos)
        << "got: " << suite.status().message() << "\nwant: " << c.want;
  }
}

TEST(ValidateTest, LoadSuiteFromFile) {
  testing::TempDir dir;
  testing::WriteText(dir / "suite.yaml", "expectations:\n  contrast_within: {min_std: 50}\n");
  auto suite = LoadSuite(dir / "suite.yaml");
  ASSERT_TRUE(suite.ok()) << suite.status().ToString();
  for (const auto& e : suite->expectations) {
    if (e.type == "contrast_within") {
      EXPECT_EQ(e.params.at("min_std"), 50);
    }
  }
  EXPECT_EQ(LoadSuite(dir / "missing.yaml").status().code(), StatusCode::kNotFound);
  testing::WriteText(dir / "bad.yaml", "expectations:\n  nope: {}\n");
  auto bad = LoadSuite(dir / "bad.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find((dir / "bad.yaml").string() + ":2:"), std::string::npos)
      << bad.status().message();
}

TEST(ValidateTest, ReportJsonRoundTrip) {
  Fixture f;
  f.profiles[3].decodes = false;
  f.profiles[3].error = "empty file";
  f.issues.push_back({"label_parse", "labels/train/x.txt", 7, "bad number 'abc'"});
  ValidationReport report = f.Run();
  Json j = ReportToJson(report);
  EXPECT_EQ(j["trainable"], false);
  EXPECT_EQ(j["failed_errors"], 2);
  auto back = ReportFromJson(ParseJson(j.dump(), "report.json").value());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, report);

  j["results"][1].erase("summary");
  auto bad = ReportFromJson(j);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("results[1]: missing field 'summary'"), std::string::npos)
      << bad.status().message();
}

TEST(ValidateTest, TableShowsStatusAndFirstFindings) {
  Fixture f;
  for (int i = 0; i < 8; ++i) f.profiles[i] = Undecodable("not an image");
  f.profiles[20].brightness = 5;
  f.profiles[21].brightness = 5;
  std::string table = ReportToTable(f.Run(), 5);
  EXPECT_NE(table.find("NOT trainable"), std::string::npos) << table;
  EXPECT_NE(table.find("FAIL    images_decode"), std::string::npos) << table;
  EXPECT_NE(table.find("WARN    brightness_within"), std::string::npos) << table;
  EXPECT_NE(table.find("PASS    resolution_within"), std::string::npos) << table;
  EXPECT_NE(table.find("train/img4.jpg: not an image"), std::string::npos) << table;
  EXPECT_EQ(table.find("train/img5.jpg: not an image"), std::string::npos) << table;
  EXPECT_NE(table.find("... and 3 more"), std::string::npos) << table;
}

// Near-duplicate search against brute force, on clustered hashes.
TEST(ValidateTest, GroupNearHashesMatchesBruteForce) {
  uint64_t seed = 7;
  std::vector<uint64_t> hashes;
  std::vector<uint64_t> centers;
  for (int c = 0; c < 100; ++c) centers.push_back(SplitMix(seed));
  for (int i = 0; i < 3000; ++i) {
    uint64_t h = centers[SplitMix(seed) % centers.size()];
    int flips = static_cast<int>(SplitMix(seed) % 7);
    for (int k = 0; k < flips; ++k) h ^= uint64_t{1} << (SplitMix(seed) % 64);
    hashes.push_back(h);
  }
  std::vector<size_t> all(hashes.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  for (int max_d : {0, 1, 4, 9}) {
    auto g = validate_internal::GroupNearHashes(all, hashes, max_d);
    size_t brute = 0, fast = 0;
    for (size_t a = 0; a < g.hash.size(); ++a) {
      for (size_t b = a + 1; b < g.hash.size(); ++b) {
        brute += HammingDistance(g.hash[a], g.hash[b]) <= max_d;
      }
    }
    std::set<std::pair<size_t, size_t>> unique;
    for (const auto& p : g.pairs) unique.insert({p.a, p.b});
    fast = g.pairs.size();
    EXPECT_EQ(unique.size(), fast) << "pairs reported twice at max_d " << max_d;
    EXPECT_EQ(fast, brute) << "max_d " << max_d;
  }
}

// The profile of `image` as an import would see it: encoded as a JPEG.
ImageProfile ProfileAsJpeg(const cv::Mat& image, int quality) {
  std::vector<uint8_t> jpeg;
  cv::imencode(".jpg", image, jpeg, {cv::IMWRITE_JPEG_QUALITY, quality});
  return ProfileImageBytes(jpeg);
}

// `detops synth car --n 1500 --seed 1` put scenes 667 (train) and 192 (test)
// at dhash distance 2: two plain car panels, not copies of each other. The
// thumbnail check tells them apart; a resized, re-encoded, brighter copy of
// 667 in another split is still leakage.
TEST(ValidateTest, SplitLeakageTellsPlainDistinctScenesFromRealCopies) {
  cv::Mat a = RenderScene(SceneKind::kCar, 1, 667, Lighting::kNormal).image;
  cv::Mat b = RenderScene(SceneKind::kCar, 1, 192, Lighting::kNormal).image;
  cv::Mat copy;
  cv::resize(a, copy, {320, 240}, 0, 0, cv::INTER_AREA);
  copy.convertTo(copy, -1, 1.0, 20);
  Manifest m;
  m.classes = {"scratch"};
  std::vector<ImageProfile> profiles;
  auto add = [&](const std::string& name, Split split, const ImageProfile& p) {
    ImageEntry e;
    e.blob = name;
    e.name = name;
    e.split = split;
    e.width = p.width;
    e.height = p.height;
    e.labelled = true;
    m.images.push_back(e);
    profiles.push_back(p);
  };
  add("car_00667.jpg", Split::kTrain, ProfileAsJpeg(a, 90));
  add("car_00192.jpg", Split::kTest, ProfileAsJpeg(b, 90));
  ASSERT_LE(HammingDistance(profiles[0].dhash, profiles[1].dhash), 2)
      << "the scenes no longer reproduce the dhash collision this test guards";
  Suite suite{"leakage", {}};
  for (const auto& s : DefaultSuite().expectations) {
    if (s.type == "no_split_leakage" || s.type == "near_duplicates") {
      suite.expectations.push_back(s);
    }
  }
  ValidationReport report = RunSuite(suite, {&m, nullptr, &profiles});
  EXPECT_TRUE(Get(report, "no_split_leakage").passed) << Dump(Get(report, "no_split_leakage"));
  EXPECT_TRUE(Get(report, "near_duplicates").passed) << Dump(Get(report, "near_duplicates"));

  add("copy_of_667.jpg", Split::kVal, ProfileAsJpeg(copy, 60));
  report = RunSuite(suite, {&m, nullptr, &profiles});
  const auto& r = Get(report, "no_split_leakage");
  EXPECT_FALSE(r.passed);
  EXPECT_TRUE(HasFinding(r, "val/copy_of_667.jpg", 0, "near-duplicate of train/car_00667.jpg"))
      << Dump(r);
  EXPECT_TRUE(HasFinding(r, "train/car_00667.jpg", 0, "near-duplicate of val/copy_of_667.jpg"))
      << Dump(r);
  EXPECT_EQ(r.findings.size(), 2u) << Dump(r);  // not the distinct test scene
  EXPECT_NE(r.findings[0].message.find("thumbnail correlation 0.9"), std::string::npos) << Dump(r);
}

TEST(ValidateTest, NearDuplicatesScaleTo10000Images) {
  Manifest m;
  m.classes = {"a"};
  std::vector<ImageProfile> profiles;
  uint64_t seed = 1;
  for (int i = 0; i < 10000; ++i) {
    ImageEntry e;
    e.blob = "b" + std::to_string(i);
    e.name = std::to_string(i) + ".jpg";
    e.width = e.height = 64;
    e.labelled = true;
    m.images.push_back(e);
    ImageProfile p;
    p.decodes = true;
    p.brightness = 100;
    p.contrast = 30;
    p.dhash = i % 100 == 99 ? profiles[i - 1].dhash ^ 3 : SplitMix(seed);
    profiles.push_back(p);
  }
  Suite suite{"dups", {}};
  for (const auto& s : DefaultSuite().expectations) {
    if (s.type == "near_duplicates" || s.type == "no_split_leakage")
      suite.expectations.push_back(s);
  }
  auto start = std::chrono::steady_clock::now();
  ValidationReport report = RunSuite(suite, {&m, nullptr, &profiles});
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(Get(report, "near_duplicates").observed, 100);
  EXPECT_TRUE(Get(report, "no_split_leakage").passed);
  EXPECT_LT(ms, 2000) << "near-duplicate search too slow";
}

}  // namespace
}  // namespace detops
