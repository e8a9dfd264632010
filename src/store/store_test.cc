#include "store/store.h"

#include <gtest/gtest.h>

#include <thread>

#include "testing/testutil.h"

namespace detops {
namespace {

using testing::TempDir;

TEST(Workspace, CreatesLayoutAndMigratesOnce) {
  TempDir dir;
  auto ws = Workspace::Open({dir / "ws"});
  ASSERT_TRUE(ws.ok()) << ws.status().ToString();
  EXPECT_TRUE(std::filesystem::exists(dir / "ws" / "detops.db"));
  EXPECT_TRUE(std::filesystem::is_directory(dir / "ws" / "blobs"));
  EXPECT_TRUE(std::filesystem::is_directory(dir / "ws" / "inbox"));
  int v = (*ws)->db().SchemaVersion();
  EXPECT_GE(v, 1);
  ws->reset();
  auto again = Workspace::Open({dir / "ws"});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->db().SchemaVersion(), v);
  auto journal = (*again)->db().Query("PRAGMA journal_mode");
  ASSERT_TRUE(journal.ok());
  EXPECT_EQ((*journal)[0].Text(0), "wal");
}

TEST(Workspace, RefusesMissingWhenNotCreatingAndAFileAsRoot) {
  TempDir dir;
  auto missing = Workspace::Open({dir / "nope", /*create=*/false});
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  testing::WriteText(dir / "file", "x");
  auto file = Workspace::Open({dir / "file"});
  EXPECT_EQ(file.status().code(), StatusCode::kInvalidInput);
}

TEST(Workspace, CorruptDatabaseIsAClearError) {
  TempDir dir;
  testing::WriteText(dir / "ws" / "detops.db", std::string(8192, 'x'));
  auto ws = Workspace::Open({dir / "ws"});
  ASSERT_FALSE(ws.ok());
  EXPECT_NE(ws.status().message().find("detops.db"), std::string::npos) << ws.status().ToString();
}

TEST(BlobStore, ContentAddressedAndDeduplicated) {
  TempDir dir;
  auto store = OpenFileBlobStore(dir / "blobs");
  ASSERT_TRUE(store.ok());
  auto a = (*store)->Put("hello");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
  EXPECT_TRUE(std::filesystem::exists(dir / "blobs" / "2c" / a->substr(2)));
  auto b = (*store)->Put("hello");
  EXPECT_EQ(*a, *b);
  EXPECT_EQ((*store)->List().size(), 1u);
  EXPECT_EQ(*(*store)->Get(*a), "hello");
  testing::WriteText(dir / "f.bin", "hello");
  EXPECT_EQ(*(*store)->PutFile(dir / "f.bin"), *a);
  EXPECT_EQ((*store)->Get(std::string(64, 'a')).status().code(), StatusCode::kNotFound);
  EXPECT_EQ((*store)->Get("../../etc/passwd").status().code(), StatusCode::kInvalidInput);
}

TEST(BlobStore, PutFileWithWrongHashIsCorruption) {
  TempDir dir;
  auto store = OpenFileBlobStore(dir / "blobs");
  testing::WriteText(dir / "f.bin", "changed");
  auto r = (*store)->PutFileWithHash(dir / "f.bin", std::string(64, 'b'));
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_TRUE((*store)->List().empty());
}

TEST(Database, TransactionRollsBackOnError) {
  TempDir dir;
  auto db = OpenSqlite({dir / "t.db"});
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE((*db)->Exec("CREATE TABLE t (x INTEGER)").ok());
  Status s = (*db)->InTransaction([&]() -> Status {
    RETURN_IF_ERROR((*db)->Exec("INSERT INTO t VALUES (?)", {int64_t{1}}));
    return Status::InvalidInput("stop");
  });
  EXPECT_EQ(s.code(), StatusCode::kInvalidInput);
  auto rows = (*db)->Query("SELECT count(*) FROM t");
  EXPECT_EQ((*rows)[0].Int(0), 0);
}

TEST(Database, ConcurrentWritersFromTwoConnectionsLoseNothing) {
  TempDir dir;
  {
    auto db = OpenSqlite({dir / "t.db"});
    ASSERT_TRUE((*db)->Exec("CREATE TABLE t (x INTEGER)").ok());
  }
  auto writer = [&](int base) {
    auto db = OpenSqlite({dir / "t.db"});
    for (int i = 0; i < 50; ++i) {
      Status s = (*db)->InTransaction(
          [&] { return (*db)->Exec("INSERT INTO t VALUES (?)", {int64_t{base + i}}); });
      EXPECT_TRUE(s.ok()) << s.ToString();
    }
  };
  std::thread a(writer, 0), b(writer, 1000);
  a.join();
  b.join();
  auto db = OpenSqlite({dir / "t.db"});
  EXPECT_EQ((*(*db)->Query("SELECT count(*) FROM t"))[0].Int(0), 100);
}

}  // namespace
}  // namespace detops
