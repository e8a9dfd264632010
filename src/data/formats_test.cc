// Import of real-world exports: Ultralytics and Roboflow YOLO folders, COCO
// with sparse category ids, VOC with difficult flags, EXIF orientation,
// mixed extension case; and every kind of broken input.

#include <gtest/gtest.h>

#include <fstream>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "data/data.h"
#include "data/image_header.h"
#include "testing/testutil.h"

namespace detops {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using testing::WriteText;

// A small distinct JPEG (or PNG by extension) at `path`.
void WriteImage(const fs::path& path, int w = 64, int h = 48, int seed = 0) {
  fs::create_directories(path.parent_path());
  cv::Mat m(h, w, CV_8UC3, cv::Scalar(40 + seed * 7 % 200, 90, 160));
  cv::circle(m, {w / 3 + seed % 10, h / 2}, 8 + seed % 5, cv::Scalar(250, 250, 250), -1);
  std::string ext = LowerExtension(path);
  std::vector<unsigned char> buf;
  cv::imencode(ext == ".png" ? ".png" : ".jpg", m, buf);
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<char*>(buf.data()), buf.size());
}

class Formats : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ws = Workspace::Open({dir_ / "ws"});
    ASSERT_TRUE(ws.ok()) << ws.status().ToString();
    ws_ = std::move(ws).value();
  }
  Result<ImportResult> Import(const std::string& name, const fs::path& src,
                              const std::string& format = "auto") {
    ImportOptions o;
    o.name = name;
    o.source = src;
    o.format = format;
    return ImportDataset(*ws_, o);
  }
  Manifest ManifestOf(const VersionInfo& v) { return LoadManifest(*ws_, v).value(); }
  bool HasIssue(const VersionInfo& v, const std::string& kind, const std::string& file_part,
                int line = -1) {
    for (const SourceIssue& i : v.issues) {
      if (i.kind == kind && i.file.find(file_part) != std::string::npos &&
          (line < 0 || i.line == line))
        return true;
    }
    return false;
  }
  TempDir dir_;
  std::unique_ptr<Workspace> ws_;
};

TEST_F(Formats, UltralyticsYoloWithSplitsAndBackgroundAndUnlabelled) {
  fs::path src = dir_ / "yolo";
  WriteText(src / "data.yaml",
            "path: .\ntrain: images/train\nval: images/val\nnames:\n  0: scratch\n  1: dent\n");
  WriteImage(src / "images/train/a.jpg", 64, 48, 1);
  WriteText(src / "labels/train/a.txt", "0 0.5 0.5 0.25 0.5\n1 0.25 0.25 0.1 0.1\n");
  WriteImage(src / "images/train/b.JPG", 64, 48, 2);
  WriteText(src / "labels/train/b.txt", "");        // background
  WriteImage(src / "images/val/c.png", 64, 48, 3);  // no label file at all
  auto r = Import("ds", src);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->created);
  Manifest m = ManifestOf(r->version);
  EXPECT_EQ(m.classes, (std::vector<std::string>{"scratch", "dent"}));
  ASSERT_EQ(m.images.size(), 3u);
  const ImageEntry& a = m.images[0];
  EXPECT_EQ(a.name, "a.jpg");
  EXPECT_EQ(a.split, Split::kTrain);
  EXPECT_EQ(a.width, 64);
  EXPECT_EQ(a.height, 48);
  ASSERT_EQ(a.boxes.size(), 2u);
  EXPECT_DOUBLE_EQ(a.boxes[0].x1, 0.375);
  EXPECT_DOUBLE_EQ(a.boxes[0].y2, 0.75);
  EXPECT_EQ(a.boxes[1].class_id, 1);
  EXPECT_EQ(m.images[1].name, "b.JPG");
  EXPECT_TRUE(m.images[1].labelled);
  EXPECT_TRUE(m.images[1].boxes.empty());
  EXPECT_EQ(m.images[2].split, Split::kVal);
  EXPECT_FALSE(m.images[2].labelled);
  EXPECT_EQ(r->version.stats.total.background, 1);
}

