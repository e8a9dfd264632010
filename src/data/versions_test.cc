// Versioning: idempotent imports, lineage, diffs, the stat cache.

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

void WriteImage(const fs::path& path, int seed) {
  fs::create_directories(path.parent_path());
  cv::Mat m(40, 50, CV_8UC3, cv::Scalar(seed * 13 % 255, 100, 50));
  cv::line(m, {0, seed % 40}, {49, 39 - seed % 40}, cv::Scalar(255, 255, 255), 2);
  cv::imwrite(path.string(), m);
}

class Versions : public ::testing::Test {
 protected:
  void SetUp() override {
    ws_ = Workspace::Open({dir_ / "ws"}).value();
    src_ = dir_ / "src";
    WriteText(src_ / "data.yaml", "train: images/train\nval: images/val\nnames: [pothole]\n");
    for (int i = 0; i < 5; ++i) {
      WriteImage(src_ / "images/train" / ("t" + std::to_string(i) + ".jpg"), i);
      WriteText(src_ / "labels/train" / ("t" + std::to_string(i) + ".txt"), "0 0.5 0.5 0.2 0.2\n");
    }
    WriteImage(src_ / "images/val/v0.jpg", 99);
    WriteText(src_ / "labels/val/v0.txt", "0 0.3 0.3 0.1 0.1\n");
  }
  ImportResult Import() {
    ImportOptions o;
    o.name = "roads";
    o.source = src_;
    auto r = ImportDataset(*ws_, o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : ImportResult{};
  }
  TempDir dir_;
  fs::path src_;
  std::unique_ptr<Workspace> ws_;
};

TEST_F(Versions, UnchangedReimportMakesNoVersionAndReadsNoImage) {
  ImportResult a = Import();
  EXPECT_TRUE(a.created);
  EXPECT_EQ(a.version.version, 1);
  EXPECT_EQ(a.images_hashed, 6);
  ImportResult b = Import();
  EXPECT_FALSE(b.created);
  EXPECT_EQ(b.version.version, 1);
  EXPECT_EQ(b.images_hashed, 0);  // every hash came from the stat cache
  EXPECT_EQ(ListVersions(*ws_, "roads")->size(), 1u);
}

TEST_F(Versions, ChangesMakeANewVersionLinkedToItsParentAndDiffNamesThem) {
  ImportResult a = Import();
  // Relabel one image, add one, remove one, touch one without changing it.
  WriteText(src_ / "labels/train/t0.txt", "0 0.5 0.5 0.2 0.2\n0 0.1 0.1 0.05 0.05\n");
  WriteImage(src_ / "images/train/t9.jpg", 9);
  WriteText(src_ / "labels/train/t9.txt", "");
  fs::remove(src_ / "images/train/t4.jpg");
  fs::remove(src_ / "labels/train/t4.txt");
  WriteImage(src_ / "images/train/t1.jpg", 1);  // same bytes, new mtime
  ImportResult b = Import();
  ASSERT_TRUE(b.created);
  EXPECT_EQ(b.version.version, 2);
  EXPECT_EQ(b.version.parent_version, 1);
  EXPECT_NE(b.version.manifest_sha, a.version.manifest_sha);
  EXPECT_EQ(b.images_hashed, 2);  // t1 (new mtime) and t9 (new)

  auto ma = LoadManifest(*ws_, a.version).value();
  auto mb = LoadManifest(*ws_, b.version).value();
  DatasetDiff d = DiffManifests(ma, mb);
  ASSERT_EQ(d.added.size(), 1u);
  EXPECT_EQ(d.added[0].name, "train/t9.jpg");
  ASSERT_EQ(d.removed.size(), 1u);
  EXPECT_EQ(d.removed[0].name, "train/t4.jpg");
  ASSERT_EQ(d.relabelled.size(), 1u);
  EXPECT_EQ(d.relabelled[0].name, "train/t0.jpg");
  EXPECT_EQ(d.class_counts["pothole"], std::make_pair(6, 6));  // +1 on t0, -1 with t4

  // Versions resolve by number and "latest"; both stay readable.
  EXPECT_EQ(ResolveVersion(*ws_, {"roads", 0})->version, 2);
  EXPECT_EQ(ResolveVersion(*ws_, {"roads", 1})->manifest_sha, a.version.manifest_sha);
  EXPECT_EQ(ResolveVersion(*ws_, {"roads", 3}).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ResolveVersion(*ws_, {"nope", 0}).status().code(), StatusCode::kNotFound);
}

TEST_F(Versions, ProgressReachesTheTotalWhenFilesCannotBeRead) {
  // A corrupt image (imported, named by validation) and one that vanishes
  // while the import runs (not imported): both count as done.
  WriteText(src_ / "images/train/t5.jpg", "not a jpeg");
  WriteText(src_ / "labels/train/t5.txt", "");
  std::vector<std::pair<size_t, size_t>> calls;
  ImportOptions o;
  o.name = "roads";
  o.source = src_;
  o.threads = 1;  // images in path order: t0 is hashed before t1 is read
  o.progress = [&](size_t done, size_t total) {
    if (calls.empty()) fs::remove(src_ / "images/train/t1.jpg");
    calls.push_back({done, total});
  };
  auto r = ImportDataset(*ws_, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(calls.size(), 7u);
  for (size_t k = 0; k < calls.size(); ++k) {
    EXPECT_EQ(calls[k], std::make_pair(k + 1, size_t{7}));
  }
  EXPECT_EQ(r->images, 6);  // all but the vanished t1
  bool named = false;
  for (const SourceIssue& i : r->version.issues) {
    named |= i.kind == "image_unreadable" && i.file == "images/train/t1.jpg";
  }
  EXPECT_TRUE(named);
}

TEST_F(Versions, ReferencesParse) {
  EXPECT_EQ(ParseDatasetRef("cars@12")->version, 12);
  EXPECT_EQ(ParseDatasetRef("cars")->version, 0);
  EXPECT_EQ(ParseDatasetRef("cars@latest")->version, 0);
  EXPECT_FALSE(ParseDatasetRef("cars@0").ok());
  EXPECT_FALSE(ParseDatasetRef("cars@x").ok());
  EXPECT_FALSE(ParseDatasetRef("a/b").ok());
}

TEST_F(Versions, ManifestTamperingIsDetected) {
  ImportResult a = Import();
  fs::path blob = ws_->blobs().PathOf(a.version.manifest_sha);
  fs::permissions(blob, fs::perms::owner_write, fs::perm_options::add);
  WriteText(blob, "{}");
  EXPECT_EQ(LoadManifest(*ws_, a.version).status().code(), StatusCode::kCorruption);
}

TEST_F(Versions, GarbageCollectionKeepsReferencedBlobsOnly) {
  ImportResult a = Import();
  auto stray = ws_->blobs().Put("left behind by a killed import");
  ASSERT_TRUE(stray.ok());
  auto removed = ws_->CollectGarbage();
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_EQ(*removed, 1);
  EXPECT_FALSE(ws_->blobs().Has(*stray));
  auto manifest = LoadManifest(*ws_, a.version);
  ASSERT_TRUE(manifest.ok());
  for (const ImageEntry& e : manifest->images) {
    EXPECT_TRUE(ws_->blobs().Has(e.blob));
  }
}

}  // namespace
}  // namespace detops
