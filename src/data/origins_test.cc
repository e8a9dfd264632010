// Validation findings about a box name the label file and line (YOLO, VOC) or
// the COCO file and annotation id it came from, beside the image; a COCO
// file that declares another size than the image's says so.

#include "data/origins.h"

#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "data/data.h"
#include "testing/testutil.h"

namespace detops {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using testing::WriteText;

void WriteImage(const fs::path& path, int w, int h, int seed) {
  fs::create_directories(path.parent_path());
  cv::Mat m(h, w, CV_8UC3, cv::Scalar(40 + seed * 37 % 200, 90, 160));
  cv::circle(m, {w / 3 + seed % 10, h / 2}, 8 + seed % 5, cv::Scalar(250, 250, 250), -1);
  cv::imwrite(path.string(), m);
}

// A JPEG stored w x h whose EXIF orientation 6 displays it h x w.
void WriteRotatedJpeg(const fs::path& path, int w, int h) {
  cv::Mat m(h, w, CV_8UC3, cv::Scalar(10, 200, 30));
  std::vector<unsigned char> jpg;
  cv::imencode(".jpg", m, jpg);
  WriteText(path, testing::WithExifOrientation(std::string(jpg.begin(), jpg.end()), 6));
}

const ExpectationResult& Get(const ValidationReport& r, const std::string& type) {
  for (const auto& e : r.results) {
    if (e.type == type) return e;
  }
  static ExpectationResult none;
  ADD_FAILURE() << "no result " << type;
  return none;
}

std::string Dump(const ExpectationResult& r) {
  std::string s = r.summary;
  for (const auto& f : r.findings) s += "\n  " + f.file + " | " + f.message;
  return s;
}

class Origins : public ::testing::Test {
 protected:
  void SetUp() override { ws_ = Workspace::Open({dir_ / "ws"}).value(); }
  VersionInfo Import(const fs::path& src) {
    ImportOptions o;
    o.name = "d";
    o.source = src;
    auto r = ImportDataset(*ws_, o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->version : VersionInfo{};
  }
  ValidationReport Validate(const VersionInfo& v) {
    auto r = ValidateVersion(*ws_, v, {});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : ValidationReport{};
  }
  TempDir dir_;
  std::unique_ptr<Workspace> ws_;
};

TEST_F(Origins, YoloBoxFindingsNameTheImageAndTheLabelFileLine) {
  fs::path src = dir_ / "yolo";
  WriteText(src / "data.yaml", "train: images/train\ntest: images/test\nnames: [scratch]\n");
  WriteImage(src / "images/train/car_00001.jpg", 64, 48, 1);
  WriteText(src / "labels/train/car_00001.txt", "0 0.5 0.5 0.2 0.2\n");
  WriteImage(src / "images/test/car_00037.jpg", 64, 48, 2);
  // Box 3 is on line 4: a blank line comes before it.
  WriteText(src / "labels/test/car_00037.txt",
            "0 0.5 0.5 0.2 0.2\n\n0 0.3 0.3 0.1 0.1\n0 1.2 0.5 0.2 0.2\n3 0.5 0.5 0.1 0.1\n");
  VersionInfo v = Import(src);
  ValidationReport report = Validate(v);
  const auto& inside = Get(report, "boxes_inside_image");
  ASSERT_EQ(inside.findings.size(), 1u) << Dump(inside);
  EXPECT_EQ(inside.findings[0].file, "test/car_00037.jpg");
  EXPECT_EQ(inside.findings[0].message.rfind("labels/test/car_00037.txt:4: box 3 (class 0", 0), 0u)
      << Dump(inside);
  const auto& ids = Get(report, "class_ids_known");
  ASSERT_EQ(ids.findings.size(), 1u) << Dump(ids);
  EXPECT_EQ(ids.findings[0].message.rfind("labels/test/car_00037.txt:5: box 4 ", 0), 0u)
      << Dump(ids);

  // A version recorded before origins were kept still validates, naming the
  // image only; importing the same content again gives it its origins.
  ASSERT_TRUE(ws_->db().Exec("UPDATE dataset_versions SET origins_json = ''").ok());
  ValidationReport before = Validate(v);
  const auto& old = Get(before, "boxes_inside_image");
  ASSERT_EQ(old.findings.size(), 1u);
  EXPECT_EQ(old.findings[0].message.rfind("box 3 (class 0", 0), 0u) << Dump(old);
  VersionInfo again = Import(src);
  EXPECT_EQ(again.version, v.version);
  ValidationReport after = Validate(again);
  const auto& back = Get(after, "boxes_inside_image");
  ASSERT_EQ(back.findings.size(), 1u);
  EXPECT_EQ(back.findings[0].message.rfind("labels/test/car_00037.txt:4: ", 0), 0u) << Dump(back);
}

TEST_F(Origins, CocoFindingsNameTheFileAndAnnotationIdAndADeclaredSizeMismatch) {
  fs::path src = dir_ / "coco";
  WriteImage(src / "train/a.jpg", 100, 50, 1);
  WriteImage(src / "train/b.jpg", 100, 50, 2);
  WriteRotatedJpeg(src / "train/c.jpg", 64, 32);  // displays 32x64
  WriteRotatedJpeg(src / "train/d.jpg", 64, 32);
  WriteText(src / "train/_annotations.coco.json", R"({
    "images": [{"id": 7, "file_name": "a.jpg", "width": 100, "height": 50},
               {"id": 9, "file_name": "b.jpg", "width": 50, "height": 25},
               {"id": 11, "file_name": "c.jpg", "width": 32, "height": 64},
               {"id": 12, "file_name": "d.jpg", "width": 64, "height": 32}],
    "categories": [{"id": 1, "name": "dent"}],
    "annotations": [{"id": 16, "image_id": 7, "category_id": 1, "bbox": [10, 5, 20, 10]},
                    {"id": 17, "image_id": 7, "category_id": 1, "bbox": [90, 5, 20, 10]},
                    {"id": 21, "image_id": 9, "category_id": 1, "bbox": [40, 20, 20, 10]},
                    {"id": 22, "image_id": 9, "category_id": 1, "bbox": [45, 5, 20, 10]},
                    {"id": 30, "image_id": 11, "category_id": 1, "bbox": [5, 50, 20, 10]}]
  })");
  VersionInfo v = Import(src);