TEST_F(Formats, RoboflowYoloExportWithDotDotPaths) {
  fs::path src = dir_ / "rf";
  WriteText(src / "data.yaml",
            "train: ../train/images\nval: ../valid/images\ntest: ../test/images\n\nnc: 1\n"
            "names: ['pothole']\n\nroboflow:\n  workspace: x\n  version: 3\n");
  WriteImage(src / "train/images/p1_jpg.rf.abc.jpg", 80, 60, 1);
  WriteText(src / "train/labels/p1_jpg.rf.abc.txt", "0 0.5 0.5 0.2 0.2\r\n");
  WriteImage(src / "valid/images/p2.jpeg", 80, 60, 2);
  WriteText(src / "valid/labels/p2.txt", "0 0.4 0.4 0.2 0.2\n");
  WriteImage(src / "test/images/p3.jpg", 80, 60, 3);
  WriteText(src / "test/labels/p3.txt", "0 0.6 0.6 0.2 0.2\n");
  auto r = Import("rf", src);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  Manifest m = ManifestOf(r->version);
  ASSERT_EQ(m.images.size(), 3u);
  EXPECT_EQ(r->version.stats.splits["train"].images, 1);
  EXPECT_EQ(r->version.stats.splits["val"].images, 1);
  EXPECT_EQ(r->version.stats.splits["test"].images, 1);
  EXPECT_EQ(r->version.stats.total.boxes, 3);
  EXPECT_TRUE(r->version.issues.empty());
}

// A Roboflow export as published: data.yaml beside dataset/, with split
// paths that are right for nobody's layout.
void WriteRoboflowBesideDataset(const fs::path& src, const std::string& names) {
  WriteText(src / "data.yaml",
            "path : ../data/dataset\ntrain: ../train/images\nval: ../valid/images\n"
            "test: ../test/images\n\nnc: 1\nnames: " +
                names + "\n\nroboflow:\n  version: 2\n");
  WriteText(src / "README.roboflow.txt", "exported\n");
  WriteImage(src / "dataset/train/images/a_jpg.rf.1.jpg", 64, 48, 1);
  WriteText(src / "dataset/train/labels/a_jpg.rf.1.txt", "0 0.5 0.5 0.2 0.2\n0 0.2 0.2 0.1 0.1\n");
  WriteImage(src / "dataset/train/images/b_jpg.rf.2.jpg", 64, 48, 2);
  WriteText(src / "dataset/train/labels/b_jpg.rf.2.txt", "0 0.5 0.5 0.2 0.2\n");
  WriteImage(src / "dataset/valid/images/c.jpg", 64, 48, 3);
  WriteText(src / "dataset/valid/labels/c.txt", "0 0.4 0.4 0.2 0.2\n");
  WriteImage(src / "dataset/test/images/d.jpg", 64, 48, 4);
  WriteText(src / "dataset/test/labels/d.txt", "");
}

