#pragma once
// API tokens for the HTTP server (table api_tokens, migration 4).
//
// A token is a bearer string "dtk_<id>_<secret>": <id> is 12 lower-case hex
// characters (public: listed, used to revoke), <secret> 64 lower-case hex
// characters (256 random bits from OpenSSL's CSPRNG). Only the SHA-256 of the
// whole string is stored; the string is shown once, by CreateToken. Roles
// nest: admin can do what writer can, writer what reader can.

#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/core.h"
#include "store/store.h"

namespace detops {

enum class TokenRole { kReader, kWriter, kAdmin };
const char* TokenRoleName(TokenRole role);  // "reader", "writer", "admin"
std::optional<TokenRole> ParseTokenRole(std::string_view s);
// admin ⊇ writer ⊇ reader.
bool RoleAllows(TokenRole have, TokenRole need);

struct ApiToken {
  std::string id, name, created_at;
  std::string revoked_at;  // "" while valid
  TokenRole role = TokenRole::kReader;
};

struct NewToken {
  ApiToken token;
  std::string secret;  // the full bearer string; not stored anywhere
};

// InvalidInput for a name longer than 200 bytes or with control characters.
Result<NewToken> CreateToken(Workspace& ws, TokenRole role, const std::string& name);
// The token a bearer string names. NotFound "unknown token" for a
// malformed string, an unknown id or a wrong secret (hashes are compared in
// constant time); NotFound "token revoked" for a revoked one.
Result<ApiToken> VerifyToken(Workspace& ws, std::string_view bearer);
// Every token, revoked ones too, oldest first.
Result<std::vector<ApiToken>> ListTokens(Workspace& ws);
// NotFound for an unknown id. Revoking twice keeps the first time.
Status RevokeToken(Workspace& ws, const std::string& id);

// {"id", "name", "role", "created_at", "revoked_at"} (never the secret).
Json ApiTokenToJson(const ApiToken& t);

// VerifyToken with a short memory of successes, keyed by the SHA-256 of
// the bearer string, so that a busy server does not query the database on
// every authorized request. Failures are not cached (so unknown strings
// cannot fill the memory): they query every time. A revocation takes up to
// `ttl` to reach a server that verified the token recently; Clear() forgets
// everything at once. Thread-safe. The workspace must outlive the cache.
class TokenCache {
 public:
  explicit TokenCache(Workspace& ws, std::chrono::milliseconds ttl = std::chrono::seconds(5),
                      size_t max_entries = 4096);
  Result<ApiToken> Verify(std::string_view bearer);
  void Clear();

 private:
  struct Entry {
    ApiToken token;
    std::chrono::steady_clock::time_point expires;
  };
  Workspace& ws_;
  const std::chrono::milliseconds ttl_;
  const size_t max_entries_;
  std::mutex mu_;  // guards entries_
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace detops