  // b.jpg is declared at half its size (its boxes still fit: a warning);
  // c.jpg is declared as displayed (Roboflow writes the rotated size): fine;
  // d.jpg is declared as stored, turned by EXIF: named with the likely cause.
  std::vector<std::string> declared;
  for (const SourceIssue& i : v.issues) {
    if (i.kind != "declared_size") continue;
    EXPECT_EQ(i.file, "train/_annotations.coco.json");
    declared.push_back(i.message);
  }
  ASSERT_EQ(declared.size(), 2u);
  EXPECT_EQ(
      declared[0].rfind("image id 9 (train/b.jpg) is declared 50x25 but the image is 100x50", 0),
      0u)
      << declared[0];
  EXPECT_NE(declared[1].find("image id 12 (train/d.jpg) is declared 64x32 but the image is 32x64 "
                             "(turned by its EXIF orientation?)"),
            std::string::npos)
      << declared[1];

  ValidationReport report = Validate(v);
  const auto& inside = Get(report, "boxes_inside_image");
  ASSERT_EQ(inside.findings.size(), 2u) << Dump(inside);
  EXPECT_EQ(inside.findings[0].file, "train/a.jpg");
  EXPECT_EQ(inside.findings[0].message.rfind(
                "train/_annotations.coco.json, annotation id 17: box 2 (class 0", 0),
            0u)
      << Dump(inside);
  // Both of b's boxes land outside: one finding names the cause, not each box.
  EXPECT_EQ(inside.findings[1].file, "train/b.jpg");
  EXPECT_EQ(inside.findings[1].message,
            "train/_annotations.coco.json declares image id 9 as 50x25 but the image is 100x50: "
            "boxes scaled from the declared size extend outside it");
  EXPECT_EQ(inside.observed, 3);  // boxes, as before
  const auto& issues = Get(report, "import_issues");
  EXPECT_FALSE(issues.passed);
  EXPECT_EQ(issues.severity, Severity::kWarning);  // the boxes decide, not the size alone
}

TEST_F(Origins, VocFindingsNameTheXmlFileAndTheObjectLine) {
  fs::path src = dir_ / "voc";
  WriteImage(src / "JPEGImages/x1.jpg", 200, 100, 1);
  WriteText(src / "Annotations/x1.xml", R"(<annotation><filename>x1.jpg</filename>
    <size><width>200</width><height>100</height><depth>3</depth></size>
    <object><name>pothole</name>
      <bndbox><xmin>11</xmin><ymin>21</ymin><xmax>60</xmax><ymax>70</ymax></bndbox></object>
    <object><name>pothole</name>
      <bndbox><xmin>150</xmin><ymin>21</ymin><xmax>260</xmax><ymax>70</ymax></bndbox></object>
  </annotation>)");
  VersionInfo v = Import(src);
  ValidationReport report = Validate(v);
  const auto& inside = Get(report, "boxes_inside_image");
  ASSERT_EQ(inside.findings.size(), 1u) << Dump(inside);
  EXPECT_EQ(inside.findings[0].message.rfind("Annotations/x1.xml:5: box 2 ", 0), 0u)
      << Dump(inside);
}

TEST(OriginsText, RoundTripsAndToleratesOldOrBrokenText) {
  BoxOrigins o;
  o.images.push_back({"labels/a.txt", {1, 4}, -1, 0, 0});
  o.images.push_back({"", {}, -1, 0, 0});
  o.images.push_back({"labels/a.txt", {2}, 5, 640, 480});
  BoxOrigins back = OriginsFromText(OriginsToText(o));
  ASSERT_EQ(back.images.size(), 3u);
  EXPECT_EQ(back.BoxText(0, 1), "labels/a.txt:4");
  EXPECT_EQ(back.BoxText(1, 0), "");
  EXPECT_EQ(back.BoxText(2, 0), "labels/a.txt:2");
  EXPECT_EQ(back.BoxText(2, 7), "labels/a.txt");
  EXPECT_EQ(back.images[2].declared_width, 640);
  EXPECT_TRUE(OriginsFromText("").images.empty());
  EXPECT_TRUE(OriginsFromText("{\"unit\": 3}").images.empty());
  EXPECT_TRUE(OriginsFromText("not json").images.empty());
}

}  // namespace
}  // namespace detops