TEST_F(Formats, RoboflowExportWithDataYamlBesideDatasetFolder) {
  fs::path src = dir_ / "rf";
  WriteRoboflowBesideDataset(src, "['Pothole']");
  auto r = Import("rf", src);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  Manifest m = ManifestOf(r->version);
  EXPECT_EQ(m.classes, (std::vector<std::string>{"Pothole"}));
  EXPECT_EQ(r->version.stats.splits["train"].images, 2);
  EXPECT_EQ(r->version.stats.splits["val"].images, 1);
  EXPECT_EQ(r->version.stats.splits["test"].images, 1);
  EXPECT_EQ(r->version.stats.total.boxes, 4);
  EXPECT_EQ(r->version.stats.total.background, 1);
  ASSERT_EQ(m.images.size(), 4u);
  EXPECT_EQ(m.images[0].name, "a_jpg.rf.1.jpg");
  // One warning per split, naming what data.yaml said and what was used.
  int guessed = 0;
  for (const SourceIssue& i : r->version.issues) {
    EXPECT_EQ(i.kind, "split_folder_guessed") << i.message;
    EXPECT_EQ(i.file, "data.yaml");
    ++guessed;
  }
  EXPECT_EQ(guessed, 3);
  ASSERT_FALSE(r->version.issues.empty());
  const std::string& msg = r->version.issues[0].message;
  EXPECT_NE(msg.find("'../train/images'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("used dataset/train/images"), std::string::npos) << msg;
}

TEST_F(Formats, SubfolderOfAnExportTakesClassNamesFromTheParentDataYaml) {
  fs::path src = dir_ / "rf";
  WriteRoboflowBesideDataset(src, "{0: pothole, 1: crack}");
  WriteText(src / "data.yaml",
            "train: ../train/images\nval: ../valid/images\nnames:\n  0: pothole\n  1: crack\n");
  auto r = Import("sub", src / "dataset");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  Manifest m = ManifestOf(r->version);
  EXPECT_EQ(m.classes, (std::vector<std::string>{"pothole", "crack"}));
  EXPECT_EQ(r->version.stats.splits["train"].images, 2);
  EXPECT_EQ(r->version.stats.splits["val"].images, 1);
  EXPECT_EQ(r->version.stats.splits["test"].images, 1);
  EXPECT_TRUE(HasIssue(r->version, "classes_from_parent_yaml", "../data.yaml"));
  // A folder with its own names does not look up.
  WriteText(src / "dataset/classes.txt", "hole\n");
  auto own = Import("own", src / "dataset");
  ASSERT_TRUE(own.ok()) << own.status().ToString();
  EXPECT_EQ(ManifestOf(own->version).classes, (std::vector<std::string>{"hole"}));
  EXPECT_FALSE(HasIssue(own->version, "classes_from_parent_yaml", ""));
}

TEST_F(Formats, DataYamlWithNothingToFindNamesThePathsTried) {
  fs::path src = dir_ / "lost";
  WriteText(src / "data.yaml",
            "path: ../elsewhere\ntrain: ../train/images\nval: images/val\nnames: [dent]\n");
  WriteImage(src / "pictures/a.jpg");  // not where any convention puts a split
  auto r = Import("lost", src);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidInput);
  const std::string& msg = r.status().message();
  std::vector<std::string> parts = {"'../train/images'",
                                    (dir_ / "elsewhere/train/images").string(),
                                    (dir_ / "train/images").string(),
                                    " train/images",
                                    "'images/val'",
                                    " images/val",
                                    "valid|val/images"};
  for (const std::string& part : parts) {
    EXPECT_NE(msg.find(part), std::string::npos) << part << " not in: " << msg;
  }
}

TEST_F(Formats, CocoWithSparseIdsStartingAtOneAndRoboflowSupercategory) {
  fs::path src = dir_ / "coco";
  WriteImage(src / "train/a.jpg", 100, 50, 1);
  WriteImage(src / "train/b.jpg", 100, 50, 2);
  WriteText(src / "train/_annotations.coco.json", R"({
    "images": [{"id": 7, "file_name": "a.jpg", "width": 100, "height": 50},
               {"id": 9, "file_name": "b.jpg", "width": 100, "height": 50}],
    "categories": [{"id": 0, "name": "car-damage", "supercategory": "none"},
                   {"id": 3, "name": "dent", "supercategory": "car-damage"},
                   {"id": 17, "name": "scratch", "supercategory": "car-damage"}],
    "annotations": [{"id": 1, "image_id": 7, "category_id": 17, "bbox": [10, 5, 20, 10], "iscrowd": 0},
                    {"id": 2, "image_id": 7, "category_id": 3, "bbox": [50, 25, 50, 25], "iscrowd": 1}]
  })");
  auto r = Import("coco", src);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  Manifest m = ManifestOf(r->version);
  EXPECT_EQ(m.classes, (std::vector<std::string>{"dent", "scratch"}));
  ASSERT_EQ(m.images.size(), 2u);
  const ImageEntry& a = m.images[0];
  ASSERT_EQ(a.boxes.size(), 2u);
  EXPECT_EQ(a.boxes[0].class_id, 1);  // scratch
  EXPECT_DOUBLE_EQ(a.boxes[0].x1, 0.1);
  EXPECT_DOUBLE_EQ(a.boxes[0].y2, 0.3);
  EXPECT_EQ(a.boxes[1].class_id, 0);  // dent
  EXPECT_TRUE(a.boxes[1].difficult);
  EXPECT_TRUE(m.images[1].labelled);  // listed without annotations: background
  EXPECT_EQ(m.images[1].split, Split::kTrain);
}

