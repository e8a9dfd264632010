#include "orchestrate/inbox.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>

#include "testing/testutil.h"

namespace detops {
namespace {
namespace fs = std::filesystem;
using testing::TempDir;
using testing::WriteText;

constexpr int64_t kSecond = 1000;

class InboxTest : public ::testing::Test {
 protected:
  InboxOptions Options() const { return {root_, 30, {}}; }
  fs::path Drop(const std::string& dataset) const { return root_ / dataset; }
  // The files under `folder`, relative, sorted.
  static std::vector<std::string> Files(const fs::path& folder) {
    std::vector<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(folder)) {
      if (e.is_regular_file()) out.push_back(fs::relative(e.path(), folder).generic_string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  static std::vector<InboxBatch> Poll(InboxWatcher& w, int64_t now_ms) {
    auto r = w.Poll(now_ms);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::vector<InboxBatch>{};
  }

  TempDir tmp_;
  fs::path root_ = tmp_ / "inbox";
};

TEST_F(InboxTest, MarkerClaimsAtOnce) {
  WriteText(Drop("cars") / "images/a.jpg", "jpeg a");
  WriteText(Drop("cars") / "labels/a.txt", "0 0.5 0.5 0.1 0.1\n");
  WriteText(Drop("cars") / kInboxReadyMarker, "");
  InboxWatcher w(Options());
  auto batches = Poll(w, 0);
  ASSERT_EQ(batches.size(), 1u);
  const InboxBatch& b = batches[0];
  EXPECT_EQ(b.dataset, "cars");
  EXPECT_TRUE(b.by_marker);
  EXPECT_EQ(b.folder.parent_path(), root_ / ".processing");
  EXPECT_EQ(b.folder.filename().string().rfind("cars-", 0), 0u) << b.folder;
  EXPECT_EQ(b.fingerprint.files, 3);
  EXPECT_EQ(b.fingerprint.bytes, 6 + 18);
  EXPECT_EQ(Files(b.folder), (std::vector<std::string>{"_READY", "images/a.jpg", "labels/a.txt"}));
  EXPECT_FALSE(fs::exists(Drop("cars")));
  EXPECT_TRUE(w.Pending(0).empty());
  EXPECT_TRUE(w.rejected.empty());
  EXPECT_TRUE(Poll(w, 0).empty());
}

TEST_F(InboxTest, WithoutMarkerClaimedAfterQuietPeriod) {
  WriteText(Drop("cars") / "a.jpg", "jpeg a");
  InboxWatcher w(Options());
  EXPECT_TRUE(Poll(w, 0).empty());
  EXPECT_EQ(w.Pending(0), (std::map<std::string, double>{{"cars", 30.0}}));
  EXPECT_TRUE(Poll(w, 10 * kSecond).empty());
  EXPECT_DOUBLE_EQ(w.Pending(10 * kSecond).at("cars"), 20.0);
  EXPECT_TRUE(Poll(w, 30 * kSecond - 1).empty());
  EXPECT_TRUE(fs::exists(Drop("cars") / "a.jpg"));
  auto batches = Poll(w, 30 * kSecond);
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_FALSE(batches[0].by_marker);
  EXPECT_EQ(batches[0].dataset, "cars");
  EXPECT_EQ(Files(batches[0].folder), std::vector<std::string>{"a.jpg"});
  EXPECT_TRUE(w.Pending(30 * kSecond).empty());
}

// Files arrive between polls, each poll inside the quiet period of the last
// change: the folder is taken once, whole, after the last change.
TEST_F(InboxTest, SlowCopyClaimedOnceWhole) {
  InboxWatcher w(Options());
  WriteText(Drop("cars") / "images/1.jpg", "one");
  EXPECT_TRUE(Poll(w, 0).empty());
  WriteText(Drop("cars") / "images/2.jpg", "two");  // a new name
  EXPECT_TRUE(Poll(w, 20 * kSecond).empty());
  WriteText(Drop("cars") / "images/2.jpg", "two, longer");  // a new size
  EXPECT_TRUE(Poll(w, 40 * kSecond).empty());
  WriteText(Drop("cars") / "labels/1.txt", "0 0.5 0.5 0.1 0.1\n");  // a new folder
  EXPECT_TRUE(Poll(w, 60 * kSecond).empty());
  EXPECT_DOUBLE_EQ(w.Pending(60 * kSecond).at("cars"), 30.0);
  EXPECT_TRUE(Poll(w, 89 * kSecond).empty());
  auto batches = Poll(w, 90 * kSecond);
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(Files(batches[0].folder),
            (std::vector<std::string>{"images/1.jpg", "images/2.jpg", "labels/1.txt"}));
  EXPECT_EQ(batches[0].fingerprint.files, 3);
  EXPECT_TRUE(Poll(w, 200 * kSecond).empty());
}

TEST_F(InboxTest, FilesAfterTheClaimFormANewBatch) {
  InboxWatcher w(Options());
  WriteText(Drop("cars") / "a.jpg", "a");
  WriteText(Drop("cars") / kInboxReadyMarker, "");
  auto first = Poll(w, 0);
  ASSERT_EQ(first.size(), 1u);
  WriteText(Drop("cars") / "b.jpg", "b");  // the copy goes on into a new folder
  EXPECT_TRUE(Poll(w, 1 * kSecond).empty());
  auto second = Poll(w, 31 * kSecond);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_NE(second[0].folder, first[0].folder);
  EXPECT_EQ(second[0].dataset, "cars");
  EXPECT_EQ(Files(first[0].folder), (std::vector<std::string>{"_READY", "a.jpg"}));
  EXPECT_EQ(Files(second[0].folder), std::vector<std::string>{"b.jpg"});
}

TEST_F(InboxTest, IgnoresDotFoldersEmptyFoldersAndFiles) {
  for (const char* dot : {".processing/cars-1", ".done/cars-2", ".failed/cars-3", ".hidden"}) {
    WriteText(root_ / dot / "a.jpg", "a");
    WriteText(root_ / dot / kInboxReadyMarker, "");
  }
  fs::create_directories(Drop("empty"));
  fs::create_directories(Drop("only-folders") / "images/train");
  WriteText(root_ / "notes.txt", "a file beside the folders");
  InboxWatcher w(Options());
  EXPECT_TRUE(Poll(w, 0).empty());
  EXPECT_TRUE(Poll(w, 100 * kSecond).empty());
  EXPECT_TRUE(w.Pending(100 * kSecond).empty());
  EXPECT_TRUE(w.rejected.empty());
  EXPECT_TRUE(fs::exists(root_ / ".processing/cars-1/a.jpg"));
  EXPECT_TRUE(fs::exists(Drop("empty")));
  // An empty folder that fills up starts its quiet period then.
  WriteText(Drop("empty") / "a.jpg", "a");
  EXPECT_TRUE(Poll(w, 110 * kSecond).empty());
  EXPECT_EQ(Poll(w, 140 * kSecond).size(), 1u);
}

TEST_F(InboxTest, InvalidNameReportedOnceAndLeftInPlace) {
  WriteText(Drop("bad name") / "a.jpg", "a");
  WriteText(Drop("bad name") / kInboxReadyMarker, "");
  WriteText(Drop("-leading-dash") / "a.jpg", "a");
  WriteText(Drop("good") / "a.jpg", "a");
  WriteText(Drop("good") / kInboxReadyMarker, "");
  InboxWatcher w(Options());
  auto batches = Poll(w, 0);
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0].dataset, "good");
  ASSERT_EQ(w.rejected.size(), 2u);
  std::sort(w.rejected.begin(), w.rejected.end());
  EXPECT_EQ(w.rejected[0].rfind("-leading-dash: ", 0), 0u) << w.rejected[0];
  EXPECT_EQ(w.rejected[1].rfind("bad name: ", 0), 0u) << w.rejected[1];
  EXPECT_NE(w.rejected[1].find("expected a letter or digit"), std::string::npos);
  EXPECT_TRUE(Poll(w, 100 * kSecond).empty());
  EXPECT_EQ(w.rejected.size(), 2u);
  EXPECT_TRUE(fs::exists(Drop("bad name") / "a.jpg"));
  EXPECT_TRUE(fs::exists(Drop("-leading-dash") / "a.jpg"));
  EXPECT_TRUE(w.Pending(100 * kSecond).empty());
}

TEST_F(InboxTest, SettleMovesToDoneOrFailedWithAResult) {
  WriteText(Drop("cars") / "a.jpg", "a");
  WriteText(Drop("cars") / kInboxReadyMarker, "");
  WriteText(Drop("my-set-2") / "a.jpg", "a");
  WriteText(Drop("my-set-2") / kInboxReadyMarker, "");
  InboxWatcher w(Options());
  auto batches = Poll(w, 0);
  ASSERT_EQ(batches.size(), 2u);
  std::sort(batches.begin(), batches.end(),
            [](const InboxBatch& a, const InboxBatch& b) { return a.dataset < b.dataset; });

  auto done = SettleInboxBatch(root_, batches[0].folder, true, "imported 1 image", 42);
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(*done, root_ / ".done" / batches[0].folder.filename());
  EXPECT_FALSE(fs::exists(batches[0].folder));
  EXPECT_TRUE(fs::exists(*done / "a.jpg"));
  auto text = ReadFile(*done / "detops-result.json");
  ASSERT_TRUE(text.ok());
  auto json = ParseJson(*text, "detops-result.json");
  ASSERT_TRUE(json.ok());
  EXPECT_EQ((*json)["dataset"], "cars");
  EXPECT_EQ((*json)["ok"], true);
  EXPECT_EQ((*json)["reason"], "imported 1 image");
  EXPECT_EQ((*json)["pipeline_run"], 42);
  EXPECT_FALSE((*json)["at"].get<std::string>().empty());

  // A folder of the same name already there: the batch takes another name.
  fs::create_directories(root_ / ".failed" / batches[1].folder.filename() / "older");
  auto failed = SettleInboxBatch(root_, batches[1].folder, false, "train: out of memory", 7);
  ASSERT_TRUE(failed.ok()) << failed.status().ToString();
  EXPECT_EQ(failed->parent_path(), root_ / ".failed");
  EXPECT_EQ(failed->filename().string(), batches[1].folder.filename().string() + "-2");
  auto failed_json = ParseJson(*ReadFile(*failed / "detops-result.json"), "result");
  ASSERT_TRUE(failed_json.ok());
  EXPECT_EQ((*failed_json)["dataset"], "my-set-2");
  EXPECT_EQ((*failed_json)["ok"], false);
  EXPECT_EQ((*failed_json)["reason"], "train: out of memory");

  EXPECT_EQ(SettleInboxBatch(root_, batches[0].folder, true, "", 1).status().code(),
            StatusCode::kNotFound);
  fs::create_directories(tmp_ / "elsewhere");
  EXPECT_EQ(SettleInboxBatch(root_, tmp_ / "elsewhere", true, "", 1).status().code(),
            StatusCode::kInvalidInput);
  // The settled folders are dot-folders: the watcher leaves them alone.
  EXPECT_TRUE(Poll(w, 100 * kSecond).empty());
}

TEST_F(InboxTest, FingerprintSeesNamesSizesAndTimes) {
  const fs::path folder = tmp_ / "f";
  WriteText(folder / "a.jpg", "aaaa");
  WriteText(folder / "sub/b.txt", "bb");
  auto base = FingerprintFolder(folder);
  ASSERT_TRUE(base.ok());
  EXPECT_EQ(base->files, 2);
  EXPECT_EQ(base->bytes, 6);
  EXPECT_EQ(base->digest.size(), 64u);
  EXPECT_EQ(FingerprintFolder(folder)->digest, base->digest);

  WriteText(folder / "a.jpg", "aaab");  // same size: only the mtime may differ
  const auto t = fs::last_write_time(folder / "a.jpg");
  fs::last_write_time(folder / "a.jpg", t - std::chrono::hours(1));
  const std::string older = FingerprintFolder(folder)->digest;
  EXPECT_NE(older, base->digest);
  fs::last_write_time(folder / "a.jpg", t - std::chrono::hours(2));
  EXPECT_NE(FingerprintFolder(folder)->digest, older);

  const std::string before_rename = FingerprintFolder(folder)->digest;
  fs::rename(folder / "sub/b.txt", folder / "sub/c.txt");
  EXPECT_NE(FingerprintFolder(folder)->digest, before_rename);

  EXPECT_EQ(FingerprintFolder(tmp_ / "missing").status().code(), StatusCode::kNotFound);
  fs::create_directories(tmp_ / "empty/sub");
  auto empty = FingerprintFolder(tmp_ / "empty");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->files, 0);
}

// Watcher B saw the folder too, but A's rename took it: B finds nothing,
// and a folder made again under the name starts a new quiet period for B.
TEST_F(InboxTest, TheRenameDecidesBetweenWatchers) {
  InboxWatcher a(Options()), b(Options());
  WriteText(Drop("cars") / "a.jpg", "a");
  EXPECT_TRUE(Poll(a, 0).empty());
  EXPECT_TRUE(Poll(b, 0).empty());
  auto taken = Poll(a, 30 * kSecond);
  ASSERT_EQ(taken.size(), 1u);
  WriteText(Drop("cars") / "a.jpg", "a");  // the same content, copied again
  EXPECT_TRUE(Poll(b, 30 * kSecond).empty());
  EXPECT_TRUE(fs::exists(Drop("cars") / "a.jpg"));
  EXPECT_EQ(Poll(b, 60 * kSecond).size(), 1u);
}

// Two watchers scanning one inbox at the same moment, in two threads: every
// batch is claimed exactly once, with all its files.
TEST_F(InboxTest, TwoWatchersNeverClaimTheSameBatch) {
  constexpr int kFolders = 40;
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < kFolders; ++i) {
      const fs::path folder = Drop("set" + std::to_string(i));
      WriteText(folder / "images/a.jpg", "a");
      WriteText(folder / "labels/a.txt", "0 0.5 0.5 0.1 0.1\n");
      WriteText(folder / kInboxReadyMarker, "");
    }
    InboxWatcher w1(Options()), w2(Options());
    std::vector<InboxBatch> got1, got2;
    std::atomic<int> ready{0};
    auto run = [&](InboxWatcher& w, std::vector<InboxBatch>& got) {
      ++ready;
      while (ready < 2) std::this_thread::yield();
      auto r = w.Poll(0);
      if (r.ok()) got = *r;
    };
    std::thread t1(run, std::ref(w1), std::ref(got1));
    std::thread t2(run, std::ref(w2), std::ref(got2));
    t1.join();
    t2.join();
    for (const auto* w : {&w1, &w2}) {
      EXPECT_TRUE(w->rejected.empty()) << "round " << round << ": " << w->rejected.front();
    }
    std::multiset<std::string> datasets;
    std::set<fs::path> folders;
    for (const auto* got : {&got1, &got2}) {
      for (const InboxBatch& b : *got) {
        datasets.insert(b.dataset);
        folders.insert(b.folder);
        EXPECT_EQ(Files(b.folder),
                  (std::vector<std::string>{"_READY", "images/a.jpg", "labels/a.txt"}));
      }
    }
    ASSERT_EQ(datasets.size(), size_t{kFolders}) << "round " << round;
    EXPECT_EQ(std::set<std::string>(datasets.begin(), datasets.end()).size(), size_t{kFolders});
    EXPECT_EQ(folders.size(), size_t{kFolders});
  }
  EXPECT_EQ(std::distance(fs::directory_iterator(root_ / ".processing"), {}), 5 * kFolders);
}

TEST_F(InboxTest, MakesAMissingInbox) {
  InboxWatcher w(Options());
  EXPECT_TRUE(Poll(w, 0).empty());
  EXPECT_TRUE(fs::is_directory(root_));
}

}  // namespace
}  // namespace detops
