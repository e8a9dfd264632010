// API tokens: random bearer strings of which only the hash is stored.

#include "serve/tokens.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>

namespace detops {
namespace {

constexpr std::string_view kPrefix = "dtk_";
constexpr size_t kIdChars = 12;      // 6 random bytes
constexpr size_t kSecretBytes = 32;  // 256 bits
constexpr size_t kSecretChars = 64;  // hex: survives double-click selection
constexpr size_t kMaxNameBytes = 200;

Result<std::string> RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    return Status::Internal("the system random generator failed");
  }
  return out;
}

std::string Hex(std::string_view bytes) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

bool IsLowerHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// The id of a well-formed bearer string, else "".
std::string IdOf(std::string_view bearer) {
  if (bearer.size() != kPrefix.size() + kIdChars + 1 + kSecretChars) return "";
  if (bearer.substr(0, kPrefix.size()) != kPrefix) return "";
  std::string_view id = bearer.substr(kPrefix.size(), kIdChars);
  if (!IsLowerHex(id) || bearer[kPrefix.size() + kIdChars] != '_') return "";
  if (!IsLowerHex(bearer.substr(kPrefix.size() + kIdChars + 1))) return "";
  return std::string(id);
}

ApiToken RowToToken(const SqlRow& r) {
  ApiToken t;
  t.id = r.Text(0);
  t.role = ParseTokenRole(r.Text(1)).value_or(TokenRole::kReader);
  t.name = r.Text(2);
  t.created_at = r.Text(3);
  t.revoked_at = r.Text(4);
  return t;
}

}  // namespace

const char* TokenRoleName(TokenRole role) {
  switch (role) {
    case TokenRole::kReader:
      return "reader";
    case TokenRole::kWriter:
      return "writer";
    case TokenRole::kAdmin:
      return "admin";
  }
  return "reader";
}

std::optional<TokenRole> ParseTokenRole(std::string_view s) {
  for (TokenRole r : {TokenRole::kReader, TokenRole::kWriter, TokenRole::kAdmin}) {
    if (s == TokenRoleName(r)) return r;
  }
  return std::nullopt;
}

bool RoleAllows(TokenRole have, TokenRole need) {
  return static_cast<int>(have) >= static_cast<int>(need);
}

Result<NewToken> CreateToken(Workspace& ws, TokenRole role, const std::string& name) {
  if (name.size() > kMaxNameBytes) {
    return Status::InvalidInput("token name is longer than " + std::to_string(kMaxNameBytes) +
                                " bytes");
  }
  if (std::any_of(name.begin(), name.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
    return Status::InvalidInput("token name contains control characters");
  }
  ASSIGN_OR_RETURN(std::string id_bytes, RandomBytes(kIdChars / 2));
  ASSIGN_OR_RETURN(std::string secret_bytes, RandomBytes(kSecretBytes));
  NewToken out;
  out.token.id = Hex(id_bytes);
  out.token.name = name;
  out.token.role = role;
  out.token.created_at = NowIso8601();
  out.secret = std::string(kPrefix) + out.token.id + "_" + Hex(secret_bytes);
  RETURN_IF_ERROR(ws.db().Exec(
      "INSERT INTO api_tokens (id, secret_sha, role, name, created_at, revoked_at) VALUES (?, ?, "
      "?, ?, ?, '')",
      {out.token.id, Sha256Hex(out.secret), std::string(TokenRoleName(role)), name,
       out.token.created_at}));
  return out;
}

Result<ApiToken> VerifyToken(Workspace& ws, std::string_view bearer) {
  const std::string id = IdOf(bearer);
  if (id.empty()) return Status::NotFound("unknown token");
  ASSIGN_OR_RETURN(auto rows, ws.db().Query("SELECT id, role, name, created_at, revoked_at, "
                                            "secret_sha FROM api_tokens WHERE id = ?",
                                            {id}));
  if (rows.empty()) return Status::NotFound("unknown token");
  const std::string want = rows[0].Text(5);
  const std::string have = Sha256Hex(bearer);
  if (want.size() != have.size() || CRYPTO_memcmp(want.data(), have.data(), have.size()) != 0) {
    return Status::NotFound("unknown token");
  }
  ApiToken t = RowToToken(rows[0]);
  if (!t.revoked_at.empty()) return Status::NotFound("token revoked");
  return t;
}

Result<std::vector<ApiToken>> ListTokens(Workspace& ws) {
  ASSIGN_OR_RETURN(auto rows,
                   ws.db().Query("SELECT id, role, name, created_at, revoked_at FROM api_tokens "
                                 "ORDER BY created_at, id"));
  std::vector<ApiToken> out;
  for (const SqlRow& r : rows) out.push_back(RowToToken(r));
  return out;
}

Status RevokeToken(Workspace& ws, const std::string& id) {
  Database& db = ws.db();
  return db.InTransaction([&]() -> Status {
    ASSIGN_OR_RETURN(auto rows, db.Query("SELECT revoked_at FROM api_tokens WHERE id = ?", {id}));
    if (rows.empty()) return Status::NotFound("no token with id '" + id + "'");
    if (!rows[0].Text(0).empty()) return Status::Ok();
    return db.Exec("UPDATE api_tokens SET revoked_at = ? WHERE id = ?", {NowIso8601(), id});
  });
}

Json ApiTokenToJson(const ApiToken& t) {
  return {{"id", t.id},
          {"name", t.name},
          {"role", TokenRoleName(t.role)},
          {"created_at", t.created_at},
          {"revoked_at", t.revoked_at}};
}

TokenCache::TokenCache(Workspace& ws, std::chrono::milliseconds ttl, size_t max_entries)
    : ws_(ws), ttl_(ttl), max_entries_(max_entries) {}

Result<ApiToken> TokenCache::Verify(std::string_view bearer) {
  if (ttl_.count() <= 0 || max_entries_ == 0) return VerifyToken(ws_, bearer);
  const std::string key = Sha256Hex(bearer);
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(key);
    if (it != entries_.end()) {
      if (now < it->second.expires) return it->second.token;
      entries_.erase(it);
    }
  }
  // The database is queried without the lock: concurrent misses for one
  // token cost a query each, nothing more.
  ASSIGN_OR_RETURN(ApiToken token, VerifyToken(ws_, bearer));
  std::lock_guard lock(mu_);
  if (entries_.size() >= max_entries_) {
    std::erase_if(entries_, [&](const auto& kv) { return kv.second.expires <= now; });
    if (entries_.size() >= max_entries_) entries_.clear();
  }
  entries_[key] = {token, now + ttl_};
  return token;
}

void TokenCache::Clear() {
  std::lock_guard lock(mu_);
  entries_.clear();
}

}  // namespace detops