TEST_F(Formats, VocWithDifficultFlagsAndImageSets) {
  fs::path src = dir_ / "voc";
  WriteImage(src / "JPEGImages/x1.jpg", 200, 100, 1);
  WriteImage(src / "JPEGImages/x2.jpg", 200, 100, 2);
  WriteText(src / "Annotations/x1.xml", R"(<annotation><filename>x1.jpg</filename>
    <size><width>200</width><height>100</height><depth>3</depth></size>
    <object><name>pothole</name><difficult>1</difficult>
      <bndbox><xmin>11</xmin><ymin>21</ymin><xmax>60</xmax><ymax>70</ymax></bndbox></object>
    <object><name>crack</name><difficult>0</difficult>
      <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>200</xmax><ymax>100</ymax></bndbox></object>
  </annotation>)");
  WriteText(src / "ImageSets/Main/train.txt", "x1\n");
  WriteText(src / "ImageSets/Main/val.txt", "x2\n");
  auto r = Import("voc", src);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  Manifest m = ManifestOf(r->version);
  EXPECT_EQ(m.classes, (std::vector<std::string>{"crack", "pothole"}));
  ASSERT_EQ(m.images.size(), 2u);
  const ImageEntry& x1 = m.images[0];
  EXPECT_EQ(x1.split, Split::kTrain);
  ASSERT_EQ(x1.boxes.size(), 2u);
  EXPECT_EQ(x1.boxes[0].class_id, 1);
  EXPECT_TRUE(x1.boxes[0].difficult);
  EXPECT_DOUBLE_EQ(x1.boxes[0].x1, 0.05);  // 1-based 11 -> 10 px
  EXPECT_DOUBLE_EQ(x1.boxes[1].x2, 1.0);   // full width, inclusive
  EXPECT_EQ(m.images[1].split, Split::kVal);
  EXPECT_FALSE(m.images[1].labelled);  // x2 has no XML
}

// A JPEG whose EXIF says "rotate 90° CW" (orientation 6): the displayed image
// is taller than wide, and labels are relative to the displayed image.
std::string JpegWithOrientation(int w, int h, int orientation) {
  cv::Mat m(h, w, CV_8UC3, cv::Scalar(10, 200, 30));
  std::vector<unsigned char> jpg;
  cv::imencode(".jpg", m, jpg);
  return testing::WithExifOrientation(std::string(jpg.begin(), jpg.end()), orientation);
}

TEST_F(Formats, ExifOrientationGivesTheDisplayedSize) {
  auto h = ProbeImageHeader(JpegWithOrientation(64, 32, 6), "x.jpg");
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(h->exif_orientation, 6);
  EXPECT_EQ(h->width, 32);
  EXPECT_EQ(h->height, 64);
  auto plain = ProbeImageHeader(JpegWithOrientation(64, 32, 1), "y.jpg");
  EXPECT_EQ(plain->width, 64);

  fs::path src = dir_ / "exif";
  WriteText(src / "data.yaml", "train: images/train\nnames: [dent]\n");
  WriteText(src / "images/train/r.jpg", JpegWithOrientation(64, 32, 6));
  WriteText(src / "labels/train/r.txt", "0 0.5 0.5 0.5 0.5\n");
  auto r = Import("exif", src);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  Manifest m = ManifestOf(r->version);
  EXPECT_EQ(m.images[0].width, 32);
  EXPECT_EQ(m.images[0].height, 64);
}

