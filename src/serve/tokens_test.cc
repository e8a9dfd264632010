// API tokens: create, verify, wrong and malformed strings, revocation,
// roles, the cache, and that no secret reaches the database.

#include "serve/tokens.h"

#include <gtest/gtest.h>

#include <set>

#include "testing/testutil.h"

namespace detops {
namespace {

using testing::TempDir;

class TokensTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ws = Workspace::Open({dir_ / "ws"});
    ASSERT_TRUE(ws.ok()) << ws.status().ToString();
    ws_ = std::move(*ws);
  }

  NewToken Create(TokenRole role, const std::string& name = "") {
    auto t = CreateToken(*ws_, role, name);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return t.ok() ? *t : NewToken();
  }

  TempDir dir_;
  std::unique_ptr<Workspace> ws_;
};

TEST(TokenRoles, NamesAndNesting) {
  for (TokenRole r : {TokenRole::kReader, TokenRole::kWriter, TokenRole::kAdmin}) {
    EXPECT_EQ(ParseTokenRole(TokenRoleName(r)), r);
  }
  EXPECT_EQ(ParseTokenRole("Admin"), std::nullopt);
  EXPECT_EQ(ParseTokenRole(""), std::nullopt);
  EXPECT_TRUE(RoleAllows(TokenRole::kAdmin, TokenRole::kWriter));
  EXPECT_TRUE(RoleAllows(TokenRole::kAdmin, TokenRole::kReader));
  EXPECT_TRUE(RoleAllows(TokenRole::kWriter, TokenRole::kWriter));
  EXPECT_TRUE(RoleAllows(TokenRole::kWriter, TokenRole::kReader));
  EXPECT_FALSE(RoleAllows(TokenRole::kWriter, TokenRole::kAdmin));
  EXPECT_FALSE(RoleAllows(TokenRole::kReader, TokenRole::kWriter));
}

TEST_F(TokensTest, CreateAndVerify) {
  NewToken t = Create(TokenRole::kWriter, "ci uploader");
  ASSERT_EQ(t.token.id.size(), 12u);
  EXPECT_EQ(t.secret.rfind("dtk_" + t.token.id + "_", 0), 0u) << t.secret;
  EXPECT_EQ(t.secret.size(), 4 + 12 + 1 + 64u);
  EXPECT_EQ(t.token.role, TokenRole::kWriter);
  EXPECT_EQ(t.token.name, "ci uploader");
  EXPECT_FALSE(t.token.created_at.empty());

  auto v = VerifyToken(*ws_, t.secret);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->id, t.token.id);
  EXPECT_EQ(v->role, TokenRole::kWriter);
  EXPECT_EQ(v->name, "ci uploader");
  EXPECT_EQ(v->revoked_at, "");

  // Every token is different.
  std::set<std::string> secrets = {t.secret};
  for (int i = 0; i < 20; ++i) secrets.insert(Create(TokenRole::kReader).secret);
  EXPECT_EQ(secrets.size(), 21u);

  EXPECT_EQ(CreateToken(*ws_, TokenRole::kAdmin, "bad\nname").status().code(),
            StatusCode::kInvalidInput);
  EXPECT_EQ(CreateToken(*ws_, TokenRole::kAdmin, std::string(201, 'x')).status().code(),
            StatusCode::kInvalidInput);
}

TEST_F(TokensTest, WrongOrMalformedSecretsAreUnknown) {
  NewToken t = Create(TokenRole::kAdmin);
  std::string wrong = t.secret;
  wrong.back() = wrong.back() == 'a' ? 'b' : 'a';
  std::string other_id = t.secret;
  other_id[4] = other_id[4] == '0' ? '1' : '0';
  for (const std::string& bad :
       {wrong, other_id, std::string(""), std::string("dtk_"), t.secret + "x",
        t.secret.substr(0, t.secret.size() - 1), "Bearer " + t.secret, t.token.id,
        "xtk_" + t.secret.substr(4), std::string(t.secret).replace(16, 1, "-"),
        std::string(t.secret).replace(20, 1, "A")}) {
    auto v = VerifyToken(*ws_, bad);
    ASSERT_FALSE(v.ok()) << bad;
    EXPECT_EQ(v.status().code(), StatusCode::kNotFound) << bad;
    EXPECT_EQ(v.status().message(), "unknown token") << bad;
  }
}

TEST_F(TokensTest, RevokedTokensAreRefused) {
  NewToken a = Create(TokenRole::kAdmin, "a");
  NewToken b = Create(TokenRole::kReader, "b");
  ASSERT_TRUE(RevokeToken(*ws_, a.token.id).ok());
  auto v = VerifyToken(*ws_, a.secret);
  EXPECT_EQ(v.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(v.status().message(), "token revoked");
  EXPECT_TRUE(VerifyToken(*ws_, b.secret).ok());

  auto list = ListTokens(*ws_);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 2u);
  const ApiToken& ra = (*list)[0].id == a.token.id ? (*list)[0] : (*list)[1];
  EXPECT_FALSE(ra.revoked_at.empty());
  // Revoking again keeps the first time.
  ASSERT_TRUE(RevokeToken(*ws_, a.token.id).ok());
  auto again = ListTokens(*ws_);
  for (const ApiToken& t : *again) {
    if (t.id == a.token.id) {
      EXPECT_EQ(t.revoked_at, ra.revoked_at);
    }
  }
  EXPECT_EQ(RevokeToken(*ws_, "000000000000").code(), StatusCode::kNotFound);

  Json j = ApiTokenToJson(ra);
  EXPECT_EQ(j["role"], "admin");
  EXPECT_EQ(j["name"], "a");
  EXPECT_FALSE(j.contains("secret"));
}

TEST_F(TokensTest, SecretIsNeverStoredInClear) {
  NewToken t = Create(TokenRole::kWriter, "w");
  const std::string random_part = t.secret.substr(17);
  auto rows = ws_->db().Query(
      "SELECT id, secret_sha, role, name, created_at, revoked_at FROM "
      "api_tokens");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 1u);
  const SqlRow& r = (*rows)[0];
  EXPECT_EQ(r.Text(1), Sha256Hex(t.secret));
  for (size_t c = 0; c < r.cols.size(); ++c) {
    EXPECT_EQ(r.Text(c).find(random_part), std::string::npos) << "column " << c;
  }
  // Nor in the database files.
  for (const char* f : {"detops.db", "detops.db-wal"}) {
    auto bytes = ReadFile(dir_ / "ws" / f);
    if (!bytes.ok()) continue;
    EXPECT_EQ(bytes->find(random_part), std::string::npos) << f;
  }
}

TEST_F(TokensTest, CacheRemembersSuccessesUntilCleared) {
  NewToken t = Create(TokenRole::kWriter, "w");
  TokenCache cache(*ws_, std::chrono::hours(1));
  auto v = cache.Verify(t.secret);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->id, t.token.id);
  ASSERT_TRUE(RevokeToken(*ws_, t.token.id).ok());
  // Within the TTL the cached answer stands ...
  EXPECT_TRUE(cache.Verify(t.secret).ok());
  // ... failures are never cached ...
  EXPECT_EQ(cache.Verify(t.secret + "x").status().message(), "unknown token");
  // ... and Clear forgets.
  cache.Clear();
  EXPECT_EQ(cache.Verify(t.secret).status().message(), "token revoked");

  // No TTL: every call asks the database.
  NewToken u = Create(TokenRole::kReader);
  TokenCache uncached(*ws_, std::chrono::milliseconds(0));
  EXPECT_TRUE(uncached.Verify(u.secret).ok());
  ASSERT_TRUE(RevokeToken(*ws_, u.token.id).ok());
  EXPECT_EQ(uncached.Verify(u.secret).status().message(), "token revoked");

  // A full cache makes room.
  TokenCache small(*ws_, std::chrono::hours(1), 2);
  for (int i = 0; i < 5; ++i) {
    NewToken n = Create(TokenRole::kReader);
    EXPECT_TRUE(small.Verify(n.secret).ok());
    EXPECT_TRUE(small.Verify(n.secret).ok());
  }
}

}  // namespace
}  // namespace detops