TEST_F(Formats, BareFolderWithoutYamlGetsDeterministicHashSplits) {
  fs::path src = dir_ / "bare";
  for (int i = 0; i < 40; ++i) {
    WriteImage(src / ("img" + std::to_string(i) + (i % 3 ? ".jpg" : ".PNG")), 32, 32, i);
    WriteText(src / ("img" + std::to_string(i) + ".txt"), "0 0.5 0.5 0.5 0.5\n");
  }
  WriteText(src / "classes.txt", "pothole\n");
  ImportOptions o;
  o.name = "bare";
  o.source = src;
  o.format = "yolo";
  o.ratios = {0.5, 0.25, 0.25};
  auto r = ImportDataset(*ws_, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const auto& s = r->version.stats.splits;
  EXPECT_EQ(r->version.stats.total.images, 40);
  EXPECT_GT(s.at("train").images, 10);
  EXPECT_GT(s.at("val").images + s.at("test").images, 8);
  EXPECT_EQ(r->version.stats.classes, std::vector<std::string>{"pothole"});
  // Same content in a new folder: same splits, same id.
  fs::copy(src, dir_ / "bare2", fs::copy_options::recursive);
  o.source = dir_ / "bare2";
  o.name = "bare2";
  auto r2 = ImportDataset(*ws_, o);
  EXPECT_EQ(r2->version.manifest_sha, r->version.manifest_sha);
}

TEST_F(Formats, BadLabelLinesAreReportedWithFileAndLineAndTheRestImports) {
  fs::path src = dir_ / "bad";
  WriteText(src / "data.yaml", "train: images/train\nnames: [scratch]\n");
  WriteImage(src / "images/train/a.jpg");
  WriteText(src / "labels/train/a.txt",
            "0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2\n0 0.5 abc 0.2 0.2\n-1 0.5 0.5 0.1 0.1\n"
            "0 1.5 0.5 0.2 0.2\n7 0.5 0.5 0.1 0.1\n");
  WriteText(src / "labels/train/ghost.txt", "0 0.5 0.5 0.1 0.1\n");
  auto r = Import("bad", src);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const VersionInfo& v = r->version;
  EXPECT_TRUE(HasIssue(v, "label_parse", "labels/train/a.txt", 2));
  EXPECT_TRUE(HasIssue(v, "label_parse", "labels/train/a.txt", 3));
  EXPECT_TRUE(HasIssue(v, "label_parse", "labels/train/a.txt", 4));
  EXPECT_TRUE(HasIssue(v, "orphan_label", "labels/train/ghost.txt"));
  // Out-of-range coordinates and unknown classes are kept for validation.
  Manifest m = ManifestOf(v);
  ASSERT_EQ(m.images[0].boxes.size(), 3u);
  auto report = ValidateVersion(*ws_, v, {});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_FALSE(report->trainable());
  auto failed = [&](const std::string& type) {
    for (const auto& res : report->results)
      if (res.type == type) return !res.passed;
    return false;
  };
  EXPECT_TRUE(failed("labels_parse"));
  EXPECT_TRUE(failed("boxes_inside_image"));
  EXPECT_TRUE(failed("class_ids_known"));
  EXPECT_TRUE(failed("labels_match_images"));
  auto again = ResolveVersion(*ws_, {"bad", 1});
  EXPECT_EQ(again->validation_status, "failed");
}

TEST_F(Formats, CorruptAndTruncatedImagesAreKeptAndNamed) {
  fs::path src = dir_ / "corrupt";
  WriteText(src / "data.yaml", "train: images/train\nnames: [dent]\n");
  WriteImage(src / "images/train/good.jpg");
  WriteText(src / "images/train/garbage.jpg", "this is not a jpeg at all");
  WriteImage(src / "images/train/cut.jpg", 64, 48, 5);
  auto full = ReadFile(src / "images/train/cut.jpg").value();
  WriteText(src / "images/train/cut.jpg", full.substr(0, full.size() / 2));
  WriteText(src / "images/train/empty.png", "");
  auto r = Import("corrupt", src);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->images, 4);
  EXPECT_TRUE(HasIssue(r->version, "image_unreadable", "garbage.jpg"));
  EXPECT_TRUE(HasIssue(r->version, "image_unreadable", "empty.png"));
  auto report = ValidateVersion(*ws_, r->version, {});
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->trainable());
  std::string table = ReportToTable(*report, 10);
  EXPECT_NE(table.find("cut.jpg"), std::string::npos) << table;
  EXPECT_NE(table.find("garbage.jpg"), std::string::npos) << table;
}

TEST_F(Formats, SymlinkOutsideTheSourceIsNotFollowed) {
  fs::path src = dir_ / "links";
  WriteText(src / "data.yaml", "train: images/train\nnames: [dent]\n");
  WriteImage(src / "images/train/ok.jpg");
  WriteImage(dir_ / "secret/outside.jpg", 64, 48, 9);
  fs::create_symlink(dir_ / "secret/outside.jpg", src / "images/train/link.jpg");
  auto r = Import("links", src);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->images, 1);
  EXPECT_TRUE(HasIssue(r->version, "symlink_outside", "link.jpg"));
}

TEST_F(Formats, WholeSourceProblemsAreRefusedWithClearErrors) {
  // Path that does not exist.
  auto missing = Import("m", dir_ / "nope");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("nope"), std::string::npos);
  // Empty folder.
  fs::create_directories(dir_ / "empty");
  auto empty = Import("e", dir_ / "empty");
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(empty.status().message().find("empty"), std::string::npos);
  // Malformed YAML: names the file and line.
  WriteText(dir_ / "y/data.yaml", "train: images/train\nnames: [a, b\nval: x\n");
  auto yaml = Import("y", dir_ / "y");
  EXPECT_EQ(yaml.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(yaml.status().message().find("data.yaml:"), std::string::npos)
      << yaml.status().ToString();
  // Truncated COCO JSON: names the file and the byte.
  WriteImage(dir_ / "c/a.jpg");
  WriteText(dir_ / "c/ann.json", R"({"images": [{"id": 1, "file_name": "a.jpg"}], "categ)");
  auto coco = Import("c", dir_ / "c");
  EXPECT_EQ(coco.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(coco.status().message().find("ann.json"), std::string::npos);
  EXPECT_NE(coco.status().message().find("byte"), std::string::npos);
  // COCO field of the wrong type.
  WriteText(dir_ / "c2/ann.json", R"({"images": [{"id": 1, "file_name": "a.jpg", "width": "wide"}],
    "categories": [{"id": 1, "name": "dent"}], "annotations": []})");
  WriteImage(dir_ / "c2/a.jpg");
  auto coco2 = Import("c2", dir_ / "c2");
  EXPECT_EQ(coco2.status().code(), StatusCode::kInvalidInput);
  // Malformed VOC XML: recorded, the image kept unlabelled.
  WriteImage(dir_ / "v/JPEGImages/a.jpg");
  WriteText(dir_ / "v/Annotations/a.xml", "<annotation><filename>a.jpg</filename><object>");
  auto voc = Import("v", dir_ / "v");
  ASSERT_TRUE(voc.ok()) << voc.status().ToString();
  EXPECT_TRUE(HasIssue(voc->version, "file_parse", "Annotations/a.xml"));
  // Bad dataset names.
  EXPECT_EQ(Import("../evil", dir_ / "v").status().code(), StatusCode::kInvalidInput);
  EXPECT_EQ(Import("", dir_ / "v").status().code(), StatusCode::kInvalidInput);
  // Nothing half-written: only the VOC import made a version.
  auto all = ListVersions(*ws_);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 1u);
}

TEST_F(Formats, ExportRoundTripsInEveryFormat) {
  fs::path src = dir_ / "src";
  WriteText(src / "data.yaml", "train: images/train\nval: images/val\nnames: [scratch, dent]\n");
  for (int i = 0; i < 6; ++i) {
    std::string split = i < 4 ? "train" : "val";
    WriteImage(src / "images" / split / ("im" + std::to_string(i) + ".jpg"), 97, 61, i);
    if (i == 5) continue;  // unlabelled
    WriteText(src / "labels" / split / ("im" + std::to_string(i) + ".txt"),
              i == 3 ? "" : "0 0.333333 0.4 0.123457 0.2\n1 0.7 0.7 0.05 0.1\n");
  }
  auto first = Import("rt", src);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  for (const std::string fmt : {"yolo", "coco"}) {
    fs::path out = dir_ / ("out-" + fmt);
    ASSERT_TRUE(ExportDataset(*ws_, first->version, out, fmt).ok());
    auto back = Import("rt-" + fmt, out);
    ASSERT_TRUE(back.ok()) << fmt << ": " << back.status().ToString();
    EXPECT_EQ(back->version.manifest_sha, first->version.manifest_sha) << fmt;
    // Exporting twice into the same place is refused, not merged.
    EXPECT_EQ(ExportDataset(*ws_, first->version, out, fmt).code(), StatusCode::kAlreadyExists);
  }
  EXPECT_EQ(ExportDataset(*ws_, first->version, dir_ / "x", "voc").code(),
            StatusCode::kInvalidInput);
}

}  // namespace
}  // namespace detops
